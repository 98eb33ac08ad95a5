# RetinaNet with VAN-B0: stage maps at strides 4..32; the neck starts at stride 8. Stochastic depth 0.1.
_base_ = './retinanet_fpn.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                  drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/van_tiny_754.pth.tar')),
    neck=dict(in_channels='van_b0', start_level=1))
