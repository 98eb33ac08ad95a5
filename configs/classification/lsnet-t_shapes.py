# The real LSNet-T recipe on the synthetic shape folders: data and schedule differ. On 400 tiny
# images and a CPU-minutes schedule, the recipe's heavy augmentation (RandAugment, random erasing,
# Mixup/CutMix) only slows learning, so the data pipeline keeps flips, crops and colour jitter.
_base_ = './lsnet-t_8xb256_in1k.py'
data_root = 'data/shapes/imagenet'
input_size = 64
model = dict(backbone=dict(num_classes=4, img_size=input_size), mixup=None)
train_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False, pin_memory=False,
    # Repeated augmentation spreads the repeats of an image over GPUs; in one process it would only
    # put three copies of each image in a batch.
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(data_root=data_root, transform=dict(input_size=input_size, scale=(0.8, 1.0), auto_augment=None,
                                                     re_prob=0.0)))
val_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=False, pin_memory=False,
    dataset=dict(data_root=data_root, transform=dict(input_size=input_size, crop_pct=1.0)))
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2))
custom_hooks = [dict(type='EMAHook', momentum=1e-2, priority='ABOVE_NORMAL')]
