# RetinaNet with VAN-B0: stage maps at strides 4..32; the neck starts at stride 8. Stochastic depth 0.1.
_base_ = ['./retinanet_fpn.py', './dense_van_backbone.py']
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.van_backbone}},
    neck=dict(in_channels='van_b0', start_level=1))
