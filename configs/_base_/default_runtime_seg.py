default_scope = 'mmseg'
custom_imports = dict(imports=['lsnet', 'lsnet.mm.install_safety', 'lsnet.segmentation'], allow_failed_imports=False)
# The safety layer any launcher gets (mmdet's, mmseg's or mim's train.py too): safe checkpoint reading and
# atomic writes (lsnet.mm.install_safety) and the hooks of ./safety_hooks.py.
_base_ = ['./safety_hooks.py']
custom_hooks = _base_.SAFETY_HOOKS
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
