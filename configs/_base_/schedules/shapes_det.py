# Schedule and runtime of the detection runs on the synthetic shapes set (two to six CPU minutes at batch 16
# of 64x64 scenes with the shapes head of retinanet_lsnet-t_fpn_shapes.py): 450 iterations (600 gave bbox mAP
# 0.799-0.819 over seeds 0-2, a margin over 0.60 that 150 steps fewer trade for their time), AdamW lr 1e-3
# in its fused CPU step (as the classifier's), 30 warm-up iterations, cosine, gradients clipped at norm 10
# (without it the randomly initialised head's first steps spike the loss). It brings the runtime base along:
# default_hooks and log_processor live there, and keys may not repeat across bases.
_base_ = ['./det_1x_adamw.py', '../default_runtime_det.py']
max_iters = 450
train_cfg = dict(_delete_=True, type='ExactResumeIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-6)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True), clip_grad=dict(max_norm=10.0))
# metrics logged against the iteration (the runtime's default is the epoch, which stays 0 here)
default_hooks = dict(logger=dict(interval=10, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=2))
log_processor = dict(by_epoch=False, window_size=10)
