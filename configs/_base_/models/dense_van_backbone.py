# The starting point of model.backbone in the dense configs (leaf configs change model.backbone, not this).
# VAN-B0 as the backbone of the detectors and segmentors: its four stage maps (strides 4..32), BatchNorm
# statistics frozen, stochastic depth 0.1, the released ImageNet weights.
van_backbone = dict(type='VAN', arch='b0', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                    drop_path_rate=0.1, init_cfg=dict(type='Pretrained', checkpoint='checkpoints/van_tiny_754.pth.tar'))
