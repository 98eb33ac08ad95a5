_base_ = './fpn_lsnet-t_40k_ade20k.py'
model = dict(
    backbone=dict(arch='s', init_cfg=dict(checkpoint='checkpoints/lsnet_s.pth')),
    neck=dict(in_channels='lsnet_s'))
