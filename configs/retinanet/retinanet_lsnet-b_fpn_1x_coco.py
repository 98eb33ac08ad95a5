_base_ = './retinanet_lsnet-t_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='b', init_cfg=dict(checkpoint='checkpoints/lsnet_b.pth')),
    neck=dict(in_channels='lsnet_b'))
