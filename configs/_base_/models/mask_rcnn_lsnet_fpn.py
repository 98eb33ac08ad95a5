# Mask R-CNN with LSNet-T: its stage maps have strides 8..64, so the neck adds one transposed-conv level
# (stride 4) before them.
_base_ = './mask_rcnn_fpn.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                  attention_resolution=14, drop_path_rate=0.0,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth')),
    neck=dict(in_channels='lsnet_t', num_extra_trans_convs=1))
