# The starting point of model.backbone in the dense configs (leaf configs change model.backbone, not this).
# LSNet-T as the backbone of the detectors and segmentors: its four stage maps (strides 8..64), BatchNorm
# statistics frozen, attention biases for a 14x14 grid, the released ImageNet weights.
lsnet_backbone = dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                      attention_resolution=14, drop_path_rate=0.0,
                      init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth'))
