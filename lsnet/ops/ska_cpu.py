"""The compiled CPU SKA kernels (``lsnet/ops/csrc/ska_cpu.cpp``) as the custom op ``lsnet::ska_cpu``.

Importing raises ImportError when the extension was not built (no compiler at install time).
"""
from __future__ import annotations

import torch

from .. import _ska_cpu  # noqa: F401  (ImportError when not built)


@torch.library.custom_op('lsnet::ska_cpu', mutates_args=())
def ska_cpu(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA forward on CPU (float32/float64), x and w of one dtype."""
    return _ska_cpu.forward(x, w)


@ska_cpu.register_fake
def _(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op('lsnet::ska_cpu_backward', mutates_args=())
def ska_cpu_backward(grad_out: torch.Tensor, x: torch.Tensor,
                     w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    grad_x, grad_w = _ska_cpu.backward(grad_out, x, w)
    return grad_x, grad_w


@ska_cpu_backward.register_fake
def _(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(w, memory_format=torch.contiguous_format))


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad_out: torch.Tensor):
    x, w = ctx.saved_tensors
    return ska_cpu_backward(grad_out, x, w)


ska_cpu.register_autograd(_backward, setup_context=_setup_context)
