# The real Semantic FPN-VAN-B0 config on the synthetic shapes set: only data and schedule differ.
_base_ = ['../_base_/models/sem_fpn_van.py', '../_base_/datasets/shapes_ade.py', '../_base_/schedules/shapes_seg.py']
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}), backbone=dict(init_cfg=None),
             decode_head=dict(num_classes=5))
