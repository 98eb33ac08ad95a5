"""VAN: Visual Attention Network with Large Kernel Attention (Guo et al., arXiv:2202.09741).

Restates https://github.com/Visual-Attention-Network/VAN-Classification at commit
e19779b53a1b0828b51ecb4412d577541aee83a7 (models/van.py); its released weights, and mmpretrain's
VAN checkpoints, load unchanged.

One implementation for classification (timm API) and dense prediction (OpenMMLab backbone knobs).
Names follow the released checkpoints; OpenMMLab (mmpretrain) checkpoints are renamed on load.
"""
import math
import re
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .backbone_base import StageMapsBackbone, StageModel, merge_bn_args, reject_unknown_kwargs, resolve_arch
from .variants import VAN_ARCHS, VAN_MMPRETRAIN_ARCHS

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


class StageNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map, applied to its (B, H * W, C) tokens as the
    release does; in and out NCHW, so the module's output is the stage map (timm's FX features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = F.layer_norm(x.flatten(2).transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.transpose(1, 2).reshape(b, c, h, w)


# mmpretrain's names for VAN parameters -> the released names (applied in order).
_MMPRETRAIN_RENAMES = (
    (r'^blocks(\d)\.', r'block\1.'),
    (r'\.DW_conv\.', '.conv0.'),
    (r'\.DW_D_conv\.', '.conv_spatial.'),
    (r'^(patch_embed\d)\.projection\.', r'\1.proj.'),
    (r'\.mlp\.dwconv\.(weight|bias)$', r'.mlp.dwconv.dwconv.\1'),
    (r'^head\.fc\.', 'head.'),
)


class VAN(StageModel):
    """VAN, the classifier (the timm models ``van_b0`` ...): ``forward`` returns logits. The same network
    as an OpenMMLab backbone, returning stage maps, is :class:`VANBackbone`.

    Args:
        arch (str | dict): 'b0' .. 'b6' (mmpretrain's 'tiny'/'t', 'small'/'s', 'base'/'b',
            'large'/'l' name b0..b3), or a dict with ``embed_dims``, ``depths``, ``mlp_ratios``
            (or mmpretrain's ``ffn_ratios``). Default: 'b0'.
        in_chans (int): Input channels (mmpretrain: ``in_channels``). Default: 3.
        num_classes (int): Classifier outputs, 0 = no head. Default: 1000.
        drop_rate (float): Dropout on the pooled features before the head (timm's ``--drop``, as in
            :class:`LSNet`). Default: 0.
        mlp_drop_rate (float): Dropout in the blocks' MLPs (the released code's ``drop_rate``). Default: 0.
        drop_path_rate (float): Stochastic depth, linear over blocks. Default: 0.
        global_pool (str): 'avg', or '' to keep the last map (then ``num_classes`` must be 0).
            Default: 'avg'.
        frozen_stages (int): Stages to freeze, -1 = none. 0 freezes the first patch embedding; k > 0
            freezes it and stages 1..k, each with the downsampling that follows it (the numbering of
            our LSNet and of mmdet's ResNet; mmpretrain's VAN ``frozen_stages=k`` freezes the patch
            embeddings, blocks and norms of stages 1..k + 1 and corresponds to none of ours exactly).
            Default: -1.
        norm_eval (bool): Keep BatchNorm in eval mode while training. Default: False.
        norm_cfg (dict | None): The blocks' BatchNorm2d kind: ``dict(type='BN'|'SyncBN'|'GN', ...)``.
            Default: None (BN).
        with_cp (bool): Activation checkpointing of every block. Default: False.
        init_cfg (dict | list | None): ``dict(type='Pretrained', checkpoint=PATH, prefix='')`` or
            MMEngine initializers.
        bn_momentum, bn_eps, drop_block_rate: as for :class:`LSNet`.

    mmpretrain's arguments are accepted (its arch names, ``in_channels``, ``ffn_ratios``,
    ``patch_sizes=[7, 3, 3, 3]``, ``norm_cfg=dict(type='LN')`` for the stage-output norms), so that
    mmpretrain's VAN config dicts build :class:`VANBackbone` (``type='VAN'``) unchanged.

    Example:
        >>> VAN('b0', num_classes=10).eval()(torch.rand(2, 3, 224, 224)).shape
        torch.Size([2, 10])
    """

    arch_settings = VAN_ARCHS
    arch_aliases = VAN_MMPRETRAIN_ARCHS
    essential_keys = ('embed_dims', 'depths', 'mlp_ratios')
    first_conv = 'patch_embed1.proj'
    stem_pattern = r'^patch_embed1\.'
    stage_pattern = r'^(?:patch_embed|block|norm)(\d+)'
    block_patterns = ((r'^block(\d+)\.(\d+)', None), (r'^patch_embed(\d+)', (0,)), (r'^norm(\d+)', (99999,)))

    def __init__(self, arch: Union[str, Mapping[str, Any]] = 'b0', in_chans: int = 3, num_classes: int = 1000,
                 drop_rate: float = 0.0, mlp_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 global_pool: str = 'avg',
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, norm_cfg: Optional[dict] = None, with_cp: bool = False,
                 init_cfg: Optional[dict] = None, bn_momentum: Optional[float] = None,
                 bn_eps: Optional[float] = None, drop_block_rate: Optional[float] = None,
                 in_channels: Optional[int] = None, patch_sizes: Optional[Sequence[int]] = None,
                 **unknown):
        super().__init__()
        reject_unknown_kwargs(type(self), unknown)
        if patch_sizes is not None and tuple(patch_sizes) != (7, 3, 3, 3):
            raise ValueError(f'VAN: patch_sizes={list(patch_sizes)}; only the released [7, 3, 3, 3] is supported')
        if norm_cfg is not None and norm_cfg.get('type') == 'LN':
            norm_cfg = None  # mmpretrain's norm_cfg names the stage-output norms, which are LayerNorms here
        if in_channels is not None:  # mmpretrain's name
            if in_chans != 3 and in_chans != in_channels:
                raise ValueError(f'VAN: in_chans={in_chans} and in_channels={in_channels} disagree')
            in_chans = in_channels
        if isinstance(arch, Mapping) and 'ffn_ratios' in arch:  # mmpretrain's name
            arch = {('mlp_ratios' if k == 'ffn_ratios' else k): v for k, v in arch.items()}
        self.arch_name, settings = resolve_arch(arch, self.arch_settings, self.essential_keys, 'VAN',
                                                self.arch_aliases)
        embed_dims = tuple(settings['embed_dims'])
        depths = tuple(settings['depths'])
        mlp_ratios = tuple(settings['mlp_ratios'])
        self.num_stages = len(depths)
        if not len(embed_dims) == len(mlp_ratios) == self.num_stages:
            raise ValueError(f'VAN: embed_dims {embed_dims}, depths {depths} and mlp_ratios {mlp_ratios} '
                             'need the same length')
        self.embed_dims = embed_dims
        self.setup_stages(out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
                         init_cfg=init_cfg, with_cp=with_cp, num_classes=num_classes,
                         global_pool=global_pool, head_drop_rate=drop_rate)
        self.mlp_drop_rate = mlp_drop_rate
        self.num_features = self.head_hidden_size = embed_dims[-1]

        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.feature_info = []
        for stage in range(self.num_stages):
            self.add_module(f'patch_embed{stage + 1}', OverlapPatchEmbed(
                in_chans if stage == 0 else embed_dims[stage - 1], embed_dims[stage],
                patch_size=7 if stage == 0 else 3, stride=4 if stage == 0 else 2))
            self.add_module(f'block{stage + 1}', nn.ModuleList(
                Block(embed_dims[stage], mlp_ratios[stage], mlp_drop_rate, drop_rates[sum(depths[:stage]) + d])
                for d in range(depths[stage])))
            self.add_module(f'norm{stage + 1}', StageNorm(embed_dims[stage], eps=1e-6))
            self.feature_info.append(dict(num_chs=embed_dims[stage], reduction=4 * 2 ** stage,
                                          module=f'norm{stage + 1}'))
        self.make_head(self.num_classes)
        self.apply(self._init_weights)
        self.finish_setup(merge_bn_args(norm_cfg, bn_momentum, bn_eps, drop_block_rate, 'VAN'))

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

    # -- backbone hooks -------------------------------------------------------------------------------
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return x  # VAN's first patch embedding belongs to its first stage

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, f'patch_embed{index + 1}')(x)
        for block in getattr(self, f'block{index + 1}'):
            x = self.run_block(block, x)
        return getattr(self, f'norm{index + 1}')(x)

    def forward_stages_by_name(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed1(x)
        for block in self.block1:
            x = block(x)
        x = self.patch_embed2(self.norm1(x))
        for block in self.block2:
            x = block(x)
        x = self.patch_embed3(self.norm2(x))
        for block in self.block3:
            x = block(x)
        x = self.patch_embed4(self.norm3(x))
        for block in self.block4:
            x = block(x)
        return self.norm4(x)

    def stage_modules(self, index: int) -> list[nn.Module]:
        if index < 0:
            return [self.patch_embed1]
        modules = [getattr(self, f'block{index + 1}'), getattr(self, f'norm{index + 1}')]
        if hasattr(self, f'patch_embed{index + 2}'):  # the next stage's downsampling belongs to this stage
            modules.append(getattr(self, f'patch_embed{index + 2}'))
        return modules

    def remove_stage(self, index: int) -> None:
        for prefix in ('patch_embed', 'block', 'norm'):
            delattr(self, f'{prefix}{index + 1}')

    def make_head(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict, model: 'VAN') -> dict:
        """Map mmpretrain's VAN names in an (unwrapped) state dict to the released ones; a native layout
        passes unchanged."""
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


# The released weights: one Hugging Face repository per variant, holding the original checkpoint.
_HUB_FILES = {
    'b0': ('Visual-Attention-Network/VAN-Tiny-original', 'van_tiny_754.pth.tar'),
    'b1': ('Visual-Attention-Network/VAN-Small-original', 'van_small_811.pth.tar'),
    'b2': ('Visual-Attention-Network/VAN-Base-original', 'van_base_828.pth.tar'),
    'b3': ('Visual-Attention-Network/VAN-Large-original', 'van_large_839.pth.tar'),
}



class VANBackbone(StageMapsBackbone, VAN):
    """VAN as an OpenMMLab backbone (``type='VAN'`` in mmdet/mmseg/mmpretrain configs): :class:`VAN`'s
    layers and checkpoint layout without a head; ``forward`` returns the maps of the stages in
    ``out_indices`` (strides 4, 8, 16, 32; each after its LayerNorm) as a tuple. The default is
    mmpretrain's VAN's, the last stage only, so its configs (which do not set it) build unchanged; the
    detection and segmentation configs ask for all four. Every other argument is :class:`VAN`'s
    (``mlp_drop_rate`` is the MLPs' dropout); those of the head (``num_classes``, ``drop_rate``) are refused.

    Example:
        >>> model = VANBackbone('b0', out_indices=(0, 1, 2, 3)).eval()
        >>> [tuple(f.shape) for f in model(torch.rand(1, 3, 97, 130))]
        [(1, 32, 25, 33), (1, 64, 13, 17), (1, 160, 7, 9), (1, 256, 4, 5)]
    """

    head_arguments = {'num_classes': 0, 'drop_rate': 0.0}

    def __init__(self, arch: Union[str, Mapping[str, Any]] = 'b0', out_indices: Sequence[int] = (-1,), **kwargs):
        super().__init__(arch, out_indices=out_indices, **self.classifier_kwargs(kwargs))

def _cfg(arch: str) -> dict:
    # The released weights were trained on inputs normalised with mean = std = 0.5.
    hub = {}
    if arch in _HUB_FILES:  # read by VAN.load_pretrained (safe reader, in_chans and head adaptation)
        hub = dict(hf_hub_id=_HUB_FILES[arch][0], hf_hub_filename=_HUB_FILES[arch][1], custom_load='hf')
    return dict(**hub, num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7), crop_pct=0.875,
                interpolation='bicubic', mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                first_conv=VAN.first_conv, classifier='head', license='mit', paper_ids='arXiv:2202.09741')


_VARIANTS = {f'van_{arch}': arch for arch in VAN.arch_settings}
# timm's register_model reads this module's ``default_cfgs`` for each registered name.
default_cfgs = generate_default_cfgs({name: _cfg(arch) for name, arch in _VARIANTS.items()})


def _register(name: str, arch: str) -> None:
    def factory(pretrained: bool = False, **kwargs) -> VAN:
        out_indices = kwargs.pop('out_indices', (0, 1, 2, 3))
        return build_model_with_cfg(
            VAN, name, pretrained, arch=arch, pretrained_filter_fn=VAN.pretrained_filter,
            feature_cfg=dict(feature_cls='getter', out_indices=out_indices), **kwargs)
    factory.__name__ = name
    factory.__doc__ = f'VAN-{arch.upper()}.'
    factory.__module__ = __name__
    globals()[name] = register_model(factory)


for _name, _arch in _VARIANTS.items():
    _register(_name, _arch)
