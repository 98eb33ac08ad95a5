"""Generate the synthetic shapes datasets (COCO, ADE20K and ImageNet layouts) under data/shapes."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
from lsnet.datasets import generate_shapes  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--root', default='data/shapes')
    parser.add_argument('--tasks', nargs='+', default=['coco', 'ade', 'imagenet'], choices=['coco', 'ade', 'imagenet'])
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    generate_shapes(args.root, tuple(args.tasks), args.num_train, args.num_val, seed=args.seed)


if __name__ == '__main__':
    run_cli(main)
