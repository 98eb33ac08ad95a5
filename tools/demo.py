"""Smoke inference of the LSNet-T backbone (placeholder until the full demo lands)."""
import torch

import lsnet


def main() -> None:
    model = lsnet.LSNet('t', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        feats = model(torch.rand(1, 3, 480, 640))
    for index, feat in enumerate(feats):
        print(f'stage {index + 1}: {tuple(feat.shape)} (stride {480 // feat.shape[2]})')


if __name__ == '__main__':
    main()
