# RetinaNet with LSNet-T: stage maps at strides 8..64, all four into the neck; images padded to a
# multiple of 32 as in the released configs (the stride-64 stage rounds its grid up).
_base_ = ['./retinanet_fpn.py', './dense_lsnet_backbone.py']
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.lsnet_backbone}},
    neck=dict(in_channels='lsnet_t', start_level=0))
