"""What LSNet and VAN share as backbones: arch resolution, dense-prediction knobs, init_cfg."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checkpoint import load_pretrained_file


def resolve_arch(arch: str | Mapping[str, Any], arch_settings: Mapping[str, Mapping[str, Any]],
                 essential_keys: Sequence[str], model_name: str) -> tuple[Optional[str], dict]:
    """Turn ``arch`` (a name from ``arch_settings`` or a dict of settings) into (name, settings)."""
    if isinstance(arch, str):
        key = arch.lower()
        if key not in arch_settings:
            raise ValueError(f'{model_name}: unknown arch {arch!r}; valid: {sorted(arch_settings)} '
                             f'or a dict with keys {list(essential_keys)}')
        return key, dict(arch_settings[key])
    if isinstance(arch, Mapping):
        missing = [k for k in essential_keys if k not in arch]
        if missing:
            raise ValueError(f'{model_name}: custom arch dict lacks {missing}; it needs {list(essential_keys)}')
        unknown = [k for k in arch if k not in essential_keys and k not in next(iter(arch_settings.values()))]
        if unknown:
            raise ValueError(f'{model_name}: custom arch dict has unknown keys {unknown}; valid keys: '
                             f'{sorted(set(essential_keys) | set(next(iter(arch_settings.values()))))}')
        return None, dict(arch)
    raise TypeError(f'{model_name}: arch must be a name or a dict, got {type(arch).__name__}')


def reject_unknown_kwargs(cls: type, unknown: Mapping[str, Any]) -> None:
    """A misspelt config key fails naming it, the closest valid argument and all valid ones."""
    if not unknown:
        return
    import difflib
    import inspect
    valid = [name for name, p in inspect.signature(cls.__init__).parameters.items()
             if name != 'self' and p.kind is not inspect.Parameter.VAR_KEYWORD]
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    raise TypeError(f'{cls.__name__} got unknown argument(s) {", ".join(hints)}; valid: {valid}')


def check_out_indices(out_indices: Optional[Sequence[int]], num_stages: int, model_name: str):
    if out_indices is None:
        return None
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    normalised = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_stages <= index < num_stages:
            raise ValueError(f'{model_name}: out_indices {tuple(out_indices)} has {index!r}, valid '
                             f'stage indices are 0..{num_stages - 1} (or negative from the end)')
        normalised.append(index % num_stages)
    return tuple(normalised)


class DenseBackboneMixin:
    """``frozen_stages``, ``norm_eval`` and ``init_cfg`` behaviour shared by our backbones.

    Subclasses provide ``stage_modules(index)`` (the modules of stage ``index``, the stem included
    in stage 0's list when ``index == -1``) and ``checkpoint_filter_fn``/``classifier_prefixes``.
    """

    frozen_stages: int
    norm_eval: bool
    init_cfg: Optional[dict]
    classifier_prefixes: tuple[str, ...] = ('head.',)

    def _check_dense_args(self, frozen_stages: int, num_stages: int, init_cfg: Optional[dict]) -> None:
        name = type(self).__name__
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name}: frozen_stages={frozen_stages!r}; valid: -1 (none), 0 (stem) '
                             f'.. {num_stages} (all stages)')
        if init_cfg is not None:
            cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
            for cfg in cfgs:
                if not isinstance(cfg, Mapping) or 'type' not in cfg:
                    raise ValueError(f'{name}: init_cfg entries need a "type", got {cfg!r}')
                if cfg['type'] == 'Pretrained':
                    unknown = set(cfg) - {'type', 'checkpoint', 'prefix', 'map_location'}
                    if 'checkpoint' not in cfg or unknown:
                        raise ValueError(f'{name}: init_cfg {dict(cfg)} needs "checkpoint" and accepts '
                                         f'only checkpoint, prefix, map_location')

    def _freeze_stages(self) -> None:
        for index in range(-1, self.frozen_stages):
            for module in self.stage_modules(index):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` when given."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        for cfg in cfgs:
            if cfg and cfg.get('type') == 'Pretrained':
                self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix', ''))
        self.is_init = True

    def load_pretrained(self, path: str, prefix: str = '') -> None:
        """Load a released, timm- or OpenMMLab-wrapped checkpoint file into this model."""
        load_pretrained_file(self, path, prefix=prefix, filter_fn=type(self).checkpoint_filter_fn,
                             optional_prefixes=self.classifier_prefixes)

    def stage_modules(self, index: int) -> list[nn.Module]:
        raise NotImplementedError

    def _intermediate_indices(self, indices, output_fmt: str) -> list[int]:
        """timm's ``indices`` argument (None: all, n: the last n, or a list) as stage indices."""
        name = type(self).__name__
        if output_fmt != 'NCHW':
            raise ValueError(f"{name}: output_fmt {output_fmt!r} is not supported; valid: 'NCHW'")
        if indices is None:
            return list(range(self.num_stages))
        if isinstance(indices, int):
            return list(range(self.num_stages - indices, self.num_stages))
        return list(check_out_indices(indices, self.num_stages, name))

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
        return state_dict


def fuse_model(model: nn.Module) -> nn.Module:
    """Replace every submodule that has ``fuse()`` by its fused form (deploy re-parameterisation)."""
    for name, child in model.named_children():
        if hasattr(child, 'fuse'):
            setattr(model, name, child.fuse())
        else:
            fuse_model(child)
    return model


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Fold an eval-mode BatchNorm into the preceding convolution."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused
