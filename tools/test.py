"""Evaluate a checkpoint with a config's test set and metric (COCO bbox/segm, mIoU, top-1/top-5).

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
Released mmdet 2.x / mmseg 0.x / classification files load directly (see lsnet.checkpoint.load_model_checkpoint).
A CHECKPOINT ending in .onnx (written by tools/deploy.py, fp32 or INT8) runs in onnxruntime, one ending in
.xml (OpenVINO's IR, tools/deploy.py OUT.xml) in OpenVINO, with the same data, post-processing and metric
as the PyTorch model.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402  (run from a checkout)

from mmengine.runner import Runner  # noqa: E402

from lsnet.cli import import_installed_tasks, run_cli  # noqa: E402
import lsnet  # noqa: E402,F401
from lsnet.checkpoint import load_model_checkpoint  # noqa: E402
from lsnet.deploy import RUNTIMES, runtime_of  # noqa: E402
from lsnet.mm.runner import add_common_args, load_config, prepare_launch  # noqa: E402
from lsnet.mm.safe_io import install_safe_io  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='also dump the metrics as JSON to this file')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    install_safe_io()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    prepare_launch(cfg, args)
    if args.checkpoint.endswith(tuple(RUNTIMES)):
        from lsnet.mm.onnx_model import evaluate_exported
        print(f'running {args.checkpoint} in {runtime_of(args.checkpoint)}', flush=True)
        metrics = evaluate_exported(cfg, args.checkpoint, cfg.work_dir)
    else:
        cfg.load_from = None
        if isinstance(cfg.model.get('backbone'), dict):
            cfg.model.backbone.init_cfg = None  # the checkpoint supplies the backbone too
        runner = Runner.from_cfg(cfg)
        load_model_checkpoint(runner.model, args.checkpoint)  # load_from is None: the runner loads nothing
        metrics = runner.test()
    if args.out:
        import json
        with open(args.out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
    return metrics


if __name__ == '__main__':
    import_installed_tasks()
    run_cli(main)
