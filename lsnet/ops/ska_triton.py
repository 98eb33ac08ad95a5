"""Triton kernels for SKA (see ``ska.py`` for the definition), forward and fused backward.

The lanes of a program are consecutive (batch * kernel group, pixel) pairs, so small maps (7x7
classification stages) fill whole blocks and the one flat grid axis never meets CUDA's 65,535 limit
of the other axes. Each lane walks the C // G channels that share its group's kernels: the nine
per-pixel weights are read once per group, and the shifted reads of x / grad_out hit cache, so
every tensor crosses DRAM about once, which is the memory floor of the op. The backward computes grad_x and grad_w in one pass: grad_w reduces over
the channels of the group inside the program, with no atomics and no strided channel walks.
Accumulation is in fp32 for every input dtype.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .custom_op import define_ska_op

_CONFIGS = [triton.Config({'BLOCK_P': bp}, num_warps=nw)
            for bp, nw in ((64, 2), (128, 4), (256, 4), (512, 8))]


@triton.jit
def _lanes(H, W, HW, G, R, TOTAL, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    """The (batch * group, pixel) pairs of this program's lanes and the channel offsets of its tile."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    lane_mask = idx < TOTAL
    bg = idx // HW
    p = idx % HW
    b = bg // G
    g = bg % G
    r = tl.arange(0, BLOCK_R)
    r_mask = r < R
    channel_base = (b[None, :] * G * R + r[:, None] * G + g[None, :]) * HW  # channel c = r * G + g
    return lane_mask, bg, p, p // W, p % W, r_mask, channel_base


@triton.jit
def _ska_fwd_kernel(x_ptr, w_ptr, out_ptr, H, W, HW, G, R, TOTAL,
                    BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    lane_mask, bg, p, i, j, r_mask, channel_base = _lanes(H, W, HW, G, R, TOTAL, BLOCK_R, BLOCK_P)
    w_base = bg * 9 * HW + p
    acc = tl.zeros((BLOCK_R, BLOCK_P), dtype=tl.float32)
    for k in tl.static_range(9):
        ii = i + (k // 3 - 1)
        jj = j + (k % 3 - 1)
        valid = lane_mask & (ii >= 0) & (ii < H) & (jj >= 0) & (jj < W)
        xv = tl.load(x_ptr + channel_base + (ii * W + jj)[None, :],
                     mask=r_mask[:, None] & valid[None, :], other=0.0).to(tl.float32)
        wv = tl.load(w_ptr + w_base + k * HW, mask=lane_mask, other=0.0).to(tl.float32)
        acc += xv * wv[None, :]
    tl.store(out_ptr + channel_base + p[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=r_mask[:, None] & lane_mask[None, :])


@triton.jit
def _ska_bwd_kernel(go_ptr, x_ptr, w_ptr, gx_ptr, gw_ptr, H, W, HW, G, R, TOTAL,
                    BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    lane_mask, bg, p, i, j, r_mask, channel_base = _lanes(H, W, HW, G, R, TOTAL, BLOCK_R, BLOCK_P)
    w_plane = bg * 9 * HW
    tile_mask = r_mask[:, None] & lane_mask[None, :]
    go = tl.load(go_ptr + channel_base + p[None, :], mask=tile_mask, other=0.0).to(tl.float32)
    grad_x = tl.zeros((BLOCK_R, BLOCK_P), dtype=tl.float32)
    for k in tl.static_range(9):
        du = k // 3 - 1
        dv = k % 3 - 1
        # grad_w[k] at p: reduce go(p) * x(p + shift) over the channels of the group.
        ii = i + du
        jj = j + dv
        valid = lane_mask & (ii >= 0) & (ii < H) & (jj >= 0) & (jj < W)
        xv = tl.load(x_ptr + channel_base + (ii * W + jj)[None, :],
                     mask=r_mask[:, None] & valid[None, :], other=0.0).to(tl.float32)
        tl.store(gw_ptr + w_plane + k * HW + p, tl.sum(go * xv, axis=0).to(gw_ptr.dtype.element_ty),
                 mask=lane_mask)
        # grad_x at p gathers go * w[k] from the pixel p - shift that read x(p) through tap k.
        si = i - du
        sj = j - dv
        src_valid = lane_mask & (si >= 0) & (si < H) & (sj >= 0) & (sj < W)
        src = si * W + sj
        go_s = tl.load(go_ptr + channel_base + src[None, :],
                       mask=r_mask[:, None] & src_valid[None, :], other=0.0).to(tl.float32)
        w_s = tl.load(w_ptr + w_plane + k * HW + src, mask=src_valid, other=0.0).to(tl.float32)
        grad_x += go_s * w_s[None, :]
    tl.store(gx_ptr + channel_base + p[None, :], grad_x.to(gx_ptr.dtype.element_ty), mask=tile_mask)


# Triton's interpreter (TRITON_INTERPRET=1, used by the CPU tests) cannot benchmark configurations.
if os.environ.get('TRITON_INTERPRET') == '1':
    _forward_kernel, _backward_kernel = _ska_fwd_kernel, _ska_bwd_kernel
    _FIXED = {'BLOCK_P': 256}
else:
    _forward_kernel = triton.autotune(configs=_CONFIGS, key=['HW', 'R'])(_ska_fwd_kernel)
    _backward_kernel = triton.autotune(configs=_CONFIGS, key=['HW', 'R'])(_ska_bwd_kernel)
    _FIXED = {}


# CUDA's limit on the first grid axis; the smallest pixel block of any configuration sets the count.
MAX_PROGRAMS = 2 ** 31 - 1
_MIN_BLOCK_P = min(config.kwargs['BLOCK_P'] for config in _CONFIGS)


def _launch_args(x: torch.Tensor, w: torch.Tensor):
    b, c, h, wd = x.shape
    groups = w.shape[1]
    per_group = c // groups
    check_launch_shape(b, groups, h * wd)
    total = b * groups * h * wd

    def grid(meta):
        return (triton.cdiv(total, meta['BLOCK_P']),)
    return grid, (h, wd, h * wd, groups, per_group, total), triton.next_power_of_2(per_group)


def check_launch_shape(batch: int, groups: int, pixels: int) -> None:
    """A launch beyond the hardware's grid limit fails here, by name, not as a CUDA error."""
    programs = triton.cdiv(batch * groups * pixels, _MIN_BLOCK_P)
    if programs > MAX_PROGRAMS:
        raise ValueError(f'SKA Triton kernel: batch {batch} x {groups} groups x {pixels} pixels needs '
                         f'{programs} programs, beyond the GPU grid limit {MAX_PROGRAMS}; split the batch')


def _forward(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    x, w = x.contiguous(), w.contiguous()
    out = torch.empty_like(x)
    grid, dims, block_r = _launch_args(x, w)
    _forward_kernel[grid](x, w, out, *dims, BLOCK_R=block_r, **_FIXED)
    return out


def _backward(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor):
    grad_out, x, w = grad_out.contiguous(), x.contiguous(), w.contiguous()
    grad_x = torch.empty_like(x)
    grad_w = torch.empty_like(w)
    grid, dims, block_r = _launch_args(x, w)
    _backward_kernel[grid](grad_out, x, w, grad_x, grad_w, *dims, BLOCK_R=block_r, **_FIXED)
    return grad_x, grad_w


# torch.ops.lsnet.ska: SKA on CUDA through Triton (x and w of one dtype), with the fused backward.
ska_triton = define_ska_op('ska', _forward, _backward)
