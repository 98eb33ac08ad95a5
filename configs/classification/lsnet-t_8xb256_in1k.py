_base_ = ['../_base_/models/lsnet_classifier.py', '../_base_/datasets/imagenet_timm.py',
          '../_base_/schedules/imagenet_300e.py', '../_base_/optimizers/adamw_lsnet.py',
          '../_base_/default_runtime_cls.py']
