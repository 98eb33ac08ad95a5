"""Keeping long runs safe: atomic checkpoint writes, exact resumption, non-finite loss handling.

* ``AtomicLocalBackend`` replaces MMEngine's local file backend: every file MMEngine writes through
  it (checkpoints included) goes to a temporary file in the same folder, is flushed to disk and then
  renamed over the target, so a crash never leaves a truncated checkpoint under its final name.
* ``RNGStateHook`` stores the Python, NumPy and torch RNG states in each checkpoint and restores them
  at the first iteration after a resume, so a resumed deterministic run continues bit-identically.
* ``NonFiniteLossHook`` stops training on a NaN/Inf loss, naming the iteration and the loss terms,
  before any checkpoint of the broken state is written; the ``SkipNonFinite*OptimWrapper`` types of
  ``lsnet.mm.optim`` instead skip the update of such a step and count it. All ranks decide together.
"""
from __future__ import annotations

import math
import os
import os.path as osp
import random
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, LOOPS
from mmengine.runner import IterBasedTrainLoop

from ..models.checkpoint import CheckpointError, read_checkpoint


# The suffix of atomic_write's temporary files, which remove_interrupted_writes looks for.
TEMP_SUFFIX = '.tmp'


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(data: Union[bytes, str], filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
    """Write to a temporary file beside ``filepath``, fsync it, rename it over ``filepath`` and fsync
    the folder: a crash leaves the old file or the new one, never a truncated one. The file gets the
    permissions a plain ``open`` would give under the user's umask."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix=TEMP_SUFFIX, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise



def remove_interrupted_writes(work_dir: str, logger=print) -> list:
    """Delete the temporary files a killed process left behind mid-write (``.<name>.<random>.tmp``)."""
    removed = []
    for path in Path(work_dir).glob(f'.*.*{TEMP_SUFFIX}') if osp.isdir(work_dir) else []:
        path.unlink()
        removed.append(str(path))
        logger(f'[lsnet] removed {path}: an interrupted checkpoint write')
    return removed


def non_finite_tensors(state_dict: dict) -> list:
    """Names of floating-point tensors holding NaN or Inf."""
    return [name for name, value in state_dict.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def newest_finite_checkpoint(work_dir: str, logger=print) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that reads and whose weights and buffers are all finite."""
    for path in sorted(Path(work_dir).glob('*.pth'), key=os.path.getmtime, reverse=True):
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            logger(f'[lsnet] skipping unreadable checkpoint: {err}')
            continue
        state = checkpoint.get('state_dict', {}) if isinstance(checkpoint, dict) else {}
        if state and not non_finite_tensors(state):
            return str(path)
    return None


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with atomic ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, encoding)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')
try:  # drop a LocalBackend instance MMEngine may have cached before we registered
    from mmengine.fileio import io as _io
    _io.backend_instances.clear()
except (ImportError, AttributeError):  # pragma: no cover - MMEngine layout changed
    pass


def find_resumable_checkpoint(work_dir: str, logger=print) -> Optional[str]:
    """The newest readable checkpoint in ``work_dir``: the one ``last_checkpoint`` names when it is
    intact, else the newest ``*.pth`` that loads. Unreadable files are reported, never deleted."""
    candidates = []
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        named = Path(marker).read_text().strip()
        if named:
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
            logger(f'[lsnet] skipping unreadable checkpoint: {err}')
            continue
        if isinstance(checkpoint, dict) and 'state_dict' in checkpoint and 'meta' in checkpoint:
            return path
        logger(f'[lsnet] skipping {path}: not a training checkpoint (no state_dict/meta)')
    return None


def _rng_states() -> dict:
    return dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def _set_rng_states(state: dict) -> None:
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(torch.as_tensor(state['torch'], dtype=torch.uint8))
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the RNG states with every checkpoint and restore them when training resumes.

    Validation runs with the RNG states saved and put back, so whether a run validated (or was
    resumed around a validation) does not change the random numbers training sees. With
    epoch-based loops the states are restored before the first resumed epoch; iteration-based
    training uses ``ExactResumeIterBasedTrainLoop``, which restores them after skipping the
    already-trained batches (that skipping draws random numbers in data augmentation).
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self.pending: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['rng_state'] = _rng_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.pending = checkpoint.get('meta', {}).get('rng_state')

    def restore(self, runner) -> None:
        if self.pending is not None:
            state, self.pending = self.pending, None
            _set_rng_states(state)
            runner.logger.info('restored the RNG states saved with the checkpoint')

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            self.restore(runner)

    def before_val(self, runner) -> None:
        self._before_val = _rng_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            _set_rng_states(self._before_val)
            self._before_val = None


class _RestoreAfterSkip:
    """Iterator proxy: once the loop has skipped ``skip`` batches, restore the RNG states."""

    def __init__(self, iterator, skip: int, restore):
        self.iterator, self.skip, self.restore, self.calls = iterator, skip, restore, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.calls == self.skip and self.restore is not None:
            self.restore()
            self.restore = None
        self.calls += 1
        return next(self.iterator)


@LOOPS.register_module()
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """IterBasedTrainLoop whose resumption continues with the RNG states of the interrupted run."""

    def run(self):
        hooks = [h for h in self.runner.hooks if isinstance(h, RNGStateHook)]
        if hooks and self._iter > 0:
            self.dataloader_iterator = _RestoreAfterSkip(self.dataloader_iterator, self._iter,
                                                         lambda: hooks[0].restore(self.runner))
        return super().run()


def _as_python_state(state):
    # (version, tuple of ints, gauss) may come back with lists instead of tuples
    version, internal, gauss = state
    return version, tuple(internal), gauss


def _non_finite_terms(outputs: dict) -> dict:
    bad = {}
    for name, value in (outputs or {}).items():
        if 'loss' not in name:
            continue
        number = float(value.detach().float().mean()) if torch.is_tensor(value) else float(value)
        if not math.isfinite(number):
            bad[name] = number
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop on a NaN/Inf loss with a message naming the iteration and the loss terms.

    Runs before the checkpoint hook, so the last checkpoint on disk stays the last good state. With
    a ``SkipNonFinite*OptimWrapper`` the broken steps were not applied: this hook then only reports
    them, and stops once more than ``max_skips`` were skipped.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_skips: int = 100):
        self.max_skips = max_skips

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        bad = _non_finite_terms(outputs)
        # Every rank takes the same decision, or the ranks that stop leave the others waiting.
        any_bad = torch.tensor([1.0 if bad else 0.0])
        all_reduce(any_bad, op='max')
        if any_bad.item() == 0:
            return
        if not bad:
            bad = {'(another rank)': float('nan')}
        wrapper = runner.optim_wrapper
        skipped = getattr(wrapper, 'skipped_steps', None)
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        all_terms = ', '.join(f'{k}={float(v):.4g}' for k, v in outputs.items() if 'loss' in k)
        if skipped is not None and skipped <= self.max_skips:
            runner.logger.warning(f'iteration {runner.iter + 1}: non-finite loss ({terms}); update skipped '
                                  f'({skipped} so far)')
            return
        last = newest_finite_checkpoint(runner.work_dir, runner.logger.warning)
        raise RuntimeError(f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): {terms} '
                           f'[all loss terms: {all_terms}]. Training stopped; the last good checkpoint '
                           f'(checked finite) is {last or "none yet"}. Lower the learning rate, enable gradient '
                           "clipping, or set optim_wrapper.type='SkipNonFiniteOptimWrapper' to skip such steps.")

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Never write a checkpoint whose weights or buffers are not finite (BatchNorm statistics can
        turn NaN while the loss still looks fine): stop instead, so the keep-last rotation and
        ``last_checkpoint`` keep pointing at good files."""
        # Runner.save_checkpoint runs on the main process only (no collective here); when it stops,
        # torchrun ends the other ranks.
        bad = non_finite_tensors(checkpoint.get('state_dict', {}))
        if not bad:
            return
        last = newest_finite_checkpoint(runner.work_dir, runner.logger.warning)
        shown = ', '.join(bad[:8]) + (f', ... ({len(bad)} in all)' if len(bad) > 8 else '')
        raise RuntimeError(f'not saving the checkpoint of iteration {runner.iter} (epoch {runner.epoch}): '
                           f'non-finite values in {shown}. Training stopped; the last good checkpoint '
                           f'(checked finite) is {last or "none yet"}. Lower the learning rate or enable '
                           'gradient clipping.')
