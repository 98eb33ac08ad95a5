"""VAN: Visual Attention Network with Large Kernel Attention (Guo et al., arXiv:2202.09741).

One implementation for classification (timm API) and dense prediction (OpenMMLab backbone knobs).
Names follow the released checkpoints; OpenMMLab (mmpretrain) checkpoints are renamed on load.
"""
from __future__ import annotations

import math
import re
from typing import Any, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from timm.layers import DropPath, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .backbone_base import DenseBackboneMixin, check_out_indices, reject_unknown_kwargs, resolve_arch

__all__ = ['VAN']


class DWConv(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.dwconv = DWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class LKA(nn.Module):
    """Large Kernel Attention: 5x5 depth-wise, 7x7 depth-wise dilated by 3, 1x1; gates the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, stride=1, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class SpatialAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = LKA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class Block(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 layer_scale_init: float = 1e-2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(layer_scale_init * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class OverlapPatchEmbed(nn.Module):
    def __init__(self, in_chs: int, dim: int, patch_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chs, dim, patch_size, stride, patch_size // 2)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


# mmpretrain's names for VAN parameters -> the released names (applied in order).
_MMPRETRAIN_RENAMES = (
    (r'^blocks(\d)\.', r'block\1.'),
    (r'\.DW_conv\.', '.conv0.'),
    (r'\.DW_D_conv\.', '.conv_spatial.'),
    (r'^(patch_embed\d)\.projection\.', r'\1.proj.'),
    (r'\.mlp\.dwconv\.(weight|bias)$', r'.mlp.dwconv.dwconv.\1'),
    (r'^head\.fc\.', 'head.'),
)


class VAN(DenseBackboneMixin, nn.Module):
    """VAN backbone and classifier.

    Args:
        arch (str | dict): 'b0' .. 'b6', or a dict with ``embed_dims``, ``depths``, ``mlp_ratios``.
            Default: 'b0'.
        in_chans (int): Input channels. Default: 3.
        num_classes (int): Classifier outputs, 0 = no head; ignored (no head) in dense mode. Default: 1000.
        drop_rate (float): Dropout in the MLPs. Default: 0.
        drop_path_rate (float): Stochastic depth, linear over blocks. Default: 0.
        out_indices (Sequence[int] | None): Dense mode: return these stage maps (strides 4, 8, 16, 32),
            each after its LayerNorm. None: classification. Default: None.
        frozen_stages (int): Stages to freeze (0 = first patch embedding only), -1 = none. Default: -1.
        norm_eval (bool): Keep BatchNorm in eval mode while training. Default: False.
        init_cfg (dict | None): ``dict(type='Pretrained', checkpoint=PATH, prefix='')``.

    Example:
        >>> model = VAN('b0', out_indices=(0, 1, 2, 3)).eval()
        >>> [tuple(f.shape) for f in model(torch.rand(1, 3, 97, 130))]
        [(1, 32, 25, 33), (1, 64, 13, 17), (1, 160, 7, 9), (1, 256, 4, 5)]
    """

    arch_settings = {
        'b0': dict(embed_dims=(32, 64, 160, 256), depths=(3, 3, 5, 2), mlp_ratios=(8, 8, 4, 4)),
        'b1': dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 4, 2), mlp_ratios=(8, 8, 4, 4)),
        'b2': dict(embed_dims=(64, 128, 320, 512), depths=(3, 3, 12, 3), mlp_ratios=(8, 8, 4, 4)),
        'b3': dict(embed_dims=(64, 128, 320, 512), depths=(3, 5, 27, 3), mlp_ratios=(8, 8, 4, 4)),
        'b4': dict(embed_dims=(64, 128, 320, 512), depths=(3, 6, 40, 3), mlp_ratios=(8, 8, 4, 4)),
        'b5': dict(embed_dims=(96, 192, 480, 768), depths=(3, 3, 24, 3), mlp_ratios=(8, 8, 4, 4)),
        'b6': dict(embed_dims=(96, 192, 384, 768), depths=(6, 6, 90, 6), mlp_ratios=(8, 8, 4, 4)),
    }
    essential_keys = ('embed_dims', 'depths', 'mlp_ratios')

    def __init__(self, arch: Union[str, Mapping[str, Any]] = 'b0', in_chans: int = 3, num_classes: int = 1000,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, init_cfg: Optional[dict] = None,
                 global_pool: str = 'avg', img_size: int = 224, **unknown):
        super().__init__()
        reject_unknown_kwargs(type(self), unknown)
        self.arch_name, settings = resolve_arch(arch, self.arch_settings, self.essential_keys, 'VAN')
        embed_dims = tuple(settings['embed_dims'])
        depths = tuple(settings['depths'])
        mlp_ratios = tuple(settings['mlp_ratios'])
        self.num_stages = len(depths)
        if not len(embed_dims) == len(mlp_ratios) == self.num_stages:
            raise ValueError(f'VAN: embed_dims {embed_dims}, depths {depths} and mlp_ratios {mlp_ratios} '
                             'need the same length')
        if global_pool != 'avg':
            raise ValueError(f"VAN: global_pool {global_pool!r} is not supported; valid: 'avg'")
        self.embed_dims = embed_dims
        self.out_indices = check_out_indices(out_indices, self.num_stages, 'VAN')
        self._check_dense_args(frozen_stages, self.num_stages, init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.init_cfg = init_cfg
        self.num_classes = 0 if self.out_indices is not None else num_classes
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.feature_info = []
        for stage in range(self.num_stages):
            self.add_module(f'patch_embed{stage + 1}', OverlapPatchEmbed(
                in_chans if stage == 0 else embed_dims[stage - 1], embed_dims[stage],
                patch_size=7 if stage == 0 else 3, stride=4 if stage == 0 else 2))
            self.add_module(f'block{stage + 1}', nn.ModuleList(
                Block(embed_dims[stage], mlp_ratios[stage], drop_rate, drop_rates[sum(depths[:stage]) + d])
                for d in range(depths[stage])))
            self.add_module(f'norm{stage + 1}', nn.LayerNorm(embed_dims[stage], eps=1e-6))
            self.feature_info.append(dict(num_chs=embed_dims[stage], reduction=4 * 2 ** stage,
                                          module=f'norm{stage + 1}'))
        self.head = nn.Linear(embed_dims[-1], self.num_classes) if self.num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        self._freeze_stages()

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def stage_modules(self, index: int) -> list[nn.Module]:
        if index < 0:
            return [self.patch_embed1]
        modules = [getattr(self, f'block{index + 1}'), getattr(self, f'norm{index + 1}')]
        if index + 1 < self.num_stages:  # the next stage's downsampling belongs to this stage
            modules.append(getattr(self, f'patch_embed{index + 2}'))
        return modules

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict, model: 'VAN') -> dict:
        """Map mmpretrain's VAN names to the released ones; a native layout passes unchanged."""
        if not any(('DW_conv' in k or k.startswith('blocks') or '.projection.' in k) for k in state_dict):
            return state_dict
        out = {}
        for key, value in state_dict.items():
            for pattern, replacement in _MMPRETRAIN_RENAMES:
                key = re.sub(pattern, replacement, key)
            out[key] = value
        return out

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        if global_pool not in (None, 'avg'):
            raise ValueError(f"VAN: global_pool {global_pool!r} is not supported; valid: 'avg'")
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _stage(self, x: torch.Tensor, stage: int, to_map: bool = True) -> torch.Tensor:
        x = getattr(self, f'patch_embed{stage + 1}')(x)
        for block in getattr(self, f'block{stage + 1}'):
            x = block(x)
        b, c, h, w = x.shape
        x = getattr(self, f'norm{stage + 1}')(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(b, c, h, w) if to_map else x

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """timm's feature API: the stage maps (after their LayerNorm) at ``indices``."""
        take = self._intermediate_indices(indices, output_fmt)
        intermediates = []
        last = max(take) if stop_early else self.num_stages - 1
        for stage in range(last + 1):
            x = self._stage(x, stage)
            if stage in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True):
        take = list(range(self.num_stages - indices, self.num_stages)) if isinstance(indices, int) else indices
        self.num_stages = max(take) + 1
        if prune_head:
            self.reset_classifier(0)
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in range(self.num_stages - 1):
            x = self._stage(x, stage)
        return self._stage(x, self.num_stages - 1, to_map=False)  # (B, N, C) tokens

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(1) if x.dim() == 3 else x.mean((2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor):
        if self.out_indices is not None:
            outs = []
            for stage in range(self.num_stages):
                x = self._stage(x, stage)
                if stage in self.out_indices:
                    outs.append(x)
            return tuple(outs)
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    # The released weights were trained on inputs normalised with mean = std = 0.5.
    return dict(url='', num_classes=1000, input_size=(3, 224, 224), pool_size=None, crop_pct=0.875,
                interpolation='bicubic', mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                first_conv='patch_embed1.proj', classifier='head', custom_load=True, license='mit',
                paper_ids='arXiv:2202.09741', **kwargs)


_VARIANTS = {f'van_{arch}': arch for arch in VAN.arch_settings}
# timm's register_model reads this module's ``default_cfgs`` for each registered name.
default_cfgs = generate_default_cfgs({name: _cfg() for name in _VARIANTS})


def _register(name: str, arch: str) -> None:
    def factory(pretrained: bool = False, **kwargs) -> VAN:
        out_indices = kwargs.pop('out_indices', (0, 1, 2, 3))
        return build_model_with_cfg(
            VAN, name, pretrained, arch=arch, pretrained_filter_fn=VAN.checkpoint_filter_fn,
            feature_cfg=dict(feature_cls='getter', out_indices=out_indices), **kwargs)
    factory.__name__ = name
    factory.__doc__ = f'VAN-{arch.upper()}.'
    factory.__module__ = __name__
    globals()[name] = register_model(factory)


for _name, _arch in _VARIANTS.items():
    _register(_name, _arch)
