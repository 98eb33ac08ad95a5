# The synthetic shapes set (tools/make_shapes.py) in COCO format, read by mmdet's own CocoDataset.
# 64x64 scenes, the size the shapes classifier is pretrained at: LSNet's stage maps (8x8 .. 1x1) then have
# the sizes the pretrained stages learnt with; at 128x128 its last stage meets 2x2 maps it never saw and
# its pretrained features blow up (std 230 against 5), which costs most of what pretraining gave.
_base_ = './coco_detection.py'
image_scale = (64, 64)
data_root = 'data/shapes/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    # one loader worker: on two cores a second one takes more from the step than it gives
    batch_size=16, num_workers=1, persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, metainfo=metainfo, filter_cfg=dict(filter_empty_gt=True, min_size=4),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
