# LSNet's recipe: AdamW lr 1e-3 per 512 images, weight decay 0.025, AGC 0.02, no weight decay on norms,
# biases and attention biases.
optim_wrapper = dict(
    type='OptimWrapper', constructor='AdaptiveGradClipConstructor', agc_clip=0.02,
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.025),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'attention_biases': dict(decay_mult=0.0)}))
