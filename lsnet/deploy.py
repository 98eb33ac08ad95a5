"""Deployment forms of the models: the fastest PyTorch inference form (:func:`deploy_model`) and ONNX
export of the fused classifiers and backbones (dynamic input sizes, :func:`export_onnx`)."""
from __future__ import annotations

import copy
import os
from typing import Optional

import torch

from .models.backbone_base import fuse_model
from .ops import ska_backend


def deploy_model(model: torch.nn.Module, compile: bool = True) -> torch.nn.Module:
    """``model`` in its fastest inference form on this machine: eval mode, Conv-BN pairs and RepVGG
    branches fused (ours, then timm's re-parameterisable modules, so any timm model works too), and,
    with ``compile``, a ``torch.compile`` graph with frozen weights (constants folded, oneDNN weight
    pre-packing on CPU) in which the compiled SKA kernel stays one node.

    Call the result under ``torch.inference_mode()`` (freezing applies without autograd), without
    autocast: for fp16/bf16, cast the model first (``deploy_model(model.half())``). The first
    call compiles (about a minute for LSNet-T on a 2-core CPU), a new input shape compiles again.
    Outputs equal the unfused model's up to fp32 rounding (the tests bound it by 1e-4 relative).
    ``model`` itself is left as it was.
    """
    import timm.utils

    reference = next(model.parameters(), None)
    model = timm.utils.reparameterize_model(fuse_model(copy.deepcopy(model).eval()))
    if reference is not None:  # some timm fuse() methods build their new layers on the CPU in fp32
        model = model.to(device=reference.device, dtype=reference.dtype)
    if compile:
        model = torch.compile(model, options={'freezing': True})
    return model


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
