"""MMEngine's work-dir policy: which checkpoint a run resumes from (the one ``last_checkpoint`` names when
it is intact, else the newest readable one; the newest with finite weights after a NaN), and that a
resumed checkpoint matches the model exactly. Unreadable files are reported, never deleted."""
from __future__ import annotations

import json
import logging
import os
import re
import os.path as osp
from pathlib import Path
from typing import Any, Optional

import torch

from ..checkpoint import CheckpointError, non_finite_tensors, read_checkpoint, state_dict_mismatch, unwrap_state_dict

logger = logging.getLogger(__name__)


def check_resume_checkpoint(model: torch.nn.Module, checkpoint: Any, path: str | os.PathLike) -> None:
    """A training checkpoint to resume from must match the model exactly (MMEngine's resume loads
    non-strictly and fails later on a shape, or trains on with weights left at init)."""
    model = getattr(model, 'module', model)
    source = f'--resume checkpoint {os.fspath(path)}'
    report = state_dict_mismatch(model, unwrap_state_dict(checkpoint, source), source)
    if report:
        raise CheckpointError(report + '\n  Was the config changed (classes, variant) since that run? Resume '
                              'with the config of the run, or start a new one with load_from.')


def existing_checkpoints(work_dir: str) -> list[str]:
    """The ``*.pth`` files of a work dir, by name."""
    return sorted(str(p) for p in Path(work_dir).glob('*.pth'))


def newest_finite_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that reads and whose weights and buffers are all finite."""
    for path in sorted(Path(work_dir).glob('*.pth'), key=os.path.getmtime, reverse=True):
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            logger.warning('skipping unreadable checkpoint: %s', err)
            continue
        state = checkpoint.get('state_dict', {}) if isinstance(checkpoint, dict) else {}
        if state and not non_finite_tensors(state):
            return str(path)
    return None


def logged_scalars(work_dir: str | os.PathLike) -> list[dict]:
    """The records of the newest run's ``scalars.json`` in ``work_dir`` (MMEngine's LocalVisBackend):
    training records carry ``loss`` and ``iter``, evaluations their metrics and ``step`` (the epoch
    of an epoch-based loop, else the iteration). Empty when no run wrote any."""
    files = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()] if files else []


def validation_at(work_dir: str | os.PathLike, checkpoint: str | os.PathLike) -> dict:
    """The metrics of the validation the run in ``work_dir`` logged at the step of ``checkpoint``
    (MMEngine's ``epoch_N.pth`` / ``iter_N.pth``): what evaluating that checkpoint on the validation
    set gives, without evaluating it again."""
    name = Path(checkpoint).name
    found = re.fullmatch(r'(?:epoch|iter)_(\d+)\.pth', name)
    if not found:
        raise ValueError(f'{checkpoint}: not named epoch_N.pth or iter_N.pth; its step is unknown')
    step = int(found.group(1))
    for record in reversed(logged_scalars(work_dir)):
        if record.get('step') == step and 'loss' not in record:
            return {k: v for k, v in record.items() if k not in ('step', 'time', 'data_time')}
    raise ValueError(f'{work_dir}: no validation logged at step {step} (of {name}); set train_cfg.val_interval '
                     f'so that the last step is evaluated, or evaluate {checkpoint} with tools/test.py')


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest readable checkpoint in ``work_dir``: the one ``last_checkpoint`` names when it is
    intact, else the newest ``*.pth`` that loads. Unreadable files are reported, never deleted."""
    candidates = []
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        named = Path(marker).read_text().strip()
        if named and not osp.isfile(named):
            logger.warning('%s names %s, which does not exist; looking for the newest readable checkpoint '
                           'instead', marker, named)
        elif named:
            candidates.append(named)
    candidates += sorted((str(p) for p in Path(work_dir).glob('*.pth')), key=os.path.getmtime, reverse=True)
    seen = set()
    for path in candidates:
        if path in seen or not osp.isfile(path):
            continue
        seen.add(path)
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            logger.warning('skipping unreadable checkpoint: %s', err)
            continue
        if isinstance(checkpoint, dict) and 'state_dict' in checkpoint and 'meta' in checkpoint:
            return path
        logger.warning('skipping %s: not a training checkpoint (no state_dict/meta)', path)
    return None
