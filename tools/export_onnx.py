"""Export a fused LSNet/VAN classifier or backbone to ONNX and check it with onnxruntime.

python tools/export_onnx.py lsnet_t model.onnx [--checkpoint lsnet_t.pth] [--backbone] [--size 224 224]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
import lsnet  # noqa: E402,F401
from lsnet.deploy import export_onnx  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='lsnet_t, lsnet_s_distill, van_b0, ...')
    parser.add_argument('out')
    parser.add_argument('--checkpoint', help='weights file (released layout or ours)')
    parser.add_argument('--backbone', action='store_true', help='export the four stage maps, dynamic sizes')
    parser.add_argument('--size', nargs=2, type=int, default=None, metavar=('H', 'W'))
    args = parser.parse_args(argv)
    if args.backbone:  # the variant's OpenMMLab backbone: the four stage maps
        from lsnet.models import create_backbone
        init = dict(type='Pretrained', checkpoint=args.checkpoint) if args.checkpoint else None
        model = create_backbone(args.model, out_indices=(0, 1, 2, 3), init_cfg=init)
        model.init_weights()
    else:
        model = timm.create_model(args.model, pretrained=bool(args.checkpoint),
                                  pretrained_cfg_overlay=dict(file=args.checkpoint) if args.checkpoint else None)
    size = tuple(args.size) if args.size else ((256, 320) if args.backbone else (224, 224))
    export_onnx(model.eval(), args.out, size, dynamic=True)
    import onnxruntime as ort
    session = ort.InferenceSession(args.out)
    x = torch.randn(2, 3, *size)
    got = session.run(None, {'images': x.numpy()})
    with torch.no_grad():
        want = model(x)
    want = want if isinstance(want, tuple) else (want,)
    error = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    print(f'wrote {args.out}; onnxruntime vs PyTorch max abs difference {error:.2e}')


if __name__ == '__main__':
    run_cli(main)
