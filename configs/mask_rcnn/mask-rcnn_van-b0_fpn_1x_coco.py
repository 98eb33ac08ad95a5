_base_ = [
    '../_base_/models/mask_rcnn_van_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/det_1x_adamw.py', '../_base_/default_runtime_det.py'
]
