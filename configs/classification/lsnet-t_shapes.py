# The real LSNet-T classifier and optimizer on the synthetic shape folders: data and schedule differ.
_base_ = ['../_base_/models/lsnet_classifier.py', '../_base_/datasets/shapes_imagenet.py',
          '../_base_/schedules/shapes_cls.py', '../_base_/optimizers/adamw_lsnet.py']
model = dict(backbone=dict(num_classes=4, img_size={{_base_.input_size}}), mixup=None)
# batch 64 without lr scaling; AdamW's multi-tensor step (the per-parameter loop is 10% of a CPU step here)
optim_wrapper = dict(optimizer=dict(lr=3e-3, foreach=True))
