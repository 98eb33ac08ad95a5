"""ImageNet-style classification with MMEngine's runner, around the same LSNet/VAN classes.

The pieces are thin: timm does the augmentation (RandAugment, random erasing, Mixup/CutMix, label
smoothing), the repeated-augmentation sampler and adaptive gradient clipping; MMEngine does the
loop, schedules, EMA (``EMAHook``), checkpoints and distributed training.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS
from PIL import Image, UnidentifiedImageError
from timm.data import Mixup, create_transform
from timm.data.distributed_sampler import RepeatAugSampler as _TimmRepeatAugSampler
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch.utils.data import Dataset

from ..models.checkpoint import load_state_dict_checked, read_checkpoint, unwrap_state_dict

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class ImageFolderDataset(Dataset):
    """``data_root/split/<class>/<image>`` folders, or a file list of ``relative/path label`` lines.

    Args:
        data_root (str): Dataset root.
        split (str): Sub-folder holding the class folders ('train', 'val'). Default: 'train'.
        ann_file (str | None): Optional list file (relative to ``data_root``) instead of folders.
        classes (Sequence[str] | None): Class names in label order; default: sorted folder names.
        transform (dict): Arguments of ``timm.data.create_transform``.
        skip_bad_images (bool): Replace unreadable images by another sample (and count them) instead
            of failing. Default: False.
    """

    def __init__(self, data_root: str, split: str = 'train', ann_file: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None, transform: Optional[dict] = None,
                 skip_bad_images: bool = False):
        self.data_root = data_root
        self.folder = None  # the class-folder root, when the dataset is read from folders
        self.skip_bad_images = skip_bad_images
        self.num_skipped = 0
        if ann_file:
            list_path = osp.join(data_root, ann_file)
            if not osp.isfile(list_path):
                raise FileNotFoundError(f'ImageFolderDataset: annotation list not found: {list_path}')
            self.samples = []
            with open(list_path) as f:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    parts = line.rsplit(maxsplit=1)
                    if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                        raise ValueError(f'{list_path}:{line_no}: expected "path label", got {line.strip()!r}')
                    self.samples.append((osp.join(data_root, parts[0]), int(parts[1])))
            self.classes = tuple(classes) if classes else tuple(str(i) for i in range(
                max((s[1] for s in self.samples), default=-1) + 1))
        else:
            folder = self.folder = osp.join(data_root, split)
            if not osp.isdir(folder):
                raise FileNotFoundError(f'ImageFolderDataset: folder not found: {folder}')
            found = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
            self.classes = tuple(classes) if classes else tuple(found)
            unknown = sorted(set(found) - set(self.classes))
            if unknown:
                raise ValueError(f'ImageFolderDataset: {folder} has class folders {unknown} not in classes '
                                 f'{list(self.classes)}')
            self.samples = [(osp.join(folder, name, file), label)
                            for label, name in enumerate(self.classes) if osp.isdir(osp.join(folder, name))
                            for file in sorted(os.listdir(osp.join(folder, name)))
                            if file.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.samples:
            raise ValueError(f'ImageFolderDataset: no images found under {data_root} '
                             f'({"list " + ann_file if ann_file else "split " + split})')
        bad = [(p, l) for p, l in self.samples if not 0 <= l < len(self.classes)]
        if bad:
            raise ValueError(f'ImageFolderDataset: label {bad[0][1]} of {bad[0][0]} is outside 0..{len(self.classes) - 1}')
        self.metainfo = dict(classes=self.classes)
        self.transform = create_transform(**(transform or {}))

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: str) -> Image.Image:
        try:
            with Image.open(path) as image:
                if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                    # 16/32-bit grayscale: convert('RGB') would clip it to a constant image
                    values = np.asarray(image).astype(np.float64)
                    top = 65535.0 if image.mode.startswith('I;16') else max(values.max(), 1.0)
                    image = Image.fromarray((values * (255.0 / top)).round().clip(0, 255).astype(np.uint8))
                return image.convert('RGB')
        except FileNotFoundError as err:
            raise FileNotFoundError(f'image listed in the dataset is missing: {path}') from err
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f'corrupt, truncated or oversized image: {path} ({err})') from err

    def __getitem__(self, index: int) -> dict:
        path, label = self.samples[index]
        try:
            image = self._load(path)
        except (ValueError, FileNotFoundError):
            if not self.skip_bad_images:
                raise
            self.num_skipped += 1
            return self[(index + 1) % len(self)]
        return dict(inputs=self.transform(image), data_samples=label)


@DATA_SAMPLERS.register_module()
class RepeatAugSampler(_TimmRepeatAugSampler):
    """timm's repeated-augmentation sampler, with world size and rank taken from MMEngine."""

    def __init__(self, dataset: Dataset, shuffle: bool = True, num_repeats: int = 3, seed: Optional[int] = None,
                 selected_round: int = 256):
        rank, world_size = get_dist_info()
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, num_repeats=num_repeats,
                         selected_round=selected_round)


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Moves stacked, already normalised images (timm transforms) and labels to the device."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        labels = data['data_samples']
        if not torch.is_tensor(labels):
            labels = torch.as_tensor(labels, device=self.device)
        return dict(inputs=data['inputs'], data_samples=labels)


@MODELS.register_module()
class LSNetClassifier(BaseModel):
    """Classifier around a backbone config (LSNet/VAN in classification mode).

    Args:
        backbone (dict): e.g. ``dict(type='LSNet', arch='t', num_classes=1000, distillation=True)``.
        mixup (dict | None): ``timm.data.Mixup`` arguments (Mixup/CutMix with label smoothing).
        label_smoothing (float): Used when ``mixup`` is None. Default: 0.1.
        teacher (dict | None): Hard distillation (DeiT) through the backbone's ``head_dist``:
            ``dict(model='regnety_160', checkpoint=PATH or None, alpha=0.5)``; any timm model name.
    """

    def __init__(self, backbone: dict, mixup: Optional[dict] = None, label_smoothing: float = 0.1,
                 teacher: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ClsDataPreprocessor'), init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        num_classes = self.backbone.num_classes
        if num_classes <= 0:
            raise ValueError('LSNetClassifier: the backbone needs num_classes > 0')
        self.mixup = Mixup(**dict(mixup, num_classes=num_classes)) if mixup else None
        self.train_loss = SoftTargetCrossEntropy() if self.mixup else LabelSmoothingCrossEntropy(label_smoothing)
        self.teacher = None
        if teacher:
            if getattr(self.backbone, 'head_dist', None) is None:
                raise ValueError('LSNetClassifier: a teacher needs a backbone with a distillation head '
                                 '(distillation=True)')
            import timm
            unknown = set(teacher) - {'model', 'checkpoint', 'alpha', 'kwargs'}
            if unknown or 'model' not in teacher:
                raise ValueError(f'LSNetClassifier: teacher {teacher} needs "model" and accepts checkpoint, alpha, kwargs')
            checkpoint = teacher.get('checkpoint')
            if checkpoint and not osp.isfile(checkpoint):
                raise FileNotFoundError(f'teacher checkpoint not found: {checkpoint}')
            model = timm.create_model(teacher['model'], num_classes=num_classes, **teacher.get('kwargs', {}))
            if checkpoint:  # through the safe reader: a teacher file is never unpickled with code
                source = f'teacher checkpoint {checkpoint}'
                load_state_dict_checked(model, unwrap_state_dict(read_checkpoint(checkpoint), source), source)
            self.teacher = [model.eval().requires_grad_(False)]  # a list: not a submodule, not saved
            self.distill_alpha = teacher.get('alpha', 0.5)
            self.backbone.set_distilled_training(True)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None, mode: str = 'tensor'):
        if mode == 'tensor':
            return self.backbone(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            scores = self.backbone(inputs).float().softmax(dim=-1)
            return [dict(pred_score=s, gt_label=l) for s, l in zip(scores, data_samples)]
        raise ValueError(f'LSNetClassifier: unknown mode {mode!r}; valid: tensor, loss, predict')

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        targets = labels
        if self.mixup is not None:
            if inputs.shape[0] % 2:
                raise ValueError(f'Mixup/CutMix need an even batch size, got {inputs.shape[0]}')
            inputs, targets = self.mixup(inputs, labels)
        outputs = self.backbone(inputs)
        if self.teacher is None:
            logits = outputs[0] if isinstance(outputs, tuple) else outputs
            return dict(loss_cls=self.train_loss(logits, targets))
        teacher = self.teacher[0].to(inputs.device)
        with torch.no_grad():
            teacher_labels = teacher(inputs).argmax(dim=-1)
        logits, logits_dist = outputs
        return dict(loss_cls=(1 - self.distill_alpha) * self.train_loss(logits, targets),
                    loss_distill=self.distill_alpha * F.cross_entropy(logits_dist, teacher_labels))


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy in percent (keys ``top1``, ``top5``, ...)."""

    default_prefix = ''

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        k = min(max(self.topk), data_samples[0]['pred_score'].numel())
        for sample in data_samples:
            top = sample['pred_score'].topk(k).indices.cpu().numpy()
            self.results.append((top, int(sample['gt_label'])))

    def compute_metrics(self, results: list) -> dict:
        metrics = {}
        for k in self.topk:
            hits = [label in top[:k] for top, label in results]
            metrics[f'top{k}'] = float(np.mean(hits) * 100.0)
        return metrics
