# Semantic FPN-LSNet-T on the synthetic shapes set: data and schedule swapped, and the pyramid made for
# 64x64 scenes. LSNet's finest stage has stride 8, so the released Semantic FPN predicts an 8x8 map of a
# 64x64 scene (mIoU ~75%); one transposed-conv level at stride 4 (LSNetFPN's num_extra_trans_convs, as
# Mask R-CNN uses) predicts 16x16, and at 128 neck channels a step stays cheap: 79.4% after the same 500
# iterations, 81.5% with lr 2e-3 (shapes_seg.py; seed 0, this project's 2-core machine).
_base_ = ['../_base_/models/sem_fpn_lsnet.py', '../_base_/datasets/shapes_ade.py', '../_base_/schedules/shapes_seg.py']
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}), backbone=dict(init_cfg=None),
             neck=dict(out_channels=128, num_extra_trans_convs=1, num_outs=5),
             decode_head=dict(num_classes=5, in_channels=[128] * 5, in_index=[0, 1, 2, 3, 4],
                              feature_strides=[4, 8, 16, 32, 64]))
