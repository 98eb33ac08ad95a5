default_scope = 'mmdet'
custom_imports = dict(imports=['lsnet', 'lsnet.mm.install_safety', 'lsnet.detection'], allow_failed_imports=False)
# The safety layer any launcher gets (mmdet's, mmseg's or mim's train.py too): safe checkpoint reading and
# atomic writes (lsnet.mm.install_safety) and the hooks of ./safety_hooks.py.
_base_ = ['./safety_hooks.py']
custom_hooks = _base_.SAFETY_HOOKS
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
