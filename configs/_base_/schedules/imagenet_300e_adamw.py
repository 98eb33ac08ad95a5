# 300 epochs, AdamW lr 1e-3 per 512 images (scaled to the real total batch), 5 warm-up epochs from
# 1e-6, cosine to 1e-5, AGC 0.02, no weight decay on norms, biases and attention biases.
optim_wrapper = dict(
    type='OptimWrapper', constructor='AdaptiveGradClipConstructor', agc_clip=0.02,
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.025),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'attention_biases': dict(decay_mult=0.0)}))
auto_scale_lr = dict(enable=True, base_batch_size=512)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
