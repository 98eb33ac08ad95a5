# The starting point of model.backbone in the dense configs (leaf configs change model.backbone, not this).
# LSNet-T as the backbone of the detectors and segmentors: its four stage maps (strides 8..64), BatchNorm
# statistics frozen, attention biases for a 14x14 grid resized to each image's token grid as a whole
# matrix (the released detectors' and segmenters' computation; 'table' resizes the table over offsets
# instead), the released ImageNet weights.
lsnet_backbone = dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), norm_eval=True, frozen_stages=-1,
                      attention_resolution=14, attention_bias_resize='matrix', drop_path_rate=0.0,
                      init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth'))
