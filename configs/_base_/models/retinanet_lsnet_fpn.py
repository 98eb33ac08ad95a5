# RetinaNet with LSNet-T: stage maps at strides 8..64 (padded to 64), all four into the neck.
_base_ = './retinanet_fpn.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                  attention_resolution=14, drop_path_rate=0.0,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth')),
    neck=dict(in_channels='lsnet_t', start_level=0))
