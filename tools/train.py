"""Train any of the project's configs (detection, segmentation, classification) with MMEngine.

Single process:  python tools/train.py CONFIG [--amp] [--resume [CKPT]] [--cfg-options k=v ...]
Multi-GPU/node:  tools/dist_train.sh CONFIG NUM_GPUS [args]   (torchrun, launcher "pytorch")

One run owns a work dir at a time. SIGTERM or SIGUSR1 (a scheduler's preemption notice) ends the run
after the current iteration with a resumable checkpoint and exit status 75; continue with --resume.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402  (run from a checkout)

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from lsnet.cli import import_installed_tasks, run_cli  # noqa: E402
import lsnet  # noqa: E402,F401  (registers models)
from lsnet.checkpoint import check_model_checkpoint, read_checkpoint  # noqa: E402
from lsnet.mm.optim import enable_amp, enable_skip_nonfinite  # noqa: E402
from lsnet.mm.safe_io import install_safe_io  # noqa: E402
from lsnet.mm.workdir import check_resume_checkpoint, find_resumable_checkpoint  # noqa: E402
from lsnet.mm.runner import add_common_args, guard_work_dir, load_config, lock_work_dir, prepare_launch  # noqa: E402

SAFETY_HOOKS_FILE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs/_base_/safety_hooks.py')
EXACT_RESUME_LOOPS = {'IterBasedTrainLoop': 'ExactResumeIterBasedTrainLoop',
                      'EpochBasedTrainLoop': 'ExactResumeEpochBasedTrainLoop'}


def add_safety(cfg, args) -> None:
    """Exact resumption (RNG states in checkpoints, also within an epoch), a resumable checkpoint on
    SIGTERM/SIGUSR1, non-finite loss handling, data checks."""
    hooks = list(cfg.get('custom_hooks', []))
    present = {h.get('type') for h in hooks}
    for hook in Config.fromfile(SAFETY_HOOKS_FILE).SAFETY_HOOKS + [dict(type='PreemptionHook')]:
        if hook['type'] not in present:
            hooks.append(dict(hook))
    cfg.custom_hooks = hooks
    loop = cfg.train_cfg
    kind = loop.get('type') or ('EpochBasedTrainLoop' if loop.get('by_epoch', True) else 'IterBasedTrainLoop')
    if kind in EXACT_RESUME_LOOPS:
        loop.pop('by_epoch', None)
        loop.type = EXACT_RESUME_LOOPS[kind]
    if args.on_nonfinite == 'skip':
        try:
            enable_skip_nonfinite(cfg.optim_wrapper)
        except ValueError as err:
            raise SystemExit(str(err)) from None
    # The validation and test sets are checked as the training set is (a broken validation file would
    # otherwise fail at the first evaluation, hours in), never skipped from: their metrics would change.
    # With --check-data off the wrapper still names a sample whose loading fails.
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader or loader.dataset.get('type') == 'CheckedDataset':
            continue
        loader.dataset = dict(type='CheckedDataset', dataset=loader.dataset, split=split,
                              check=args.check_data != 'off', decode=args.check_data_decode,
                              on_error=args.check_data if split == 'train' and args.check_data == 'skip' else 'raise')


def report_resumed_lr(cfg, checkpoint: dict) -> None:
    """Resuming restores the optimizer and scheduler states of the run, whose learning rate wins over
    one changed in the config since: say so, with both values."""
    configured = (cfg.optim_wrapper.get('optimizer') or {}).get('lr')
    groups = (checkpoint.get('optimizer') or {}).get('param_groups') or []
    saved = [g.get('initial_lr', g.get('lr')) for g in groups if g.get('initial_lr', g.get('lr')) is not None]
    if configured is None or not saved or any(abs(configured - v) <= 1e-9 * abs(v) for v in saved):
        return  # some group (the one without a multiplier) started at the configured value
    saved = max(saved)
    print(f'[lsnet] --resume: the config sets lr={configured:g} but the run was started with lr={saved:g}; '
          f'resuming continues that run\'s schedule (lr={saved:g}, restored from the checkpoint\'s optimizer '
          'and scheduler states). To train with the new value, start a new run with load_from=<checkpoint>.')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or from the latest checkpoint in the work dir if none is given')
    parser.add_argument('--amp', action='store_true', help='mixed precision: fp16 with loss scaling on a GPU, bfloat16 on CPU')
    parser.add_argument('--load-from-partial', action='store_true',
                        help='load_from: load what matches and leave the rest at initialisation (MMEngine\'s '
                             'behaviour) instead of failing on missing, unexpected or mis-shaped keys')
    parser.add_argument('--overwrite', action='store_true',
                        help='allow training into a work dir that already holds checkpoints')
    parser.add_argument('--check-data', choices=['raise', 'skip', 'off'], default='raise',
                        help='check the training, validation and test sets before training: fail on bad samples (default), '
                             'skip bad training samples, or not')
    parser.add_argument('--check-data-decode', action='store_true',
                        help='with --check-data, also decode every image (finds truncated files; slower)')
    parser.add_argument('--on-nonfinite', choices=['stop', 'skip'], default='stop',
                        help='on a NaN/Inf loss: stop naming the iteration and terms (default), or skip the step')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    install_safe_io()
    cfg = load_config(args)
    prepare_launch(cfg, args)
    if args.amp:
        try:
            kind = enable_amp(cfg.optim_wrapper)
        except ValueError as err:
            raise SystemExit(str(err)) from None
        print(f'[lsnet] --amp: optim_wrapper {kind}')
    add_safety(cfg, args)
    if args.resume == 'auto':
        found = find_resumable_checkpoint(cfg.work_dir)
        if found is None:
            print(f'[lsnet] --resume: no readable checkpoint in {cfg.work_dir}; starting from scratch')
        else:
            print(f'[lsnet] --resume: resuming from {found}')
        cfg.resume, cfg.load_from = found is not None, found
    elif args.resume:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    lock_work_dir(cfg.work_dir)
    guard_work_dir(cfg, args.resume, args.overwrite)
    if cfg.get('load_from') and not cfg.get('resume') and not args.load_from_partial:
        # A fine-tuning start point loads strictly, like init_cfg: another variant's file is an error
        # listing the keys, not thousands of warnings and a run from random weights. It loads when
        # training starts, after the runner's weight initialisation (which would overwrite it); it is
        # checked against the model as soon as the model is built, before any data is read.
        load_from = cfg.load_from
        cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='StrictLoadHook', checkpoint=load_from)]
        cfg.load_from = None
        runner = Runner.from_cfg(cfg)
        check_model_checkpoint(runner.model, load_from)
    else:
        runner = Runner.from_cfg(cfg)
    if cfg.get('resume'):
        checkpoint = read_checkpoint(cfg.load_from)
        check_resume_checkpoint(runner.model, checkpoint, cfg.load_from)
        report_resumed_lr(cfg, checkpoint)
    runner.train()


if __name__ == '__main__':
    import_installed_tasks()
    run_cli(main)
