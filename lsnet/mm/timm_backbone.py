"""Any timm model as an OpenMMLab backbone: ``dict(type='AnySizeTIMMBackbone', model_name='efficientvit_m4')`` in
an mmdet/mmseg config gives its stage maps (``features_only``), with the arguments of mmpretrain's and
mmseg's ``TIMMBackbone`` (whose name it does not take: mmseg's own would be found first) (model_name, features_only, pretrained, checkpoint_path, in_channels, further keyword
arguments to ``timm.create_model``, e.g. ``out_indices``).

Models whose attention timm fixes to the classification resolution (``efficientvit_m*``: its
window attention asserts the 224 px grid) run at any input size here: the same windows and the same
weights, with the grid read from the input and cut into the windows its attention biases were built
for, so a detector takes 1333x800 images.
"""
from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.models.efficientvit_msra import LocalWindowAttention


def _window_attention_any_size(module, x: torch.Tensor) -> torch.Tensor:
    """timm's ``LocalWindowAttention.forward`` with the grid taken from ``x`` instead of the fixed one."""
    B, C, H, W = x.shape
    # the window its attention biases were built for (at most window_resolution; smaller in the last stage)
    window = math.isqrt(module.attn.attention_bias_idxs.shape[0])
    if H <= window and W <= window:
        if (H, W) != (window, window):  # the inner attention's bias is built for a full window
            padded = F.pad(x, (0, window - W, 0, window - H))
            return module.attn(padded)[:, :, :H, :W]
        return module.attn(x)
    x = x.permute(0, 2, 3, 1)
    pad_b, pad_r = (window - H % window) % window, (window - W % window) % window
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    nH, nW = (H + pad_b) // window, (W + pad_r) // window
    x = x.view(B, nH, window, nW, window, C).transpose(2, 3).reshape(B * nH * nW, window, window, C)
    x = module.attn(x.permute(0, 3, 1, 2))
    x = x.permute(0, 2, 3, 1).view(B, nH, nW, window, window, C).transpose(2, 3)
    x = x.reshape(B, nH * window, nW * window, C)[:, :H, :W].contiguous()
    return x.permute(0, 3, 1, 2)


class AnySizeLocalWindowAttention(LocalWindowAttention):
    """timm's window attention, its grid read from the input (the class AnySizeTIMMBackbone gives timm's modules)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _window_attention_any_size(self, x)


class AnySizeTIMMBackbone(BaseModule):
    """A timm model's stage maps as a tuple (see the module docstring). ``pretrained`` loads timm's
    weights (from its cache or hub; ``checkpoint_path`` a file of your own)."""

    def __init__(self, model_name: str, features_only: bool = True, pretrained: bool = False,
                 checkpoint_path: str = '', in_channels: int = 3, init_cfg=None, **kwargs):
        super().__init__(init_cfg)
        if not features_only:
            raise ValueError('AnySizeTIMMBackbone gives stage maps to a neck: features_only=False is not supported')
        self.timm_model = timm.create_model(model_name, features_only=True, pretrained=pretrained,
                                            checkpoint_path=checkpoint_path, in_chans=in_channels, **kwargs)
        for module in self.timm_model.modules():
            if type(module) is LocalWindowAttention:
                module.__class__ = AnySizeLocalWindowAttention
        self.out_channels = self.timm_model.feature_info.channels()
        self.strides = self.timm_model.feature_info.reduction()

    def init_weights(self):
        if self.init_cfg is not None:  # timm initialised (or loaded) the model already
            super().init_weights()

    def forward(self, x: torch.Tensor) -> tuple:
        return tuple(self.timm_model(x))
