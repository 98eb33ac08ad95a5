_base_ = './fpn_lsnet-t_40k_ade20k.py'
model = dict(
    backbone=dict(arch='b', init_cfg=dict(checkpoint='checkpoints/lsnet_b.pth')),
    neck=dict(in_channels='lsnet_b'))
