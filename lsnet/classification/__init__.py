"""ImageNet-style classification with MMEngine's runner, around the same LSNet/VAN classes.

The pieces are thin: timm does the augmentation (RandAugment, random erasing, Mixup/CutMix, label
smoothing), the repeated-augmentation sampler and adaptive gradient clipping; MMEngine does the
loop, schedules, EMA (``EMAHook``), checkpoints and distributed training.
"""
from .data import IMAGE_EXTENSIONS, ImageFolderDataset, RepeatAugSampler
from .metric import TopKAccuracy
from .model import ClsDataPreprocessor, TimmClassifier
from . import export  # noqa: F401  (registers the classifier's ONNX export)

__all__ = ['IMAGE_EXTENSIONS', 'ImageFolderDataset', 'RepeatAugSampler', 'TopKAccuracy', 'ClsDataPreprocessor',
           'TimmClassifier']
