# Schedule and runtime of the classification runs on the synthetic shapes: 30 epochs, no lr scaling,
# a faster EMA. (It brings the runtime base along: default_hooks and custom_hooks live there, and keys
# may not repeat across the bases of one config.)
_base_ = ['./imagenet_300e.py', '../default_runtime_cls.py']
auto_scale_lr = dict(enable=False)
max_epochs = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2))
# custom_hooks is one list: the runtime's safety hooks are listed again beside the faster EMA
custom_hooks = [dict(type='EMAHook', momentum=1e-2, priority='ABOVE_NORMAL'), dict(type='RNGStateHook'),
                dict(type='NonFiniteLossHook'), dict(type='ClassCountCheckHook')]
