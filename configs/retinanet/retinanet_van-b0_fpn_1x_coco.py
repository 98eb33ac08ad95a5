_base_ = [
    '../_base_/models/retinanet_van_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/det_1x_adamw.py', '../_base_/default_runtime_det.py'
]
