# Semantic FPN with VAN-B0: stage maps at strides 4..32, stochastic depth 0.1.
_base_ = ['./sem_fpn.py', './dense_van_backbone.py']
model = dict(
    backbone={{_base_.van_backbone}},
    neck=dict(in_channels='van_b0'),
    decode_head=dict(feature_strides=[4, 8, 16, 32]))
