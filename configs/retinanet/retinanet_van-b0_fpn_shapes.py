# The real RetinaNet-VAN-B0 config on the synthetic shapes set: only data and schedule differ.
_base_ = ['../_base_/models/retinanet_van_fpn.py', '../_base_/datasets/shapes_coco_detection.py', '../_base_/schedules/shapes_det.py']
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=4))
