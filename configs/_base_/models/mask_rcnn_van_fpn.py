# Mask R-CNN with VAN-B0: its stage maps already have strides 4..32; one extra pooled level -> 4..64.
_base_ = './mask_rcnn_fpn.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                  drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/van_tiny_754.pth.tar')),
    neck=dict(in_channels='van_b0'))
