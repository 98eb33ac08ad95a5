"""What LSNet and VAN share: one backbone base class for classification (timm's model API) and
dense prediction (OpenMMLab's backbone knobs).

A subclass builds its layers and describes them through five hooks: ``forward_stem(x)``,
``forward_stage(index, x)`` (running its blocks through ``run_block`` so that activation
checkpointing applies), ``forward_stages_by_name(x)`` (the same stem and stages with every module
named in the code, the path TorchScript compiles), ``stage_modules(index)`` (what ``frozen_stages``
freezes) and ``make_head(num_classes)``. Everything else lives here once: the forward passes, the
classifier head and pooling, ``forward_intermediates`` and pruning, activation checkpointing,
freezing, ``norm_eval``, the norm-layer choice, ``init_cfg`` and what ``torch.jit.script`` refuses.
"""
import difflib
import inspect
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint
from timm.models._features import feature_take_indices

from ..checkpoint import load_pretrained_file, unwrap_if_wrapped

GLOBAL_POOLS = ('avg', '')
NORM_TYPES = ('BN', 'SyncBN', 'GN')


@torch.fx.wrap
def channels_last_on_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory format where oneDNN runs the convolutions (a float32 or bfloat16
    4-D CPU tensor), else ``x`` itself. Only the memory layout changes, not the values. Wrapped for
    FX: tracing records the call instead of freezing one branch."""
    if x.dim() == 4 and x.device.type == 'cpu' and (x.dtype == torch.float32 or x.dtype == torch.bfloat16):
        return x.contiguous(memory_format=torch.channels_last)
    return x


@torch.fx.wrap
def in_layout_of(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory format of ``reference`` (channels-last or contiguous)."""
    if reference.dim() == 4 and not reference.is_contiguous() \
            and reference.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def resolve_arch(arch: Union[str, Mapping[str, Any]], arch_settings: Mapping[str, Mapping[str, Any]],
                 essential_keys: Sequence[str], model_name: str,
                 aliases: Mapping[str, str] = {}) -> Tuple[Optional[str], dict]:
    """Turn ``arch`` (a name from ``arch_settings`` or ``aliases``, or a dict) into (name, settings)."""
    if isinstance(arch, str):
        key = aliases.get(arch.lower(), arch.lower())
        if key not in arch_settings:
            raise ValueError(f'{model_name}: unknown arch {arch!r}; valid: {sorted(arch_settings)}'
                             f'{" or " + str(sorted(aliases)) if aliases else ""} '
                             f'or a dict with keys {list(essential_keys)}')
        return key, dict(arch_settings[key])
    if isinstance(arch, Mapping):
        missing = [k for k in essential_keys if k not in arch]
        if missing:
            raise ValueError(f'{model_name}: custom arch dict lacks {missing}; it needs {list(essential_keys)}')
        known = set(essential_keys) | set(next(iter(arch_settings.values())))
        unknown = [k for k in arch if k not in known]
        if unknown:
            raise ValueError(f'{model_name}: custom arch dict has unknown keys {unknown}; valid keys: '
                             f'{sorted(known)}')
        return None, dict(arch)
    raise TypeError(f'{model_name}: arch must be a name or a dict, got {type(arch).__name__}')


def reject_unknown_kwargs(cls: type, unknown: Mapping[str, Any]) -> None:
    """A misspelt config key fails naming it, the closest valid argument and all valid ones."""
    if not unknown:
        return
    valid = [name for name, p in inspect.signature(cls.__init__).parameters.items()
             if name != 'self' and p.kind is not inspect.Parameter.VAR_KEYWORD]
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    raise TypeError(f'{cls.__name__} got unknown argument(s) {", ".join(hints)}; valid: {valid}')


def check_out_indices(out_indices: Optional[Union[int, Sequence[int]]], num_stages: int,
                      model_name: str) -> Optional[Tuple[int, ...]]:
    """Stage indices (negative ones counted from the end) as a tuple of non-negative indices."""
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


def check_norm_cfg(norm_cfg: Optional[Mapping[str, Any]], model_name: str) -> dict:
    """``norm_cfg`` as OpenMMLab writes it: ``dict(type='BN'|'SyncBN'|'GN', requires_grad=True,
    eps=..., momentum=..., num_groups=...)`` for the model's BatchNorm2d layers."""
    cfg = dict(norm_cfg or dict(type='BN'))
    kind = cfg.get('type')
    if kind not in NORM_TYPES:
        raise ValueError(f'{model_name}: norm_cfg type {kind!r} is not supported; valid: {list(NORM_TYPES)}')
    allowed = {'type', 'requires_grad', 'eps'} | ({'num_groups'} if kind == 'GN' else {'momentum'})
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(f'{model_name}: norm_cfg {cfg} has unknown keys {unknown}; valid for {kind}: '
                         f'{sorted(allowed)}')
    if kind == 'GN' and 'num_groups' not in cfg:
        raise ValueError(f'{model_name}: norm_cfg type GN needs num_groups')
    return cfg


def merge_bn_args(norm_cfg: Optional[Mapping[str, Any]], bn_momentum: Optional[float],
                  bn_eps: Optional[float], drop_block_rate: Optional[float], model_name: str) -> dict:
    """timm's ``bn_momentum``/``bn_eps`` (what its ``train.py`` passes) folded into ``norm_cfg``."""
    if drop_block_rate:
        raise ValueError(f'{model_name}: drop_block_rate={drop_block_rate!r}: the model has no DropBlock '
                         'layers; use drop_path_rate or drop_rate')
    cfg = dict(norm_cfg or dict(type='BN'))
    if bn_momentum is not None:
        cfg['momentum'] = bn_momentum
    if bn_eps is not None:
        cfg['eps'] = bn_eps
    return cfg


def replace_batchnorms(module: nn.Module, norm_cfg: Mapping[str, Any]) -> None:
    """Swap every BatchNorm2d under ``module`` for the layer ``norm_cfg`` describes (in place),
    keeping parameter names, so checkpoints of the BN model load into SyncBN models unchanged."""
    kind = norm_cfg['type']
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            eps = norm_cfg.get('eps', child.eps)
            if kind == 'GN':
                new: nn.Module = nn.GroupNorm(norm_cfg['num_groups'], channels, eps=eps)
            elif kind == 'SyncBN':
                new = nn.SyncBatchNorm(channels, eps=eps, momentum=norm_cfg.get('momentum', child.momentum))
            else:
                new = nn.BatchNorm2d(channels, eps=eps, momentum=norm_cfg.get('momentum', child.momentum))
            with torch.no_grad():
                new.weight.copy_(child.weight)
                new.bias.copy_(child.bias)
            setattr(module, name, new)
        else:
            replace_batchnorms(child, norm_cfg)


def _mmengine_initializers():
    try:
        from mmengine.registry import WEIGHT_INITIALIZERS
    except ImportError:
        return None
    return WEIGHT_INITIALIZERS


class StageModel(nn.Module):
    """What LSNet and VAN share: a stem and stages, timm's model API and OpenMMLab's backbone behaviour.

    Each architecture comes as two classes with the same layers, weights and checkpoint layout:
    the classifier (``LSNet``, ``VAN``; the timm models), whose ``forward`` returns logits, and the
    OpenMMLab backbone (``LSNetBackbone``, ``VANBackbone``; ``type='LSNet'`` / ``type='VAN'`` in
    configs, :class:`StageMapsBackbone`), whose ``forward`` returns the stage maps of ``out_indices``
    as a tuple and which has no head.

    The protocol of an architecture (how a third one is added): its ``__init__`` resolves its variant,
    calls :meth:`setup_stages` with the shared arguments before building any layer, builds the stem
    and stages (filling ``feature_info``) and the head (``make_head``), then calls
    :meth:`finish_setup`. It implements ``forward_stem``, ``forward_stage``, ``forward_stages_by_name``
    (TorchScript), ``stage_modules`` (what ``frozen_stages`` freezes) and ``make_head``, and may
    override ``classify`` and ``checkpoint_filter_fn``.
    """

    arch_settings: Dict[str, Dict[str, Any]]
    essential_keys: Tuple[str, ...]
    num_stages: int
    num_features: int
    # timm's group_matcher: parameter-name patterns of the stem and of each stage / block.
    stem_pattern: str
    stage_pattern: str
    block_patterns: Tuple[Tuple[str, Optional[Tuple[int, ...]]], ...]

    def setup_stages(self, *, out_indices, frozen_stages: int, norm_eval: bool, init_cfg,
                    with_cp: bool, num_classes: int, global_pool: str, head_drop_rate: float) -> None:
        """Check and store the arguments shared by every architecture (call before building layers).
        ``out_indices`` is a backbone's (:class:`StageMapsBackbone`); a classifier gets None."""
        name = type(self).__name__
        if out_indices is not None and not isinstance(self, StageMapsBackbone):
            raise ValueError(f'{name} is the classifier (its forward returns logits) and takes no out_indices; '
                             f'the stage maps come from {name}Backbone (type={name!r} in OpenMMLab configs) or '
                             f'timm.create_model(..., features_only=True, out_indices=...)')
        self.cpu_channels_last = type(self).cpu_channels_last  # on the instance, where TorchScript reads it
        self.out_indices = check_out_indices(out_indices, self.num_stages, name)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'{name}: frozen_stages={frozen_stages!r}; valid: -1 (none), 0 (stem) '
                             f'.. {self.num_stages} (all stages)')
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f'{name}: global_pool {global_pool!r} is not supported; valid: {list(GLOBAL_POOLS)}')
        if not 0.0 <= head_drop_rate < 1.0:
            raise ValueError(f'{name}: drop_rate={head_drop_rate!r}; valid: 0 <= drop_rate < 1')
        self.init_cfg = self._check_init_cfg(init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.grad_checkpointing = bool(with_cp)
        self.num_classes = 0 if self.out_indices is not None else num_classes
        self.global_pool = global_pool
        self.head_drop_rate = head_drop_rate

    def finish_setup(self, norm_cfg: Optional[Mapping[str, Any]]) -> None:
        """After the layers exist: apply ``norm_cfg`` and freeze what ``frozen_stages`` asks for."""
        self.norm_cfg = check_norm_cfg(norm_cfg, type(self).__name__)
        if self.norm_cfg['type'] != 'BN' or 'eps' in self.norm_cfg or 'momentum' in self.norm_cfg:
            for index in range(-1, self.num_stages):
                for module in self.stage_modules(index):
                    replace_batchnorms(module, self.norm_cfg)
        if not self.norm_cfg.get('requires_grad', True):
            for index in range(-1, self.num_stages):
                for module in self.stage_modules(index):
                    for norm in module.modules():
                        if isinstance(norm, (_BatchNorm, nn.GroupNorm)):
                            norm.requires_grad_(False)
        self._freeze_stages()

    # -- subclass hooks -------------------------------------------------------------------------
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_stages_by_name(self, x: torch.Tensor) -> torch.Tensor:
        """The stem and every stage, each module named in the code: TorchScript's path, which cannot
        look a stage up by its index. Same result as the eager path; no activation checkpointing."""
        raise NotImplementedError

    def stage_modules(self, index: int) -> List[nn.Module]:
        """The modules ``frozen_stages`` freezes for stage ``index`` (-1: the stem)."""
        raise NotImplementedError

    def make_head(self, num_classes: int) -> None:
        raise NotImplementedError

    def classify(self, x: torch.Tensor):
        return self.head(x)

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
        """A foreign state dict (already unwrapped) in this architecture's own names and shapes."""
        return state_dict

    @classmethod
    def pretrained_filter(cls, state_dict: dict, model: nn.Module) -> dict:
        """timm's ``pretrained_filter_fn``. timm hands it a ``pretrained_cfg_overlay=dict(state_dict=...)``
        as the user gave it, possibly a whole checkpoint, so it is unwrapped here (the file paths read and
        unwrap in :func:`lsnet.checkpoint.load_pretrained_file`), then adapted by ``checkpoint_filter_fn``."""
        return cls.checkpoint_filter_fn(unwrap_if_wrapped(state_dict), model)

    classifier_prefixes: Tuple[str, ...] = ('head.',)

    # -- running blocks -------------------------------------------------------------------------
    # On CPU, oneDNN's convolutions run 1.1-3x faster (forward and backward) on channels-last tensors
    # than on NCHW ones; a subclass whose blocks keep that layout sets this, and its stem then receives
    # the input in channels-last format. The maps the model returns have the input's format.
    cpu_channels_last: bool = False

    def conv_layout(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the stem receives it: channels-last on CPU when ``cpu_channels_last``."""
        return channels_last_on_cpu(x) if self.cpu_channels_last else x

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One block, under activation checkpointing when it is on and gradients are recorded."""
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's map, (B, num_features, H / stride, W / stride)."""
        if torch.jit.is_scripting():
            return in_layout_of(self.forward_stages_by_name(self.conv_layout(x)), x)
        out = self.forward_stem(self.conv_layout(x))
        for index in range(self.num_stages):
            out = self.forward_stage(index, out)
        return in_layout_of(out, x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False):
        if self.global_pool == 'avg':
            x = x.mean((2, 3))
        if self.head_drop_rate > 0.0:
            x = F.dropout(x, p=self.head_drop_rate, training=self.training)
        return x if pre_logits else self.classify(x)

    def forward_stage_maps(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The maps of the stages in ``out_indices``, in the input's memory layout."""
        outs = []
        out = self.forward_stem(self.conv_layout(x))
        for index in range(max(self.out_indices) + 1):
            out = self.forward_stage(index, out)
            if index in self.out_indices:
                outs.append(in_layout_of(out, x))
        return tuple(outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes), or the pooled / unpooled last map after ``reset_classifier(0[, ''])``."""
        return self.forward_head(self.forward_features(x))

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` compiles the classifier's forward (logits, or the pooled or unpooled last
        map without a head); a backbone's forward returns a tuple as long as ``out_indices``."""
        name = type(self).__name__
        if self.out_indices is not None:
            raise RuntimeError(f'{name}: TorchScript compiles the classifier only; this backbone returns the '
                               f'maps of out_indices={self.out_indices}. Script the classifier, or use '
                               'torch.compile / torch.export.')
        if self.grad_checkpointing:
            raise RuntimeError(f'{name}: activation checkpointing (with_cp / set_grad_checkpointing) does not '
                               'run under TorchScript; call set_grad_checkpointing(False) before scripting.')
        return self

    # -- timm model API -------------------------------------------------------------------------
    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New head for ``num_classes`` (0: none); ``global_pool`` 'avg' or '' (keep the map)."""
        if global_pool is not None:
            if global_pool not in GLOBAL_POOLS:
                raise ValueError(f'{type(self).__name__}: global_pool {global_pool!r} is not supported; '
                                 f'valid: {list(GLOBAL_POOLS)}')
            self.global_pool = global_pool
        if self.global_pool == '' and num_classes > 0:
            raise ValueError(f"{type(self).__name__}: global_pool='' keeps the feature map, which needs "
                             f'num_classes=0 (got {num_classes})')
        self.num_classes = num_classes
        self.make_head(num_classes)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm's ``param_groups_layer_decay``)."""
        return dict(stem=self.stem_pattern, blocks=self.stage_pattern if coarse else list(self.block_patterns))

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """timm's feature API: the stage maps at ``indices`` (None: all; n: the last n; or a list,
        negative entries from the end). The stage maps are the backbone's outputs as they are: our
        models have no final norm for ``norm`` to apply, so only ``norm=False`` is accepted."""
        name = type(self).__name__
        if output_fmt != 'NCHW':
            raise ValueError(f"{name}: output_fmt {output_fmt!r} is not supported; valid: 'NCHW'")
        if norm:
            raise ValueError(f'{name}: norm=True is not supported: the model has no final norm layer, '
                             'its stage maps are returned as they are')
        take, max_index = feature_take_indices(self.num_stages, indices)
        intermediates = []
        out = self.forward_stem(self.conv_layout(x))
        last = max_index if stop_early else self.num_stages - 1
        for index in range(last + 1):
            out = self.forward_stage(index, out)
            if index in take:
                intermediates.append(in_layout_of(out, x))
        return intermediates if intermediates_only else (in_layout_of(out, x), intermediates)

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Delete the stages after the last of ``indices`` (and the head): they are never run, so
        DDP sees no unused parameters. ``prune_norm`` has nothing to remove (no final norm)."""
        take, max_index = feature_take_indices(self.num_stages, indices)
        for index in range(max_index + 1, self.num_stages):
            self.remove_stage(index)
        self.num_stages = max_index + 1
        self.feature_info = self.feature_info[:self.num_stages]
        if prune_head:
            self.reset_classifier(0, '')
        return take

    def remove_stage(self, index: int) -> None:
        raise NotImplementedError

    # -- OpenMMLab backbone behaviour -----------------------------------------------------------
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

    def _check_init_cfg(self, init_cfg):
        """``init_cfg`` entries: ``Pretrained`` (our strict loader) or any MMEngine initializer
        (``Kaiming``, ``Normal``, ...) applied as ``BaseModule`` does."""
        if init_cfg is None:
            return None
        name = type(self).__name__
        cfgs = list(init_cfg) if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        initializers = _mmengine_initializers()
        for cfg in cfgs:
            if not isinstance(cfg, Mapping) or 'type' not in cfg:
                raise ValueError(f'{name}: init_cfg entries need a "type", got {cfg!r}')
            if cfg['type'] == 'Pretrained':
                unknown = set(cfg) - {'type', 'checkpoint', 'prefix', 'map_location'}
                if 'checkpoint' not in cfg or unknown:
                    raise ValueError(f'{name}: init_cfg {dict(cfg)} needs "checkpoint" and accepts '
                                     f'only checkpoint, prefix, map_location')
            elif initializers is None:
                raise ValueError(f'{name}: init_cfg type {cfg["type"]!r} needs MMEngine installed; without '
                                 "it only type='Pretrained' is available")
            elif initializers.get(cfg['type']) is None:
                raise ValueError(f'{name}: init_cfg type {cfg["type"]!r} is not an MMEngine initializer; '
                                 f'valid: Pretrained, {sorted(initializers.module_dict)}')
        return init_cfg

    def init_weights(self) -> None:
        """Apply ``init_cfg`` as ``BaseModule`` does: MMEngine initializers (``Kaiming``, ...) over
        the layers they name first, then ``Pretrained`` entries, loaded strictly."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        cfgs = [cfg for cfg in cfgs if cfg]
        initializers = [dict(cfg) for cfg in cfgs if cfg['type'] != 'Pretrained']
        if initializers:
            from mmengine.model import initialize
            initialize(self, initializers)
        for cfg in cfgs:
            if cfg['type'] == 'Pretrained':
                self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix', ''))
        self.is_init = True

    def load_pretrained(self, path: str, prefix: str = '') -> None:
        """Load a released, timm- or OpenMMLab-wrapped checkpoint file into this model; a file for
        3 input channels is adapted to the model's (timm's rule), a head of another size is skipped."""
        load_pretrained_file(self, path, prefix=prefix, filter_fn=type(self).checkpoint_filter_fn,
                             optional_prefixes=self.classifier_prefixes, first_conv=self.first_conv)


class StageMapsBackbone:
    """The OpenMMLab backbone of an architecture (mixed in before its classifier class): the classifier's
    layers and checkpoint layout without a head; ``forward`` returns the maps of the stages in
    ``out_indices`` as a tuple, always (the default is each backbone's: all four stages for LSNet, the last
    for VAN, as mmpretrain's)."""

    # the classifier's arguments that only its head uses, with the value that means "none"
    head_arguments: Dict[str, Any] = {'num_classes': 0}

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.forward_stage_maps(x)

    @classmethod
    def classifier_kwargs(cls, kwargs: dict) -> dict:
        """The keyword arguments the classifier class is built with: a head's are refused by name."""
        for key, off in cls.head_arguments.items():
            if key in kwargs and kwargs[key] != off:
                raise ValueError(f'{cls.__name__} has no head, so no {key}={kwargs[key]!r}; the classifier with '
                                 f'these weights is {cls.__mro__[2].__name__} (timm.create_model)')
        return dict(kwargs, num_classes=0)


def fuse_model(model: nn.Module) -> nn.Module:
    """Replace every submodule that has ``fuse()`` by its fused form (deploy re-parameterisation)."""
    for name, child in model.named_children():
        if hasattr(child, 'fuse'):
            setattr(model, name, child.fuse())
        else:
            fuse_model(child)
    return model


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """Fold an eval-mode BatchNorm into the preceding convolution."""
    if not isinstance(bn, _BatchNorm):
        raise ValueError(f'fusing needs BatchNorm layers, this model has {type(bn).__name__} '
                         '(built with norm_cfg type GN?)')
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused
