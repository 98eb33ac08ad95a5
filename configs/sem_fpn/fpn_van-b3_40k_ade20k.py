_base_ = './fpn_van-b0_40k_ade20k.py'
model = dict(
    backbone=dict(arch='b3', init_cfg=dict(checkpoint='checkpoints/van_large_839.pth.tar')),
    neck=dict(in_channels='van_b3'))
