# Mask R-CNN with VAN-B0: its stage maps already have strides 4..32; one extra pooled level -> 4..64.
_base_ = ['./mask_rcnn_fpn.py', './dense_van_backbone.py']
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.van_backbone}},
    neck=dict(in_channels='van_b0'))
