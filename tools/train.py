"""Train any of the project's configs (detection, segmentation, classification) with MMEngine.

Single process:  python tools/train.py CONFIG [--amp] [--resume [CKPT]] [--cfg-options k=v ...]
Multi-GPU/node:  tools/dist_train.sh CONFIG NUM_GPUS [args]   (torchrun, launcher "pytorch")
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402  (run from a checkout)

from mmengine.runner import Runner  # noqa: E402

import lsnet  # noqa: E402,F401  (registers models, safe checkpoint loading)
from lsnet.mm.runner import add_common_args, guard_work_dir, load_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or from the latest checkpoint in the work dir if none is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--overwrite', action='store_true',
                        help='allow training into a work dir that already holds checkpoints')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('[lsnet] AMP is already enabled in the config')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    guard_work_dir(cfg, args.resume, args.overwrite)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
