_base_ = [
    '../_base_/models/sem_fpn_van.py', '../_base_/datasets/ade20k.py',
    '../_base_/schedules/seg_40k_adamw.py', '../_base_/default_runtime_seg.py'
]
