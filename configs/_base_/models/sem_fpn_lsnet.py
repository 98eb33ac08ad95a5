# Semantic FPN with LSNet-T: stage maps at strides 8..64.
_base_ = './sem_fpn.py'
model = dict(
    backbone=dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                  attention_resolution=14, drop_path_rate=0.0,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth')),
    neck=dict(in_channels='lsnet_t'),
    decode_head=dict(feature_strides=[8, 16, 32, 64]))
