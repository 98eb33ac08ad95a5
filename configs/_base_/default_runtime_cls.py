default_scope = 'mmengine'
custom_imports = dict(imports=['lsnet', 'lsnet.mm.install_safety'], allow_failed_imports=False)
# The safety layer any launcher gets (mmdet's, mmseg's or mim's train.py too): safe checkpoint reading and
# atomic writes (lsnet.mm.install_safety) and the hooks of ./safety_hooks.py.
_base_ = ['./safety_hooks.py']
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# EMA of the weights (timm's decay 0.99996); checkpoints hold the EMA weights under 'state_dict'.
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')] + _base_.SAFETY_HOOKS
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(window_size=100, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
