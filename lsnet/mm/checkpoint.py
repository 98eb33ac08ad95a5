"""Loading whole-model checkpoints (detectors, segmentors) strictly, released ones included.

The papers' downstream checkpoints were written by mmdet 2.x / mmseg 0.x. For RetinaNet, Mask R-CNN
and Semantic FPN the parameter names did not change in mmdet 3.x / mmseg 1.x, so they map directly;
what differs is in the backbone (LSNet's 14x14 attention-bias tables, mmpretrain's VAN names), which
the backbone's own ``checkpoint_filter_fn`` adapts. Anything left unmatched is an error that lists
the keys, instead of MMEngine's warning and a half-initialised model.
"""
from __future__ import annotations

import os

from mmengine.model import is_model_wrapper
from torch import nn

from ..models.checkpoint import load_state_dict_checked, read_checkpoint, unwrap_state_dict

# Keys renamed between the 2.x-era toolboxes and today's (old prefix -> new prefix), applied in order.
LEGACY_RENAMES: tuple[tuple[str, str], ...] = ()


def load_model_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    if is_model_wrapper(model):
        model = model.module
    source = f'checkpoint {os.fspath(path)}'
    state = dict(unwrap_state_dict(read_checkpoint(path), source))
    for old, new in LEGACY_RENAMES:
        state = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()}
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
    load_state_dict_checked(model, state, source)
