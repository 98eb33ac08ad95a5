# Semantic FPN with LSNet-T: stage maps at strides 8..64.
_base_ = ['./sem_fpn.py', './dense_lsnet_backbone.py']
model = dict(
    backbone={{_base_.lsnet_backbone}},
    neck=dict(in_channels='lsnet_t'),
    decode_head=dict(feature_strides=[8, 16, 32, 64]))
