"""Label-map checks for ``lsnet.mm.datacheck.CheckedDataset`` (semantic segmentation).

Each label map must exist and have its image's size (headers only); with ``decode=True`` it must hold
only class indices or the ignore index, after mmseg's ``reduce_zero_label`` mapping.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional

import numpy as np
from PIL import Image

from ..mm.datacheck import register_task_check


# PIL modes of one-channel images: greyscale, palette (the index is the class), 16/32-bit integers.
SINGLE_CHANNEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N')


@register_task_check
class LabelMapCheck:
    """The segmentation part of ``CheckedDataset``: applies to samples with a ``seg_map_path``."""

    @staticmethod
    def applies(dataset) -> bool:
        return hasattr(dataset, 'get_data_info') and hasattr(dataset, 'reduce_zero_label')

    def before_load(self, dataset) -> None:
        pass

    def after_load(self, dataset, on_error: str) -> None:
        pass

    @staticmethod
    def sample_problem(info: dict, dataset, decode: bool, num_classes: Optional[int],
                       ignore_index: int) -> Optional[str]:
        seg_path = info.get('seg_map_path')
        if not seg_path:
            return None
        if not osp.isfile(seg_path):
            return f'missing label map {seg_path}'
        with Image.open(info['img_path']) as image, Image.open(seg_path) as label:  # headers only
            if label.mode not in SINGLE_CHANNEL_MODES:
                return (f'label map {seg_path} is a {label.mode} image with {len(label.getbands())} channels; a '
                        'label map holds one class index per pixel (a palette or greyscale PNG)')
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
