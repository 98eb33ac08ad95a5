"""Hooks for MMEngine runners."""
from __future__ import annotations

import json
import os.path as osp

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """After training, check that every rank holds the same parameters (DDP kept them in sync).

    Writes ``rank_consistency.json`` (per-rank sum and sum of squares of all parameters) into the
    work dir and raises if ranks differ beyond ``tolerance`` (relative).
    """

    priority = 'LOWEST'

    def __init__(self, tolerance: float = 1e-6):
        self.tolerance = tolerance

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        with torch.no_grad():
            flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
            stats = (float(flat.sum()), float(flat.square().sum()))
        gathered = all_gather_object(stats) if get_world_size() > 1 else [stats]
        if get_rank() == 0:
            with open(osp.join(runner.work_dir, 'rank_consistency.json'), 'w') as f:
                json.dump(dict(world_size=len(gathered), stats=gathered), f)
        reference = gathered[0]
        for rank, other in enumerate(gathered):
            for a, b in zip(reference, other):
                if abs(a - b) > self.tolerance * max(abs(a), 1.0):
                    raise RuntimeError(f'rank {rank} parameters differ from rank 0: {other} vs {reference}')
        runner.logger.info(f'parameters identical on all {len(gathered)} rank(s)')


@HOOKS.register_module()
class StrictLoadHook(Hook):
    """Load a whole-model checkpoint strictly when training starts (``load_from`` of
    ``tools/train.py``): missing, unexpected or mis-shaped keys fail naming them.

    It loads in ``before_train``, after the runner has initialised the weights (``init_weights`` runs
    after ``before_run`` and would otherwise overwrite whatever was loaded before it: the neck's and
    heads' ``init_cfg``) and before the first iteration; the EMA copy takes the loaded weights at its
    first update.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint

    def before_train(self, runner) -> None:
        from ..checkpoint import load_model_checkpoint
        load_model_checkpoint(runner.model, self.checkpoint)
        runner.logger.info(f'load_from: loaded {self.checkpoint} strictly')
