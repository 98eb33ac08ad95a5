"""Registering an SKA implementation as a PyTorch custom op pair (forward, backward) with autograd,
so ``torch.compile`` treats each as one opaque node and autograd uses the fused backward."""
from __future__ import annotations

from typing import Callable

import torch


def define_ska_op(name: str, forward: Callable, backward: Callable):
    """``torch.ops.lsnet.<name>`` computing ``forward(x, w)``, differentiated by ``backward(go, x, w)``."""

    @torch.library.custom_op(f'lsnet::{name}', mutates_args=())
    def op(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return forward(x, w)

    @op.register_fake
    def _(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @torch.library.custom_op(f'lsnet::{name}_backward', mutates_args=())
    def op_backward(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grad_x, grad_w = backward(grad_out, x, w)
        return grad_x, grad_w

    @op_backward.register_fake
    def _(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.empty_like(x, memory_format=torch.contiguous_format),
                torch.empty_like(w, memory_format=torch.contiguous_format))

    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    def differentiate(ctx, grad_out: torch.Tensor):
        x, w = ctx.saved_tensors
        return op_backward(grad_out, x, w)

    op.register_autograd(differentiate, setup_context=setup_context)
    return op
