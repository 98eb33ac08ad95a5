"""Small-Kernel Aggregation (SKA), the "focus small" half of LSNet's LS convolution.

For x of shape (B, C, H, W) and per-pixel kernels w of shape (B, G, 9, H, W)::

    out[b, c, i, j] = sum_{u, v in 0..2} x[b, c, i + u - 1, j + v - 1] * w[b, c % G, 3u + v, i, j]

with zero padding. Channel ``c`` uses kernel group ``c % G`` (groups are interleaved), so viewing x as
(B, C // G, G, H, W) puts the group on dimension 2 and the kernels broadcast over dimension 1.

Three implementations, chosen per call by :func:`ska`:

* ``'torch'``: nine shifted multiply-accumulates on a padded view. It never builds the 9x unfolded
  copy of x that the obvious ``F.unfold`` formulation needs, runs on any device, differentiates
  through autograd, traces under ``torch.compile`` and exports to ONNX.
* ``'triton'``: fused forward and backward kernels for CUDA tensors (fp32/fp16/bf16), exposed as the
  custom op ``torch.ops.lsnet.ska`` so ``torch.compile`` treats it as one opaque node.
* ``'cpp'``: compiled CPU kernels (fp32/fp64, forward and backward, OpenMP over planes), the custom
  op ``torch.ops.lsnet.ska_cpu``; built at install time when a compiler is present.

``'auto'`` (the default) takes Triton for CUDA tensors, the compiled kernels for fp32/fp64 CPU
tensors, and the torch path otherwise (other dtypes, ONNX export, extensions not available).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
import torch.nn.functional as F

SKA_BACKENDS = ('auto', 'torch', 'triton', 'cpp')
_backend = os.environ.get('LSNET_SKA_BACKEND', 'auto')
if _backend not in SKA_BACKENDS:
    raise ValueError(f'LSNET_SKA_BACKEND={_backend!r} is not one of {SKA_BACKENDS}')


def set_ska_backend(name: str) -> None:
    """Select the SKA implementation globally: one of ``SKA_BACKENDS``."""
    global _backend
    if name not in SKA_BACKENDS:
        raise ValueError(f'unknown SKA backend {name!r}; valid: {SKA_BACKENDS}')
    _backend = name


@contextlib.contextmanager
def ska_backend(name: str) -> Iterator[None]:
    """Context manager that selects the SKA implementation inside its block."""
    previous = _backend
    set_ska_backend(name)
    try:
        yield
    finally:
        set_ska_backend(previous)


def _check_shapes(x: torch.Tensor, w: torch.Tensor) -> None:
    if x.dim() != 4 or w.dim() != 5:
        raise ValueError(f'SKA expects x (B, C, H, W) and w (B, G, 9, H, W); got {tuple(x.shape)} '
                         f'and {tuple(w.shape)}')
    b, c, h, wd = x.shape
    if w.shape[0] != b or w.shape[2] != 9 or w.shape[3:] != (h, wd) or c % w.shape[1]:
        raise ValueError(f'SKA shape mismatch: x {tuple(x.shape)} needs w (B, G, 9, H, W) with C % G == 0, '
                         f'got w {tuple(w.shape)}')


def ska_torch(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch SKA: nine shifted multiply-accumulates, no unfolded copy of ``x``."""
    _check_shapes(x, w)
    if w.dtype != x.dtype:
        w = w.to(x.dtype)
    b, c, h, wd = x.shape
    groups = w.shape[1]
    padded = F.pad(x, (1, 1, 1, 1)).reshape(b, c // groups, groups, h + 2, wd + 2)
    kernels = w.unsqueeze(1)  # (B, 1, G, 9, H, W): broadcast over the C // G channels of a group
    out = padded[..., 0:h, 0:wd] * kernels[:, :, :, 0]
    for k in range(1, 9):
        u, v = divmod(k, 3)
        term = padded[..., u:u + h, v:v + wd] * kernels[:, :, :, k]
        out = out + term if out.requires_grad else out.add_(term)
    return out.reshape(b, c, h, wd)


def _triton_available() -> bool:
    try:
        from . import ska_triton  # noqa: F401
    except ImportError:
        return False
    return True


def _cpp_available() -> bool:
    try:
        from . import ska_cpu  # noqa: F401
    except ImportError:
        return False
    return True


def ska(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA with the selected backend (see module docstring). Differentiable in x and w."""
    backend = _backend
    cpp_dtype = x.dtype in (torch.float32, torch.float64) and w.dtype in (x.dtype, torch.float32)
    if backend == 'cpp' or (backend == 'auto' and x.device.type == 'cpu' and cpp_dtype
                            and not torch.onnx.is_in_onnx_export() and _cpp_available()):
        if x.device.type != 'cpu' or not cpp_dtype:
            raise RuntimeError(f'SKA backend "cpp" needs float32/float64 CPU tensors, got {x.dtype} on {x.device}')
        from .ska_cpu import ska_cpu
        _check_shapes(x, w)
        return ska_cpu(x, w.to(x.dtype) if w.dtype != x.dtype else w)
    if backend == 'auto':
        use_triton = x.is_cuda and not torch.onnx.is_in_onnx_export() and _triton_available()
    elif backend == 'triton':
        if not x.is_cuda:
            raise RuntimeError(f'SKA backend "triton" needs CUDA tensors, got device {x.device}')
        use_triton = True
    else:
        use_triton = False
    if not use_triton:
        return ska_torch(x, w)
    from .ska_triton import ska_triton
    _check_shapes(x, w)
    if w.dtype != x.dtype:  # autocast leaves GroupNorm outputs (w) in fp32
        w = w.to(x.dtype)
    return ska_triton(x, w)
