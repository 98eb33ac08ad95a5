# Schedule and runtime of the classification runs on the synthetic shapes (two to five CPU minutes): 7 epochs
# of 4,000 images at batch 64, one warm-up epoch, no lr scaling, an EMA matched to the ~440 iterations
# (seed 0: top-1 96.2% after 5 epochs, 97.5-97.8% after 6; seed 1: 96.5% after 6, 98.0% after 7).
# (It brings the runtime base along: default_hooks and custom_hooks live there, and keys may not repeat
# across the bases of one config.)
_base_ = ['./imagenet_300e.py', '../default_runtime_cls.py']
auto_scale_lr = dict(enable=False)
max_epochs = 7
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=2))
# custom_hooks is one list: the safety hooks beside a faster EMA (time constant 50 iterations)
custom_hooks = [dict(type='EMAHook', momentum=2e-2, priority='ABOVE_NORMAL')] + _base_.SAFETY_HOOKS
