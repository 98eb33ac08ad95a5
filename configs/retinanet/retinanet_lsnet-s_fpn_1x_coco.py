_base_ = './retinanet_lsnet-t_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='s', init_cfg=dict(checkpoint='checkpoints/lsnet_s.pth')),
    neck=dict(in_channels='lsnet_s'))
