"""Optimisation wrappers: adaptive gradient clipping, mixed precision on CPU or GPU, skipping
non-finite steps (decided by all ranks together), and the ``--amp`` switch that picks between them.

AGC is attached to the optimizer itself (a step pre-hook), not to a wrapper class, so it survives
any wrapper a launcher chooses: ``AmpOptimWrapper`` from ``--amp`` (ours, mmdet's or mmseg's
``tools/train.py``) unscales the gradients before ``optimizer.step()`` runs, which is when the hook
clips them.
"""
import contextlib
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.optim import AmpOptimWrapper, DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from timm.utils import adaptive_clip_grad


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AdaptiveGradClipConstructor(DefaultOptimWrapperConstructor):
    """Builds the optim wrapper as MMEngine does, then clips gradients adaptively (timm's AGC,
    ``clip_factor=agc_clip``) right before every optimizer step::

        optim_wrapper = dict(type='OptimWrapper', constructor='AdaptiveGradClipConstructor',
                             agc_clip=0.02, optimizer=dict(type='AdamW', lr=1e-3))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        agc_clip = optim_wrapper_cfg.pop('agc_clip', None)
        if agc_clip is None or not float(agc_clip) > 0:
            raise ValueError(f'AdaptiveGradClipConstructor needs optim_wrapper.agc_clip > 0, got {agc_clip!r}')
        self.agc_clip = float(agc_clip)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model) -> OptimWrapper:
        wrapper = super().__call__(model)
        clip_factor = self.agc_clip

        def clip_before_step(optimizer, args, kwargs) -> None:
            params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
            adaptive_clip_grad(params, clip_factor=clip_factor)

        wrapper.optimizer.register_step_pre_hook(clip_before_step)
        wrapper.agc_clip = clip_factor
        return wrapper


def _model_device_type(model: torch.nn.Module) -> str:
    param = next(model.parameters(), None)
    return param.device.type if param is not None else 'cpu'


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Mixed precision without loss scaling: the forward pass runs under ``torch.autocast`` in
    ``dtype`` (bfloat16 by default, whose range needs no scaling) on the model's device, CPU
    included, where MMEngine's ``AmpOptimWrapper`` requires a GPU."""

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"AutocastOptimWrapper: dtype {dtype!r}; valid: 'bfloat16', 'float16'")
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(_model_device_type(model), dtype=self.cast_dtype):
            yield


class _SkipNonFiniteMixin:
    """Skip (and count) a step whose loss is NaN/Inf on any rank. The ranks agree first (one
    all-reduce of a flag), so none of them enters DDP's gradient all-reduce alone."""

    skipped_steps = 0

    def update_params(self, loss: torch.Tensor, step_kwargs=None, zero_kwargs=None) -> None:
        bad = torch.tensor([0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0], device=loss.device)
        all_reduce(bad, op='max')
        if bad.item() > 0:
            self.skipped_steps += 1
            self.zero_grad(**(zero_kwargs or {}))
            return
        super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)


@OPTIM_WRAPPERS.register_module()
class SkipNonFiniteOptimWrapper(_SkipNonFiniteMixin, OptimWrapper):
    """OptimWrapper that skips (and counts) steps whose loss is NaN/Inf."""


@OPTIM_WRAPPERS.register_module()
class SkipNonFiniteAmpOptimWrapper(_SkipNonFiniteMixin, AmpOptimWrapper):
    """AmpOptimWrapper that skips (and counts) steps whose loss is NaN/Inf."""


@OPTIM_WRAPPERS.register_module()
class SkipNonFiniteAutocastOptimWrapper(_SkipNonFiniteMixin, AutocastOptimWrapper):
    """AutocastOptimWrapper that skips (and counts) steps whose loss is NaN/Inf."""


_SKIPPING = {'OptimWrapper': 'SkipNonFiniteOptimWrapper', 'AmpOptimWrapper': 'SkipNonFiniteAmpOptimWrapper',
             'AutocastOptimWrapper': 'SkipNonFiniteAutocastOptimWrapper'}
_MIXED = {'OptimWrapper': 'AmpOptimWrapper', 'SkipNonFiniteOptimWrapper': 'SkipNonFiniteAmpOptimWrapper'}


def enable_amp(optim_wrapper_cfg, cuda: Optional[bool] = None) -> str:
    """Switch a config's optim wrapper to mixed precision: fp16 with loss scaling on a GPU
    (MMEngine's ``AmpOptimWrapper``), bfloat16 autocast on CPU. Returns the new type."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    kind = optim_wrapper_cfg.get('type', 'OptimWrapper')
    if kind in ('AmpOptimWrapper', 'SkipNonFiniteAmpOptimWrapper', 'AutocastOptimWrapper',
                'SkipNonFiniteAutocastOptimWrapper'):
        return kind
    if kind not in _MIXED:
        raise ValueError(f'--amp: optim_wrapper type {kind!r} has no mixed-precision form; '
                         f'supported: {sorted(_MIXED)}')
    new = _MIXED[kind] if cuda else _MIXED[kind].replace('Amp', 'Autocast')
    optim_wrapper_cfg['type'] = new
    if cuda:
        optim_wrapper_cfg.setdefault('loss_scale', 'dynamic')
    else:
        optim_wrapper_cfg.setdefault('dtype', 'bfloat16')
    return new


def enable_skip_nonfinite(optim_wrapper_cfg) -> str:
    """Switch a config's optim wrapper to its non-finite-skipping form. Returns the new type."""
    kind = optim_wrapper_cfg.get('type', 'OptimWrapper')
    if kind in _SKIPPING.values():
        return kind
    if kind not in _SKIPPING:
        raise ValueError(f'--on-nonfinite skip supports optim_wrapper types {sorted(_SKIPPING)}, not {kind!r}')
    optim_wrapper_cfg['type'] = _SKIPPING[kind]
    return _SKIPPING[kind]
