"""The ADE20K test-time "align resize" of the LSNet/VAN segmentation releases."""
from __future__ import annotations

import math

import mmcv
from mmcv.transforms import BaseTransform, Resize
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class AlignResize(BaseTransform):
    """Resize keeping the aspect ratio to fit ``scale``, then round each side up to a multiple of
    ``size_divisor`` (the ratio changes by less than one divisor step).

    Args:
        scale (tuple[int, int]): (long edge, short edge) bound, as mmcv's keep-ratio ``Resize``.
        size_divisor (int): Each output side becomes a multiple of it. Default: 32.
        interpolation (str): Image interpolation. Default: 'bilinear'.
    """

    def __init__(self, scale: tuple[int, int], size_divisor: int = 32, interpolation: str = 'bilinear'):
        if size_divisor <= 0:
            raise ValueError(f'AlignResize: size_divisor must be positive, got {size_divisor}')
        self.scale = tuple(scale)
        self.size_divisor = size_divisor
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        new_width, new_height = mmcv.rescale_size((width, height), self.scale)
        aligned = (int(math.ceil(new_width / self.size_divisor)) * self.size_divisor,
                   int(math.ceil(new_height / self.size_divisor)) * self.size_divisor)
        results = Resize(scale=aligned, keep_ratio=False, interpolation=self.interpolation)(results)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale}, size_divisor={self.size_divisor})'
