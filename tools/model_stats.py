"""Print parameters and FLOPs of LSNet/VAN variants (deploy models, one image).

python tools/model_stats.py [--models lsnet_t van_b0 ...] [--size 224 224]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import timm  # noqa: E402

import lsnet  # noqa: E402,F401
from lsnet.models.stats import count_params_and_flops  # noqa: E402

PAPER = {'lsnet_t': (11.4, 0.3), 'lsnet_s': (16.1, 0.5), 'lsnet_b': (23.2, 1.3), 'van_b0': (4.1, 0.9),
         'van_b1': (13.9, 2.5), 'van_b2': (26.6, 5.0), 'van_b3': (44.8, 9.0)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(PAPER))
    parser.add_argument('--size', nargs=2, type=int, default=(224, 224), metavar=('H', 'W'))
    args = parser.parse_args(argv)
    print(f'| model | params (M) | GFLOPs @{args.size[0]}x{args.size[1]} | paper params / GFLOPs (224) |')
    print('|---|---|---|---|')
    for name in args.models:
        params, flops = count_params_and_flops(timm.create_model(name), tuple(args.size))
        paper = PAPER.get(name)
        print(f'| {name} | {params:.2f} | {flops:.3f} | {f"{paper[0]} / {paper[1]}" if paper else "-"} |')


if __name__ == '__main__':
    main()
