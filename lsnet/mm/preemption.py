"""Preemption-safe training: SIGTERM (and SIGUSR1) end a run with a resumable checkpoint.

Schedulers (SLURM, Kubernetes, spot instances) send SIGTERM some seconds before SIGKILL; SLURM's
``--signal=USR1@90`` sends SIGUSR1. ``PreemptionHook`` turns either signal into a request: the
iteration under way finishes, every rank agrees that a signal arrived on some rank, the state of
exactly that point is saved as ``iter_<n>.pth`` (atomically, through the runner's own
``save_checkpoint`` so that the EMA weights and RNG states go with it) and named in
``last_checkpoint``, and the process exits with ``PREEMPTED_EXIT_STATUS``. ``--resume`` continues
from there as if nothing had happened (``ExactResumeIterBasedTrainLoop`` and
``ExactResumeEpochBasedTrainLoop`` skip the batches already trained on, also within an epoch).

A signal that arrives during validation or while a checkpoint is written only sets the request;
the write completes and the run stops after the next training iteration. SIGINT (Ctrl-C) keeps
Python's behaviour: the run stops at once and the last complete checkpoint stays the newest.
"""
from __future__ import annotations

import os.path as osp
import signal
import time
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..checkpoint import atomic_write

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry" (with --resume).
PREEMPTED_EXIT_STATUS = 75
PREEMPTION_SIGNALS = ('SIGTERM', 'SIGUSR1')


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written; exits with ``PREEMPTED_EXIT_STATUS``."""

    def __init__(self, message: str):
        super().__init__(PREEMPTED_EXIT_STATUS)
        self.message = message


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Finish the current iteration on SIGTERM/SIGUSR1, save a resumable checkpoint, then exit.

    Args:
        signals: names of the signals to handle (default SIGTERM and SIGUSR1).
    """

    priority = 'LOWEST'  # after CheckpointHook: a checkpoint of this iteration may already exist

    def __init__(self, signals=PREEMPTION_SIGNALS):
        unknown = [name for name in signals if not isinstance(getattr(signal, str(name), None), signal.Signals)]
        if unknown:
            raise ValueError(f'PreemptionHook: unknown signal name(s) {unknown}')
        self.signals = [getattr(signal, name) for name in signals]
        self.received: Optional[int] = None
        self.received_at: Optional[float] = None
        self._previous: dict = {}

    def _request(self, signum, _frame) -> None:
        if self.received is None:
            self.received, self.received_at = signum, time.monotonic()

    def before_train(self, runner) -> None:
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._request)

    def after_train(self, runner) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _requested_on_any_rank(self) -> bool:
        flag = torch.tensor([0 if self.received is None else 1], dtype=torch.int64)
        all_reduce(flag, op='max')  # a no-op without a process group
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._requested_on_any_rank():
            return
        name = signal.Signals(self.received).name if self.received is not None else 'a signal on another rank'
        step = runner.iter + 1
        filename = f'iter_{step}.pth'
        runner.logger.info(f'{name} received: saving the state after iteration {step} as {filename}')
        runner.save_checkpoint(runner.work_dir, filename, save_optimizer=True, save_param_scheduler=True,
                               by_epoch=False)
        path = osp.join(runner.work_dir, filename)
        if is_main_process():
            atomic_write(path, osp.join(runner.work_dir, 'last_checkpoint'))
        waited = '' if self.received_at is None else f' {time.monotonic() - self.received_at:.1f} s after the signal'
        message = (f'preempted by {name}: saved {path}{waited}; continue with --resume '
                   f'(exit status {PREEMPTED_EXIT_STATUS})')
        runner.logger.info(message)
        self._restore_handlers()
        raise Preempted(message)
