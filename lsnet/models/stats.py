"""Parameter and FLOP counts of the deploy (fused) models, as the papers report them."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .backbone_base import fuse_model


@torch.no_grad()
def count_params_and_flops(model: torch.nn.Module, input_size: tuple[int, int] = (224, 224),
                           fuse: bool = True) -> tuple[float, float]:
    """(parameters in millions, multiply-accumulates in billions) for one image.

    Like the papers (fvcore-style counting), a multiply-accumulate counts as one FLOP and only
    convolutions and matrix products are counted; the model is Conv-BN fused first.
    """
    model = model.eval()
    if fuse:
        model = fuse_model(model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 3, *input_size))
    return params, counter.get_total_flops() / 2 / 1e9
