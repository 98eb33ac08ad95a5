_base_ = './mask-rcnn_lsnet-t_fpn_shapes.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(_delete_=True, type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True,
                  drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256], num_extra_trans_convs=0))  # VAN has a stride-4 stage
