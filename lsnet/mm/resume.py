"""Exact resumption: a resumed deterministic run continues bit-identically.

``RNGStateHook`` stores the Python, NumPy and torch RNG states in each checkpoint and restores them
at the first iteration after a resume; ``ExactResumeIterBasedTrainLoop`` restores them only after
the already-trained batches were skipped (that skipping draws random numbers in augmentation).
``ExactResumeEpochBasedTrainLoop`` does the same for a checkpoint saved within an epoch (a
preemption checkpoint, see ``lsnet.mm.preemption``): it skips the batches of that epoch already
trained on, then restores the states.
"""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from .datacheck import naming_batch_on_failure


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
        loop = runner.train_loop
        if not isinstance(loop, IterBasedTrainLoop) and not getattr(loop, 'batches_to_skip', 0):
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
    """IterBasedTrainLoop whose resumption continues with the RNG states of the interrupted run; a
    failing step names its batch's files."""

    def run_iter(self, data_batch) -> None:
        with naming_batch_on_failure(data_batch, f'training iteration {self._iter + 1}'):
            super().run_iter(data_batch)

    def run(self):
        hooks = [h for h in self.runner.hooks if isinstance(h, RNGStateHook)]
        if hooks and self._iter > 0:
            self.dataloader_iterator = _RestoreAfterSkip(self.dataloader_iterator, self._iter,
                                                         lambda: hooks[0].restore(self.runner))
        return super().run()


@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """EpochBasedTrainLoop that also resumes from a checkpoint saved within an epoch: the batches of
    that epoch already trained on are drawn and skipped, then the saved RNG states are restored. A
    failing step names its batch's files."""

    batches_to_skip = 0

    def run_iter(self, idx, data_batch) -> None:
        with naming_batch_on_failure(data_batch, f'training iteration {self._iter + 1} (epoch {self._epoch + 1})'):
            super().run_iter(idx, data_batch)

    def run_epoch(self) -> None:
        self.batches_to_skip = self._iter - self._epoch * len(self.dataloader)
        if self.batches_to_skip <= 0:
            self.batches_to_skip = 0
            return super().run_epoch()
        # the body of EpochBasedTrainLoop.run_epoch, starting at the first batch not yet trained on
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = iter(self.dataloader)
        for _ in range(self.batches_to_skip):
            next(batches)
        hooks = [h for h in self.runner.hooks if isinstance(h, RNGStateHook)]
        if hooks:
            hooks[0].restore(self.runner)
        for idx, data_batch in enumerate(batches, start=self.batches_to_skip):
            self.run_iter(idx, data_batch)
        self.batches_to_skip = 0
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


def _as_python_state(state):
    # (version, tuple of ints, gauss) may come back with lists instead of tuples
    version, internal, gauss = state
    return version, tuple(internal), gauss
