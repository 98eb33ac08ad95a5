"""Print parameters and FLOPs of LSNet/VAN variants (deploy models, one image), or of whole
detectors/segmentors built from configs at the papers' input sizes (1333x800 for COCO, 512x512 for
ADE20K): parameters of the whole model; FLOPs of backbone + neck for detectors (their heads' cost
after proposals/NMS depends on the image) and of the whole network for Semantic FPN.

python tools/model_stats.py [--models lsnet_t van_b0 ...] [--size 224 224]
python tools/model_stats.py --configs configs/retinanet/*_1x_coco.py configs/sem_fpn/*_40k_ade20k.py
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import timm  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
import lsnet  # noqa: E402,F401
from lsnet.models.stats import count_params_and_flops  # noqa: E402
from lsnet.models.variants import PAPER_FIGURES  # noqa: E402



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(PAPER_FIGURES))
    parser.add_argument('--size', nargs=2, type=int, default=(224, 224), metavar=('H', 'W'))
    parser.add_argument('--configs', nargs='+', default=None, help='detection/segmentation configs')
    args = parser.parse_args(argv)
    if args.configs:
        return config_stats(args.configs)
    print(f'| model | params (M) | GFLOPs @{args.size[0]}x{args.size[1]} | paper params / GFLOPs (224) |')
    print('|---|---|---|---|')
    for name in args.models:
        params, flops = count_params_and_flops(timm.create_model(name), tuple(args.size))
        paper = PAPER_FIGURES.get(name)
        print(f'| {name} | {params:.2f} | {flops:.3f} | {f"{paper[0]} / {paper[1]}" if paper else "-"} |')


def config_stats(paths) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from lsnet.mm.build import PAPER_INPUT_SIZES, build_model_from_config
    print('| config | params (M), whole model | GFLOPs: detectors backbone + neck, segmentors whole | input |\n|---|---|---|---|')
    for path in paths:
        model, cfg = build_model_from_config(path, pretrained=False)
        model.eval()
        scope = cfg.default_scope
        size = PAPER_INPUT_SIZES[scope]
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            if scope == 'mmdet':  # heads after NMS/proposals cost what the image holds: count backbone + neck
                model.extract_feat(torch.zeros(1, 3, *size))
            else:
                model(torch.zeros(1, 3, *size), mode='tensor')
        name = path.split('/')[-1][:-3]
        print(f'| {name} | {params:.1f} | {counter.get_total_flops() / 2e9:.1f} | {size[1]}x{size[0]} |', flush=True)


if __name__ == '__main__':
    run_cli(main)
