# ImageNet-1K class folders (data/imagenet/{train,val}/<wnid>/*.JPEG) with timm's transforms.
data_root = 'data/imagenet'
input_size = 224
train_transform = dict(input_size=input_size, is_training=True, auto_augment='rand-m9-mstd0.5-inc1',
                       interpolation='bicubic', re_prob=0.25, re_mode='pixel', color_jitter=0.4)
val_transform = dict(input_size=input_size, interpolation='bicubic', crop_pct=224 / 256)  # resize 256, crop 224
train_dataloader = dict(
    # drop_last: a last batch of one image would stop training in BatchNorm after a whole epoch
    batch_size=256, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type='RepeatAugSampler', shuffle=True, num_repeats=3),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='train', transform=train_transform))
val_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='val', transform=val_transform))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
