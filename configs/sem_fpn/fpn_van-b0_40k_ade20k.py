_base_ = './fpn_lsnet-t_40k_ade20k.py'
# VAN stages have strides 4..32 (LSNet: 8..64) and 0.1 stochastic depth.
model = dict(
    backbone=dict(_delete_=True, type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True,
                  drop_path_rate=0.1, init_cfg=dict(type='Pretrained', checkpoint='checkpoints/van_tiny_754.pth.tar')),
    neck=dict(in_channels=[32, 64, 160, 256]),
    decode_head=dict(feature_strides=[4, 8, 16, 32]))
