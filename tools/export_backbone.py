"""Export the model of a classification run in the released layout: ``{'model': state_dict}``
with the backbone's own names, loadable by ``timm.create_model(NAME, pretrained=True,
pretrained_cfg_overlay=dict(file=OUT))`` and by every detection/segmentation config.

python tools/export_backbone.py work_dirs/lsnet-t_8xb256_in1k/epoch_300.pth lsnet_t_mine.pth
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
from lsnet.checkpoint import (non_finite_tensors, read_checkpoint, save_checkpoint, select_prefix,  # noqa: E402
                              unwrap_state_dict)


def export(checkpoint: str, out: str, overwrite: bool = False) -> dict:
    if osp.exists(out) and not overwrite:
        raise SystemExit(f'{out} exists; pass --overwrite to replace it')
    state = unwrap_state_dict(read_checkpoint(checkpoint), f'checkpoint {checkpoint}')
    if any(k.startswith('backbone.') for k in state):
        state = select_prefix(state, 'backbone.', f'checkpoint {checkpoint}')
    broken = non_finite_tensors(state)
    if broken:
        listed = ', '.join(broken[:5]) + (f' and {len(broken) - 5} more' if len(broken) > 5 else '')
        raise SystemExit(f'{checkpoint}: {len(broken)} tensor(s) hold NaN or Inf ({listed}); not exporting them. '
                         'Export an earlier checkpoint of the run.')
    save_checkpoint({'model': dict(state)}, out)  # never a half-written file under the final name
    return state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state = export(args.checkpoint, args.out, args.overwrite)
    print(f'wrote {args.out}: {len(state)} tensors')


if __name__ == '__main__':
    run_cli(main)
