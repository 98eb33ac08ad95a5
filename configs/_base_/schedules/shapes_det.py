# A short iteration-based schedule for the synthetic shapes set (a few CPU minutes).
_base_ = './det_1x_adamw.py'
max_iters = 300
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-6)
]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
# Iteration-based logging and checkpoints are set in the shapes leaf configs (default_hooks and
# log_processor belong to the runtime base, and keys may not repeat across bases).
