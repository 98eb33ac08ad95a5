_base_ = './mask-rcnn_van-b0_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='b1', init_cfg=dict(checkpoint='checkpoints/van_small_811.pth.tar')),
    neck=dict(in_channels='van_b1'))
