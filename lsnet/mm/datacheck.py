"""Checking a dataset before training, so bad files fail early with their names.

``CheckedDataset`` wraps any dataset config (mmdet/mmseg/our classification folders) and, when it is
built, checks every sample: the image exists (and, with ``decode=True``, decodes completely, which
catches truncated files), COCO category ids belong to the configured classes, segmentation label
maps hold only class indices (or the ignore index). Problems raise one error listing the first
offenders with the count, or, with ``on_error='skip'``, drop those samples and log how many.
Empty datasets are refused. ``tools/train.py --check-data`` wraps the training set with it.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.logging import print_log
from mmengine.registry import DATASETS
from PIL import Image
from torch.utils.data import Dataset


class DataError(ValueError):
    """A dataset holds samples that cannot be trained on."""


def _image_problem(path: str, decode: bool) -> Optional[str]:
    if not osp.isfile(path):
        return f'missing image {path}'
    if decode:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as err:  # PIL raises several types for corrupt/truncated files
            return f'corrupt or truncated image {path} ({err})'
    return None


def _coco_category_problems(dataset) -> list[str]:
    ann_file = getattr(dataset, 'ann_file', None)
    if not ann_file or not str(ann_file).endswith('.json') or not osp.isfile(ann_file):
        return []
    with open(ann_file) as f:
        content = json.load(f)
    classes = list(dataset.metainfo.get('classes', ()))
    known = {c['id']: c['name'] for c in content.get('categories', [])}
    allowed = {cid for cid, name in known.items() if name in classes}
    bad = sorted({a['category_id'] for a in content.get('annotations', []) if a['category_id'] not in allowed})
    if not bad:
        return []
    names = [f'{cid} ({known.get(cid, "not in categories")})' for cid in bad]
    return [f'{ann_file}: annotations use category ids {names[:10]} that are not among the configured classes '
            f'{classes} (ids {sorted(allowed)}); mmdet would drop them silently']


@DATASETS.register_module()
class CheckedDataset(Dataset):
    """Build ``dataset`` and check it (see module docstring).

    Args:
        dataset (dict): The dataset config to wrap.
        on_error (str): 'raise' (default) or 'skip' bad samples.
        decode (bool): Decode every image fully (slower; finds truncated files). Default: False.
        ignore_index (int): Allowed label-map value besides the classes. Default: 255.
    """

    def __init__(self, dataset: dict, on_error: str = 'raise', decode: bool = False, ignore_index: int = 255):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"CheckedDataset: on_error={on_error!r}; valid: 'raise', 'skip'")
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        self.metainfo = getattr(self.dataset, 'metainfo', {})
        size = len(self.dataset)
        if size == 0:
            raise DataError(f'dataset {type(self.dataset).__name__} is empty (config: {dataset})')
        problems = _coco_category_problems(self.dataset)
        if problems:
            raise DataError('\n'.join(problems))
        num_classes = len(self.metainfo.get('classes', ())) or None
        bad = {}
        for index in range(size):
            problem = self._sample_problem(index, decode, num_classes, ignore_index)
            if problem:
                bad[index] = problem
        if bad and on_error == 'raise':
            listed = '\n  '.join(list(bad.values())[:10])
            raise DataError(f'{len(bad)} of {size} samples of {type(self.dataset).__name__} are unusable:\n  {listed}'
                            f'{chr(10) + "  ..." if len(bad) > 10 else ""}\nFix them, or skip them with '
                            "CheckedDataset(on_error='skip') / tools/train.py --check-data skip.")
        self.indices = [i for i in range(size) if i not in bad]
        if not self.indices:
            raise DataError(f'every sample of {type(self.dataset).__name__} is unusable; first: {next(iter(bad.values()))}')
        self.num_skipped = len(bad)
        if bad:
            print_log(f'CheckedDataset: skipped {len(bad)} of {size} samples, e.g. {next(iter(bad.values()))}',
                      logger='current', level=30)

    def _sample_problem(self, index: int, decode: bool, num_classes: Optional[int], ignore_index: int):
        dataset = self.dataset
        if hasattr(dataset, 'get_data_info'):
            info = dataset.get_data_info(index)
            problem = _image_problem(info['img_path'], decode)
            if problem or not info.get('seg_map_path'):
                return problem
            seg_path = info['seg_map_path']
            if not osp.isfile(seg_path):
                return f'missing label map {seg_path}'
            with Image.open(info['img_path']) as image, Image.open(seg_path) as label:  # headers only
                if image.size != label.size:
                    return (f'label map {seg_path} is {label.size[0]}x{label.size[1]} but its image '
                            f'{info["img_path"]} is {image.size[0]}x{image.size[1]}')
            if num_classes and decode:
                values = np.unique(np.asarray(Image.open(seg_path)))
                if info.get('reduce_zero_label', getattr(dataset, 'reduce_zero_label', False)):
                    # mmseg: 0 becomes the ignore index, 1..n become 0..n-1, the ignore index stays
                    values = np.array([ignore_index if v in (0, ignore_index) else v - 1 for v in values.tolist()])
                bad = values[(values >= num_classes) & (values != ignore_index)]
                if bad.size:
                    return (f'label map {seg_path} has values {bad.tolist()[:8]} outside the {num_classes} classes '
                            f'(0..{num_classes - 1}, ignore {ignore_index})')
            return None
        if hasattr(dataset, 'samples'):  # ImageFolderDataset
            return _image_problem(dataset.samples[index][0], decode)
        return None

    def __len__(self) -> int:
        return len(self.indices)

    def get_data_info(self, index: int) -> dict:
        return self.dataset.get_data_info(self.indices[index])

    def __getattr__(self, name: str):
        # samplers and hooks ask the dataset for attributes (e.g. get_data_info, cat_ids)
        if name in ('dataset', 'indices') or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]
