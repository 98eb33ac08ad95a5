# The synthetic shapes set in ADE20K layout, read by mmseg's BaseSegDataset (label 0 = ignored): 64x64
# scenes, the classifier's pretraining size (see shapes_coco_detection.py), scale jitter 0.75-1.5.
_base_ = './ade20k.py'
data_root = 'data/shapes/ade'
image_scale = (64, 64)
crop_size = (64, 64)
metainfo = dict(classes=('background', 'circle', 'square', 'triangle', 'star'),
                palette=[[120, 120, 120], [220, 20, 60], [0, 128, 255], [255, 200, 0], [0, 200, 80]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignResize', scale=image_scale, size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(batch_size=16, num_workers=2, persistent_workers=False,
                        dataset=dict(dataset, pipeline=train_pipeline))
val_dataloader = dict(num_workers=2, persistent_workers=False, dataset=dict(dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
