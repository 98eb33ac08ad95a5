_base_ = './mask-rcnn_lsnet-t_fpn_1x_coco.py'
# VAN stages have strides 4..32 (LSNet: 8..64) and 0.1 stochastic depth.
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(_delete_=True, type='VAN', arch='b1', out_indices=(0, 1, 2, 3), norm_eval=True,
                  drop_path_rate=0.1, init_cfg=dict(type='Pretrained', checkpoint='checkpoints/van_small_811.pth.tar')),
    neck=dict(in_channels=[64, 128, 320, 512], num_extra_trans_convs=0))  # VAN has a stride-4 stage
