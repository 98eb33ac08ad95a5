"""What tools/train.py and tools/test.py share: config loading with checks, and work-dir safety."""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction

from ..checkpoint import existing_checkpoints, remove_interrupted_writes
from .build import SCOPE_REGISTRIES, replace_sync_bn

TASK_SCOPES = tuple(SCOPE_REGISTRIES)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (torchrun sets up "pytorch")')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    warn_misspelt_keys(cfg, args.config)
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(f'{args.config}: default_scope={scope!r}; our tools handle {TASK_SCOPES}')
    cfg.launcher = args.launcher
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not torch.cuda.is_available():
        replaced = replace_sync_bn(cfg._cfg_dict)
        if replaced:
            print(f'[lsnet] no CUDA device: {replaced} SyncBN layer config(s) run as BN')
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        if args.launcher == 'pytorch':
            _init_cpu_distributed(cfg)
    return cfg


def warn_misspelt_keys(cfg: Config, source: str) -> list:
    """Top-level keys that MMEngine would silently ignore but that look like one it reads
    (``load_form`` for ``load_from``): warn naming the closest. Returns the warnings."""
    import difflib
    import inspect
    from mmengine.runner import Runner
    known = set(inspect.signature(Runner.__init__).parameters) - {'self'} | {
        'custom_imports', 'default_scope', 'launcher', 'resume', 'load_from', 'auto_scale_lr', 'log_level'}
    messages = []
    for key in cfg.keys():
        if key in known or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            messages.append(f'[lsnet] {source}: top-level key {key!r} is not read by MMEngine; did you mean {close[0]!r}?')
    for message in messages:
        print(message)
    return messages


def _init_cpu_distributed(cfg: Config) -> None:
    """MMEngine's pytorch launcher calls torch.cuda.set_device; on CPU-only machines we start the
    gloo process group ourselves (MMEngine then uses it) and keep DDP off device ids."""
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def guard_work_dir(cfg: Config, resume: Optional[str], overwrite: bool) -> None:
    """Refuse to train into a work dir that holds checkpoints unless resuming or told to overwrite,
    so an earlier run's checkpoints are never replaced silently. Temporary files of a checkpoint write
    that a kill interrupted are removed."""
    remove_interrupted_writes(cfg.work_dir)
    found = existing_checkpoints(cfg.work_dir)
    if found and not resume and not overwrite:
        names = ', '.join(osp.basename(p) for p in found[:5]) + (' ...' if len(found) > 5 else '')
        raise SystemExit(f'{cfg.work_dir} already holds checkpoints ({names}). Continue that run with '
                         '--resume, pick another --work-dir, or pass --overwrite to replace them.')
