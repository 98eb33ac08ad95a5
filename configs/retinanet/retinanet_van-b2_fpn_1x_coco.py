_base_ = './retinanet_van-b0_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='b2', init_cfg=dict(checkpoint='checkpoints/van_base_828.pth.tar')),
    neck=dict(in_channels='van_b2'))
