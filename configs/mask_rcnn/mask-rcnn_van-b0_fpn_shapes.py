# The real Mask R-CNN-VAN-B0 config on the synthetic shapes set: only data and schedule differ.
_base_ = ['../_base_/models/mask_rcnn_van_fpn.py', '../_base_/datasets/shapes_coco_instance.py', '../_base_/schedules/shapes_det.py']
model = dict(backbone=dict(init_cfg=None),
             roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))
