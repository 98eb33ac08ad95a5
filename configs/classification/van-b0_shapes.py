# The real VAN-B0 classifier and optimizer on the synthetic shape folders: data and schedule differ.
_base_ = ['../_base_/models/van_classifier.py', '../_base_/datasets/shapes_imagenet.py',
          '../_base_/schedules/shapes_cls.py', '../_base_/optimizers/adamw_van.py']
model = dict(backbone=dict(num_classes=4), mixup=None)
