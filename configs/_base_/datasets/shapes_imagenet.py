# The synthetic shape folders (tools/make_shapes.py), 64x64, through the ImageNet pipeline. On 4,000 tiny
# images and a CPU-minutes schedule the ImageNet recipe's heavy augmentation (RandAugment, random erasing,
# Mixup/CutMix) only slows learning: the pipeline keeps flips, crops and colour jitter.
_base_ = './imagenet_timm.py'
data_root = 'data/shapes/imagenet'
input_size = 64
train_dataloader = dict(
    batch_size=64, num_workers=2, persistent_workers=False, pin_memory=False,
    # Repeated augmentation spreads the repeats of an image over GPUs; in one process it would only
    # put three copies of each image in a batch.
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(data_root=data_root, transform=dict(input_size=input_size, scale=(0.8, 1.0), auto_augment=None,
                                                     re_prob=0.0)))
val_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=False, pin_memory=False,
    dataset=dict(data_root=data_root, transform=dict(input_size=input_size, crop_pct=1.0)))
test_dataloader = val_dataloader
