"""Small-Kernel Aggregation (SKA), the "focus small" half of LSNet's LS convolution.

For x of shape (B, C, H, W) and per-pixel kernels w of shape (B, G, 9, H, W)::

    out[b, c, i, j] = sum_{u, v in 0..2} x[b, c, i + u - 1, j + v - 1] * w[b, c % G, 3u + v, i, j]

with zero padding. Channel ``c`` uses kernel group ``c % G`` (groups are interleaved), so viewing x as
(B, C // G, G, H, W) puts the group on dimension 2 and the kernels broadcast over dimension 1.

Three implementations, chosen per call by :func:`ska`:

* ``'torch'``: nine shifted multiply-accumulates on a padded view. It never builds the 9x unfolded
  copy of x that the obvious ``F.unfold`` formulation needs, runs on any device, differentiates
  through autograd and traces under ``torch.compile``. An ONNX export writes one of two equivalent
  forms of it, chosen for the runtime that will run the graph (:data:`ONNX_SKA_FORMS`,
  :func:`onnx_ska_form`): :func:`ska_flat` for onnxruntime, this padded view for OpenVINO.
* ``'triton'``: fused forward and backward kernels for CUDA tensors (fp32/fp16/bf16), exposed as the
  custom op ``torch.ops.lsnet.ska`` so ``torch.compile`` treats it as one opaque node.
* ``'cpp'``: compiled CPU kernels (fp32/fp64, forward and backward, OpenMP over planes), the custom
  op ``torch.ops.lsnet.ska_cpu``; built at install time when a compiler is present.

``'auto'`` (the default) takes Triton for CUDA tensors, the compiled kernels for fp32/fp64 CPU
tensors, and the torch path otherwise (other dtypes, ONNX export, extensions not available).
:func:`resolve_backend` says which one runs. The first time Triton would run on a (device, dtype),
its forward and backward are compared with the torch path on a small tensor; if they disagree or
fail to compile, a warning names the error and ``'auto'`` uses the torch path from then on, while
an explicit ``'triton'`` raises.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Callable, Dict, Iterator, Optional, Tuple, Union

import torch
import torch.nn.functional as F

SKA_BACKENDS = ('auto', 'torch', 'triton', 'cpp', 'unfold')
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


# The SKA forms an ONNX export can write, by the runtime each suits (measured on LSNet-T's 28x28 and 14x14
# maps): onnxruntime copies the flat form's nine contiguous windows in one pass each and runs the padded
# view's row-by-row slices about twice as slowly, while OpenVINO runs the padded view faster: LSNet-T's
# whole graph (batch 16) takes about 1.6 times as long there with the flat form.
ONNX_SKA_FORMS = ('flat', 'padded')
_onnx_form = 'flat'


@contextlib.contextmanager
def onnx_ska_form(name: str) -> Iterator[None]:
    """The SKA form that ONNX exports inside the block write: 'flat' (:func:`ska_flat`) or 'padded'
    (:func:`ska_torch`); both compute the same sums."""
    global _onnx_form
    if name not in ONNX_SKA_FORMS:
        raise ValueError(f'unknown ONNX SKA form {name!r}; valid: {ONNX_SKA_FORMS}')
    previous, _onnx_form = _onnx_form, name
    try:
        yield
    finally:
        _onnx_form = previous


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
    if not torch.jit.is_scripting():
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


def ska_flat(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA as nine shifted windows of the whole input flattened to one vector: the form exported to ONNX.

    In a flattened (B, C, H, W) tensor the neighbour (i + u - 1, j + v - 1) of every element lies
    ``(u - 1) * W + (v - 1)`` places away, so each tap reads one contiguous window of the input padded
    by ``W + 1`` zeros at both ends. Where a tap would cross the image border (and read the next row or
    plane) its kernel value is zeroed instead, which gives :func:`ska_torch`'s sums term by term. ONNX
    runtimes copy a window in one pass, while the padded-view form costs a pad and nine slices over
    rows of ``W`` elements (on LSNet's 7x7 and 14x14 maps, twice the time in onnxruntime).
    """
    if w.dtype != x.dtype:
        w = w.to(x.dtype)
    b, c, h, wd = x.shape
    groups = w.shape[1]
    plane = h * wd
    size = b * c * plane
    flat = F.pad(x.reshape(-1), (wd + 1, wd + 1))
    position = torch.arange(plane, device=x.device)
    row, col = position // wd, position % wd
    inside = torch.ones_like(row, dtype=torch.bool)
    rows_ok = torch.stack([row > 0, inside, row < h - 1])  # tap row u = 0, 1, 2 stays in the image
    cols_ok = torch.stack([col > 0, inside, col < wd - 1])
    in_image = (rows_ok[:, None] & cols_ok[None, :]).to(x.dtype).reshape(9, plane)
    kernels = (w.reshape(b, groups, 9, plane) * in_image).unsqueeze(1)  # (B, 1, G, 9, HW)
    out = None
    for k in range(9):
        u, v = divmod(k, 3)
        start = u * wd + v
        term = flat[start:start + size].reshape(b, c // groups, groups, plane) * kernels[:, :, :, k]
        out = term if out is None else out + term
    return out.reshape(b, c, h, wd)


def ska_unfold(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA as the released LSNet code computes it without its CUDA kernel: ``x`` unfolded into its nine
    taps (a 9x copy), weighted per pixel, summed. The ``'unfold'`` backend, the baseline the benchmarks
    compare the other paths with; equal to :func:`ska_torch` up to rounding."""
    b, c, h, wd = x.shape
    groups = w.shape[1]
    taps = F.unfold(x, 3, padding=1).view(b, c // groups, groups, 9, h, wd)
    return (taps * w.to(x.dtype).unsqueeze(1)).sum(3).view(b, c, h, wd)


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


def resolve_backend(x: torch.Tensor, w: torch.Tensor) -> str:
    """The implementation :func:`ska` runs for these tensors: 'cpp', 'triton', 'unfold' or 'torch'."""
    backend = _backend
    cpp_dtype = x.dtype in (torch.float32, torch.float64) and w.dtype in (x.dtype, torch.float32)
    exporting = torch.onnx.is_in_onnx_export()
    if backend == 'cpp':
        if x.device.type != 'cpu' or not cpp_dtype:
            raise RuntimeError(f'SKA backend "cpp" needs float32/float64 CPU tensors, got {x.dtype} on {x.device}')
        return 'cpp'
    if backend == 'triton':
        if not x.is_cuda:
            raise RuntimeError(f'SKA backend "triton" needs CUDA tensors, got device {x.device}')
        return 'triton'
    if backend == 'unfold' and not exporting:
        return 'unfold'
    if backend in ('torch', 'unfold') or exporting:
        return 'torch'
    if x.device.type == 'cpu' and cpp_dtype and _cpp_available():
        return 'cpp'
    if x.is_cuda and _triton_available() and first_contact_ok('triton', x.device, x.dtype):
        return 'triton'
    return 'torch'


def ska(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA with the selected backend (see module docstring). Differentiable in x and w. A TorchScript
    model runs the torch path."""
    if torch.jit.is_scripting():
        return ska_torch(x, w)
    _check_shapes(x, w)
    backend = resolve_backend(x, w)
    if backend == 'torch':
        exporting_flat = torch.onnx.is_in_onnx_export() and _onnx_form == 'flat'
        return ska_flat(x, w) if exporting_flat else ska_torch(x, w)
    if backend == 'unfold':
        return ska_unfold(x, w)
    return _ska_compiled(backend, x, w)


def _ska_compiled(backend: str, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The 'cpp' or 'triton' kernels (their imports keep :func:`ska` parseable by TorchScript)."""
    if w.dtype != x.dtype:  # autocast leaves GroupNorm outputs (w) in fp32
        w = w.to(x.dtype)
    if backend == 'cpp':
        from . import ska_cpu
        if _needs_op(x, w):
            return ska_cpu.ska_cpu(x, w)
        return ska_cpu.forward_kernel(x, w)
    if _backend == 'triton':  # chosen explicitly: a failing first contact is an error
        first_contact_ok('triton', x.device, x.dtype, strict=True)
    from .ska_triton import ska_triton
    return ska_triton(x, w)


def _needs_op(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether a compiled kernel must run as its custom op: while tracing (one graph node) or when
    autograd records the call. Otherwise the kernel is called directly, without the ~10 us of custom-op
    dispatch, which is 3-5% of an SKA on a 14x14 map."""
    return torch.compiler.is_compiling() or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))


# -- first contact with a compiled backend ------------------------------------------------------------
# (backend, device, dtype) -> True (checked, agrees with the torch path) or the error text.
_first_contact: Dict[Tuple[str, str, torch.dtype], Union[bool, str]] = {}


def _compiled_implementation(backend: str) -> Callable:
    if backend == 'triton':
        from .ska_triton import ska_triton
        return ska_triton
    raise ValueError(f'no first-contact check for backend {backend!r}')


def check_against_torch(implementation: Callable, device: torch.device, dtype: torch.dtype) -> Optional[str]:
    """Run ``implementation`` forward and backward on a small tensor and compare it with the torch
    path; None when they agree, else what went wrong."""
    # Called from inside a model's forward, which may run under no_grad, inference_mode or autocast.
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(torch.device(device).type, enabled=False):
        return _compare_with_torch(implementation, device, dtype)


def _compare_with_torch(implementation: Callable, device: torch.device, dtype: torch.dtype) -> Optional[str]:
    tolerance = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}.get(dtype, 1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 5, 7, generator=generator).to(device=device, dtype=dtype).requires_grad_()
    w = torch.randn(2, 4, 9, 5, 7, generator=generator).to(device=device, dtype=dtype).requires_grad_()
    grad_out = torch.randn(2, 16, 5, 7, generator=generator).to(device=device, dtype=dtype)
    try:
        out = implementation(x, w)
        got = (out, *torch.autograd.grad(out, (x, w), grad_out))
    except Exception as err:  # a compile or launch failure of any kind is what this check is for
        return f'{type(err).__name__}: {err}'
    ref_out = ska_torch(x.float(), w.float())
    want = (ref_out, *torch.autograd.grad(ref_out, (x, w), grad_out.float()))
    for name, a, b in zip(('forward', 'grad_x', 'grad_w'), got, want):
        error = ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()
        if not error <= tolerance:  # also catches NaN
            return f'{name} differs from the PyTorch path (relative error {error:.3g} > {tolerance:g})'
    return None


def first_contact_ok(backend: str, device: torch.device, dtype: torch.dtype, strict: bool = False,
                     implementation: Optional[Callable] = None) -> bool:
    """Once per process and (backend, device, dtype): does the compiled backend agree with the torch
    path? If not, warn once naming the error and use the torch path; ``strict`` raises instead."""
    key = (backend, str(device), dtype)
    if torch.compiler.is_compiling():  # a traced graph cannot run the check; eager calls run it
        return _first_contact.get(key, True) is True
    if key not in _first_contact:
        problem = check_against_torch(implementation or _compiled_implementation(backend), device, dtype)
        _first_contact[key] = True if problem is None else problem
        if problem is not None and not strict:
            warnings.warn(f'SKA backend {backend!r} failed its first check on {device} {dtype} ({problem}); '
                          'using the PyTorch path instead. Set LSNET_SKA_BACKEND=triton to make this an error.',
                          RuntimeWarning, stacklevel=3)
    result = _first_contact[key]
    if result is not True and strict:
        raise RuntimeError(f'SKA backend {backend!r} failed its check on {device} {dtype}: {result}')
    return result is True
