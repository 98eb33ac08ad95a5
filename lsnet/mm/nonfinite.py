"""Non-finite losses and weights: stop naming the iteration and the loss terms, before a checkpoint
of the broken state is written. The ``SkipNonFinite*OptimWrapper`` types of ``lsnet.mm.optim``
instead skip the update of such a step and count it. All ranks decide together.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..checkpoint import non_finite_tensors
from .workdir import newest_finite_checkpoint


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
        last = newest_finite_checkpoint(runner.work_dir)
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
        last = newest_finite_checkpoint(runner.work_dir)
        shown = ', '.join(bad[:8]) + (f', ... ({len(bad)} in all)' if len(bad) > 8 else '')
        raise RuntimeError(f'not saving the checkpoint of iteration {runner.iter} (epoch {runner.epoch}): '
                           f'non-finite values in {shown}. Training stopped; the last good checkpoint '
                           f'(checked finite) is {last or "none yet"}. Lower the learning rate or enable '
                           'gradient clipping.')
