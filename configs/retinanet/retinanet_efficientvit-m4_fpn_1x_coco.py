# RetinaNet with timm's efficientvit_m4, the comparison for LSNet-T's: the same neck, head and recipe.
# efficientvit_m4's stages have strides 16..64; LSNetFPN's transposed-conv level adds stride 8, so the
# head runs on the same anchor strides 8..128 as with LSNet. The ImageNet weights: timm's efficientvit_m4
# file in checkpoints/ (or pretrained=True instead of init_cfg, which fetches them from the hub).
_base_ = [
    '../_base_/models/retinanet_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/det_1x_adamw.py', '../_base_/default_runtime_det.py'
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(type='AnySizeTIMMBackbone', model_name='efficientvit_m4',
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/efficientvit_m4.pth')),
    neck=dict(in_channels=[128, 256, 384], num_extra_trans_convs=1))
