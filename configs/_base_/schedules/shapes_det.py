# Schedule and runtime of the detection runs on the synthetic shapes set (a few CPU minutes). It brings the
# runtime base along: default_hooks and log_processor live there, and keys may not repeat across bases.
_base_ = ['./det_1x_adamw.py', '../default_runtime_det.py']
max_iters = 300
train_cfg = dict(_delete_=True, type='ExactResumeIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-6)
]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=2))
log_processor = dict(by_epoch=False, window_size=10)
