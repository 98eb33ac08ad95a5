_base_ = ['../_base_/datasets/imagenet_timm.py', '../_base_/schedules/imagenet_300e_adamw.py',
          '../_base_/default_runtime_cls.py']
model = dict(
    type='LSNetClassifier',
    backbone=dict(type='LSNet', arch='t', num_classes=1000, drop_path_rate=0.0),
    mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1),
    label_smoothing=0.1)
