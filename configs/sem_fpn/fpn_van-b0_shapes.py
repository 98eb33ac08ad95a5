_base_ = './fpn_lsnet-t_shapes.py'
model = dict(
    backbone=dict(_delete_=True, type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True,
                  drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256]),
    decode_head=dict(feature_strides=[4, 8, 16, 32]))
