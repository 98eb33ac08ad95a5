"""What tools/train.py and tools/test.py share: config loading with checks, and work-dir safety."""
from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional

import torch
from mmengine.config import Config, DictAction

from ..checkpoint import remove_interrupted_writes
from .workdir import existing_checkpoints
from .build import SCOPE_REGISTRIES, sync_bn_as_bn

logger = logging.getLogger(__name__)

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
    """The config of ``args.config`` with ``--cfg-options``, ``--work-dir`` and ``--launcher`` applied,
    checked (file, syntax, misspelt keys, scope), SyncBN as BN without CUDA. Changes nothing else in the
    process: :func:`prepare_launch` does what launching needs."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    try:
        cfg = Config.fromfile(args.config)
    except SyntaxError as err:
        raise ValueError(f'{config_syntax_error_source(args.config)}: {err.msg} (line {err.lineno})') from None
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    warn_misspelt_keys(cfg, args.config)
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(f'{args.config}: default_scope={scope!r}; our tools handle {TASK_SCOPES}')
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    replaced = sync_bn_as_bn(cfg._cfg_dict, 'cuda' if torch.cuda.is_available() else 'cpu')
    if replaced:
        logger.info('no CUDA device: %d SyncBN layer config(s) run as BN', replaced)
    if not torch.cuda.is_available():
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    return cfg


def prepare_launch(cfg: Config, args: argparse.Namespace) -> None:
    """What a tool's process needs before MMEngine's runner starts: ``LOCAL_RANK`` from ``--local-rank``
    when the launcher did not set it, and, for ``--launcher pytorch`` without CUDA, the gloo process
    group (MMEngine would start NCCL)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not torch.cuda.is_available() and args.launcher == 'pytorch':
        _init_cpu_distributed(cfg)


def config_syntax_error_source(config: str) -> str:
    """Which file of a config that fails to parse holds the syntax error: the config itself, or one of
    its ``_base_`` files (MMEngine reports neither)."""
    import ast
    try:
        ast.parse(open(config).read(), filename=config)
    except SyntaxError:
        return f'config {config}'
    return f'a _base_ file of config {config}'


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
            messages.append(f'{source}: top-level key {key!r} is not read by MMEngine; did you mean {close[0]!r}?')
    for message in messages:
        logger.warning(message)
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


LOCK_FILE = '.lsnet-train.lock'
_held_locks: dict = {}  # work dir -> open lock file, held until the process ends


def lock_work_dir(work_dir: str) -> None:
    """Make this run the only one training into ``work_dir`` (rank 0 holds the lock for all ranks).

    The lock is an ``flock`` on ``work_dir/.lsnet-train.lock``: the kernel releases it when the
    holder ends, however it ends (kill -9 included), so a crashed run never blocks the next one. The
    file names the holder (pid, host, start time, command) for the refusal message."""
    if int(os.environ.get('RANK', '0')) != 0 or work_dir in _held_locks:
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_FILE)
    handle = open(path, 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            owner = json.loads(handle.read() or '{}')
        except ValueError:
            owner = {}
        handle.close()
        who = (f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {owner.get('started', '?')}: "
               f"{owner.get('command', '?')}") if owner else 'another process'
        raise SystemExit(f'{work_dir} is in use by another training run ({who}). Wait for it to end, '
                         'or pick another --work-dir.') from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                 started=time.strftime('%Y-%m-%d %H:%M:%S'), command=' '.join(sys.argv))))
    handle.flush()
    _held_locks[work_dir] = handle
