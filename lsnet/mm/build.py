"""Building the model a config describes, in the config's own scope (mmdet, mmseg or mmengine)."""
from __future__ import annotations

import importlib
import os
from typing import Any, Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

# The papers' test inputs (H, W) of each toolbox's models, for the statistics and the benchmarks: COCO
# images resized to 1333x800 (the detectors pad them to 1344x800), ADE20K crops of 512x512.
PAPER_INPUT_SIZES = {'mmdet': (800, 1333), 'mmseg': (512, 512)}

SCOPE_REGISTRIES = {'mmdet': 'mmdet.registry', 'mmseg': 'mmseg.registry', 'mmengine': 'mmengine.registry'}


def sync_bn_as_bn(node: Any, device: Union[str, torch.device]) -> int:
    """The one SyncBN policy of the project: SyncBN needs CUDA (and a process group), so for a model
    that runs on any other device every SyncBN layer config inside ``node`` becomes BN, in place (BN
    keeps per-process statistics). Returns how many were replaced."""
    return 0 if torch.device(device).type == 'cuda' else _replace_sync_bn(node)


def _replace_sync_bn(node: Any) -> int:
    count = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_bn(value)
    return count


def build_model_from_config(config: Union[str, os.PathLike, Config], options: Optional[dict] = None,
                            pretrained: bool = True, device: Union[str, torch.device] = 'cpu'):
    """Build ``config``'s model (a path or a loaded ``Config``) in its ``default_scope``.

    Args:
        options: ``--cfg-options``-style overrides merged first.
        pretrained: False drops the backbone's ``init_cfg`` (no checkpoint is read).
        device: where to put the model; off CUDA SyncBN layers are built as BN (``sync_bn_as_bn``).

    Returns ``(model, cfg)``: the model in training mode and the config it was built from.
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(os.fspath(config))
    if options:
        cfg.merge_from_dict(options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    if not pretrained and isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None
    sync_bn_as_bn(cfg.model, device)
    scope = cfg.get('default_scope', 'mmengine')
    if scope not in SCOPE_REGISTRIES:
        raise ValueError(f'default_scope={scope!r}; supported: {sorted(SCOPE_REGISTRIES)}')
    if scope != 'mmengine':  # the toolbox's own modules (detectors, heads, losses) register on import
        importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    registry = importlib.import_module(SCOPE_REGISTRIES[scope]).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    return model.to(device), cfg
