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


class AnySizeLocalWindowAttention(LocalWindowAttention):
    """timm's window attention, its grid read from the input (the class AnySizeTIMMBackbone gives timm's modules)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """timm's forward with the grid taken from ``x`` instead of the fixed one."""
        B, C, H, W = x.shape
        # the window its attention biases were built for (at most window_resolution; smaller in the last stage)
        window = math.isqrt(self.attn.attention_bias_idxs.shape[0])
        if H <= window and W <= window:
            if (H, W) != (window, window):  # the inner attention's bias is built for a full window
                padded = F.pad(x, (0, window - W, 0, window - H))
                return self.attn(padded)[:, :, :H, :W]
            return self.attn(x)
        x = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (window - H % window) % window, (window - W % window) % window
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        nH, nW = (H + pad_b) // window, (W + pad_r) // window
        x = x.view(B, nH, window, nW, window, C).transpose(2, 3).reshape(B * nH * nW, window, window, C)
        x = self.attn(x.permute(0, 3, 1, 2))
        x = x.permute(0, 2, 3, 1).view(B, nH, nW, window, window, C).transpose(2, 3)
        x = x.reshape(B, nH * window, nW * window, C)[:, :H, :W].contiguous()
        return x.permute(0, 3, 1, 2)


class AnySizeTIMMBackbone(BaseModule):
    """A timm model's stage maps as a tuple (see the module docstring): the whole timm model without its
    classifier, run through timm's ``forward_intermediates``, so its parameter names are timm's own and
    a timm checkpoint loads as it is. ``out_indices``: the stages whose maps are returned (default all);
    ``pretrained`` / ``checkpoint_path``: timm's own loading; ``init_cfg=dict(type='Pretrained',
    checkpoint=PATH)``: a timm checkpoint read safely when the weights are initialised (its classifier's
    keys are skipped, anything else must match)."""

    def __init__(self, model_name: str, features_only: bool = True, pretrained: bool = False,
                 checkpoint_path: str = '', in_channels: int = 3, out_indices=None, init_cfg=None, **kwargs):
        super().__init__(init_cfg)
        if not features_only:
            raise ValueError('AnySizeTIMMBackbone gives stage maps to a neck: features_only=False is not supported')
        self.timm_model = timm.create_model(model_name, pretrained=pretrained, checkpoint_path=checkpoint_path,
                                            in_chans=in_channels, num_classes=0, **kwargs)
        for module in self.timm_model.modules():
            if type(module) is LocalWindowAttention:
                module.__class__ = AnySizeLocalWindowAttention
        stages = self.timm_model.feature_info
        self.out_indices = list(range(len(stages))) if out_indices is None else [i % len(stages) for i in out_indices]
        self.out_channels = [stages[i]['num_chs'] for i in self.out_indices]
        self.strides = [stages[i]['reduction'] for i in self.out_indices]

    def init_weights(self):
        init = self.init_cfg
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            from ..checkpoint import load_state_dict_checked, read_checkpoint, unwrap_state_dict
            source = f'{type(self).__name__} checkpoint {init["checkpoint"]}'
            state = unwrap_state_dict(read_checkpoint(init['checkpoint']), source)
            own = self.timm_model.state_dict()
            head = tuple(f'{name}.' for name in _classifier_names(self.timm_model))
            load_state_dict_checked(self.timm_model, {k: v for k, v in state.items()
                                                      if k in own or not k.startswith(head)}, source)
        elif init is not None:
            super().init_weights()

    def forward(self, x: torch.Tensor) -> tuple:
        return tuple(self.timm_model.forward_intermediates(x, indices=self.out_indices, intermediates_only=True))


def _classifier_names(model) -> list:
    """The modules that hold the classifier (pretrained_cfg's ``classifier``, e.g. 'head.linear', and the
    module around it, 'head', whose other layers a model without classes drops too)."""
    names = model.pretrained_cfg.get('classifier', 'head')
    return [name.split('.')[0] for name in ([names] if isinstance(names, str) else names)]
