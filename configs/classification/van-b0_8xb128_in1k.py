# VAN: mean = std = 0.5 input normalisation, batch 128 per GPU.
_base_ = ['../_base_/models/van_classifier.py', '../_base_/datasets/imagenet_timm.py',
          '../_base_/schedules/imagenet_300e.py', '../_base_/optimizers/adamw_van.py',
          '../_base_/default_runtime_cls.py']
train_dataloader = dict(batch_size=128, dataset=dict(transform=dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))))
val_dataloader = dict(batch_size=128, dataset=dict(transform=dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))))
test_dataloader = val_dataloader
