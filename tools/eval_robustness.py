"""ImageNet-C mCE, ImageNet-A/-R (200-class subsets) and ImageNet-Sketch top-1 of a classifier.

python tools/eval_robustness.py CONFIG CHECKPOINT --classes data/imagenet/train \
    [--imagenet-c DIR] [--imagenet-a DIR] [--imagenet-r DIR] [--sketch DIR] [--out results.json]
``--classes``: the ImageNet-1K training folder (its sorted wnid folders give the logit order) or a
text file with one wnid per line in logit order.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

from mmengine.config import DictAction  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
import lsnet  # noqa: E402,F401
from lsnet.checkpoint import load_model_checkpoint  # noqa: E402
from lsnet.mm.build import build_model_from_config  # noqa: E402
from lsnet.robustness import evaluate_robustness  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--classes', required=True)
    parser.add_argument('--imagenet-c')
    parser.add_argument('--imagenet-a')
    parser.add_argument('--imagenet-r')
    parser.add_argument('--sketch')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    for path in (args.config, args.checkpoint, args.classes):
        if not osp.exists(path):
            raise SystemExit(f'not found: {path}')
    if osp.isdir(args.classes):
        classes = sorted(d for d in os.listdir(args.classes) if osp.isdir(osp.join(args.classes, d)))
    else:
        classes = [line.strip() for line in open(args.classes) if line.strip()]
    model, cfg = build_model_from_config(args.config, args.cfg_options, pretrained=False)
    load_model_checkpoint(model, args.checkpoint)
    model.eval()
    results = evaluate_robustness(
        lambda x: model(x, mode='tensor'), classes, cfg.val_dataloader.dataset.transform,
        imagenet_c=args.imagenet_c, imagenet_a=args.imagenet_a, imagenet_r=args.imagenet_r, sketch=args.sketch,
        batch_size=args.batch_size, num_workers=args.num_workers)
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    run_cli(main)
