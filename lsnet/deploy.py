"""ONNX export of the deploy (fused) classifiers and of the backbones (dynamic input sizes)."""
from __future__ import annotations

import os
from typing import Optional

import torch

from .models.backbone_base import fuse_model
from .ops import ska_backend


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, input_size: tuple[int, int] = (224, 224),
                dynamic: bool = True, opset: int = 17, fuse: bool = True) -> str:
    """Export ``model`` (classifier, or backbone built with ``out_indices``) to ONNX.

    The SKA operator exports through its plain PyTorch form (pads, slices, multiply-adds), which every
    ONNX runtime runs. With ``dynamic`` the batch and spatial sizes are free; the attention bias is
    exported in its resizable form, so any input size gives the PyTorch result.
    """
    model = model.eval()
    if fuse:
        model = fuse_model(model)
    dense = getattr(model, 'out_indices', None) is not None
    outputs = [f'stage{i + 1}' for i in model.out_indices] if dense else ['logits']
    # trace at a size other than the attention grid's, so the graph holds the general bias path
    height, width = input_size
    example = torch.randn(1, 3, height, width)
    axes: Optional[dict] = None
    if dynamic:
        axes = {'images': {0: 'batch', 2: 'height', 3: 'width'} if dense else {0: 'batch'}}
        for name in outputs:
            axes[name] = {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'} if dense else {0: 'batch'}
    with ska_backend('torch'), torch.no_grad():
        torch.onnx.export(model, (example,), os.fspath(path), dynamo=False, input_names=['images'],
                          output_names=outputs, opset_version=opset, dynamic_axes=axes)
    return os.fspath(path)
