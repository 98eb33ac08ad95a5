"""Loading a file's weights into a model strictly: unwrapping the state dict, picking a prefix, adapting
the first convolution, and errors that list the missing, unexpected and mismatched keys. Backbones
(timm's ``pretrained_cfg_overlay``, OpenMMLab's ``init_cfg=Pretrained``) and whole detectors,
segmentors and classifiers (released mmdet 2.x / mmseg 0.x files included)."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from .reading import CheckpointError, read_checkpoint

logger = logging.getLogger('lsnet')


def unwrap_state_dict(checkpoint: Any, source: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """Return the state dict inside a checkpoint: under 'state_dict', 'model' or 'module', or itself.

    A leading ``module.`` (DataParallel/DDP) is stripped.
    """
    state = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f'{source} does not contain a state dict (found {type(state).__name__})')
    tensors = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                          for k, v in state.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise CheckpointError(f'{source} contains no tensors')
    return tensors


def unwrap_if_wrapped(state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """A checkpoint's state dict when ``state_dict`` is a wrapped checkpoint (timm hands filters
    whatever the file held), else ``state_dict`` itself."""
    if any(isinstance(state_dict.get(key), Mapping) for key in ('state_dict', 'model', 'module')):
        return unwrap_state_dict(state_dict)
    return state_dict


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str,
                  source: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """Keys under ``prefix`` with the prefix removed; an error if none are."""
    if not prefix:
        return OrderedDict(state_dict)
    selected = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not selected:
        heads = sorted({k.split('.')[0] + '.' for k in state_dict})
        raise CheckpointError(f'{source} has no keys under prefix {prefix!r}; its top-level prefixes '
                              f'are {heads[:12]}')
    return selected


def _summarise(keys: Iterable[str], limit: int = 12) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return f'{shown}, ... ({len(keys)} in all)' if len(keys) > limit else shown


def state_dict_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str,
                        optional: Callable[[str], bool] = lambda key: False) -> Optional[str]:
    """The report of what in ``state`` does not match ``model`` (missing keys, unexpected keys, shape
    mismatches, each named with both shapes), or None when everything matches."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    if not (missing or unexpected or mismatched):
        return None
    parts = [f'{source} does not match {type(model).__name__}'
             f'{" (" + model.arch_name + ")" if getattr(model, "arch_name", None) else ""}:']
    if missing:
        parts.append(f'  missing keys: {_summarise(missing)}')
    if unexpected:
        parts.append(f'  unexpected keys: {_summarise(unexpected)}')
    if mismatched:
        parts.append(f'  shape mismatches: {_summarise(mismatched)}')
    return '\n'.join(parts)


def load_state_dict_checked(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                            source: str = '<checkpoint>',
                            optional_prefixes: tuple[str, ...] = ()) -> None:
    """Load strictly, except that keys under ``optional_prefixes`` (classifier heads) are dropped
    from the file when the model lacks them or their shapes differ, and left at their init when the
    file lacks them. Anything else that does not match raises :class:`CheckpointError` listing
    missing keys, unexpected keys and shape mismatches."""
    own = model.state_dict()
    state = OrderedDict(state_dict)

    def optional(key: str) -> bool:
        return any(key.startswith(p) for p in optional_prefixes)

    dropped = [k for k in state if optional(k) and (k not in own or own[k].shape != state[k].shape)]
    for key in dropped:
        del state[key]
    report = state_dict_mismatch(model, state, source, optional)
    if report:
        raise CheckpointError(report + '\n  Is the checkpoint for another variant, or wrapped under a prefix '
                              "(try prefix='backbone.')?")
    if dropped:
        logger.info('%s: not loading %s (absent from the model or of another shape)', source,
                    _summarise(dropped))
    model.load_state_dict(state, strict=False)
    left_at_init = [k for k in own if k not in state]
    if left_at_init:
        logger.info('%s: left at initialisation: %s', source, _summarise(left_at_init))


def adapt_first_conv(state_dict: dict, model: torch.nn.Module, first_conv: Optional[str],
                     source: str) -> dict:
    """A first convolution trained on 3 channels, adapted to the model's input channels by timm's
    rule (``adapt_input_conv``: summed for 1 channel, repeated and rescaled for more)."""
    key = f'{first_conv}.weight' if first_conv else None
    own = model.state_dict()
    if key is None or key not in state_dict or key not in own:
        return state_dict
    have, want = state_dict[key].shape[1], own[key].shape[1]
    if have == want:
        return state_dict
    if have != 3:
        raise CheckpointError(f'{source}: {key} takes {have} input channels; only 3-channel weights '
                              f'can be adapted to the model\'s {want}')
    from timm.models import adapt_input_conv
    state_dict = dict(state_dict)
    state_dict[key] = adapt_input_conv(want, state_dict[key])
    logger.info('%s: adapted %s from 3 to %d input channels', source, key, want)
    return state_dict


def load_pretrained_file(model: torch.nn.Module, path: str | os.PathLike, prefix: str = '',
                         filter_fn: Optional[Callable] = None,
                         optional_prefixes: tuple[str, ...] = (), first_conv: Optional[str] = None) -> None:
    """Read ``path``, unwrap it, pick ``prefix``, map names with ``filter_fn``, adapt the first
    convolution to the model's input channels, load checked.

    Without a prefix, a file wrapped by a detector or segmentor (keys under ``backbone.``) is
    recognised and unwrapped automatically.
    """
    source = f'checkpoint {os.fspath(path)}'
    state = unwrap_state_dict(read_checkpoint(path), source)
    if not prefix and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    state = select_prefix(state, prefix, source)
    if filter_fn is not None:
        state = filter_fn(state, model)
    state = adapt_first_conv(state, model, first_conv, source)
    load_state_dict_checked(model, state, source, optional_prefixes)


def _whole_model_state(model: torch.nn.Module, path: str | os.PathLike):
    """(unwrapped model, the file's state dict in the model's names, source) for a whole-model file."""
    model = getattr(model, 'module', model)  # DataParallel / DDP / MMEngine wrappers
    source = f'checkpoint {os.fspath(path)}'
    state = dict(unwrap_state_dict(read_checkpoint(path), source))
    backbone = getattr(model, 'backbone', None)
    if backbone is not None and not any(k.startswith('backbone.') for k in state) \
            and all(k.startswith('backbone.') for k in model.state_dict()):
        state = {f'backbone.{k}': v for k, v in state.items()}  # a released classifier file
    filter_fn = getattr(type(backbone), 'checkpoint_filter_fn', None) if backbone is not None else None
    if filter_fn is not None:
        inner = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        inner = filter_fn(inner, backbone)
        state = {k: v for k, v in state.items() if not k.startswith('backbone.')}
        state.update({f'backbone.{k}': v for k, v in inner.items()})
    return model, state, source


def load_model_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a whole-model checkpoint (detector, segmentor, classifier) strictly.

    The papers' downstream checkpoints were written by mmdet 2.x / mmseg 0.x. For RetinaNet, Mask
    R-CNN and Semantic FPN the parameter names did not change in mmdet 3.x / mmseg 1.x; what differs
    is inside the backbone (LSNet's 14x14 attention-bias tables, mmpretrain's VAN names), which the
    backbone's own ``checkpoint_filter_fn`` adapts. A released classifier file (backbone names only)
    loads into the backbone. Anything left unmatched raises :class:`CheckpointError` listing the keys.
    """
    model, state, source = _whole_model_state(model, path)
    load_state_dict_checked(model, state, source)


def check_model_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Raise as :func:`load_model_checkpoint` would, without loading anything into ``model``."""
    model, state, source = _whole_model_state(model, path)
    report = state_dict_mismatch(model, state, source)
    if report:
        raise CheckpointError(report)


def non_finite_tensors(state_dict: dict) -> list:
    """Names of floating-point tensors holding NaN or Inf."""
    return [name for name, value in state_dict.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]
