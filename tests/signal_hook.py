"""A test hook, imported by a config's ``custom_imports``: the training process sends itself a signal
after a given iteration, so a preemption lands at a known point of the run."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SignalAtIterationHook(Hook):
    priority = 'LOW'  # before PreemptionHook (LOWEST) looks for a request after the same iteration

    def __init__(self, iteration: int, signal_name: str = 'SIGTERM'):
        self.iteration, self.signum = iteration, getattr(signal, signal_name)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), self.signum)
