# Mask R-CNN with LSNet-T: its stage maps have strides 8..64, so the neck adds one transposed-conv level
# (stride 4) before them. Images are padded to a multiple of 32 as in the released configs.
_base_ = ['./mask_rcnn_fpn.py', './dense_lsnet_backbone.py']
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.lsnet_backbone}},
    neck=dict(in_channels='lsnet_t', num_extra_trans_convs=1))
