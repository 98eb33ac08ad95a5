# The real LSNet-T classifier and optimizer on the synthetic shape folders: data and schedule differ.
_base_ = ['../_base_/models/lsnet_classifier.py', '../_base_/datasets/shapes_imagenet.py',
          '../_base_/schedules/shapes_cls.py', '../_base_/optimizers/adamw_lsnet.py']
model = dict(backbone=dict(num_classes=4, img_size={{_base_.input_size}}), mixup=None)
# batch 64 without lr scaling; AdamW's fused step: the paramwise options give each parameter its own group,
# over which the CPU's per-parameter loop and its multi-tensor form take about twice the fused kernel's time
optim_wrapper = dict(optimizer=dict(lr=3e-3, fused=True))
