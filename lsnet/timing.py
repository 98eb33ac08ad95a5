"""Timing helpers shared by the benchmark tool (``tools/benchmark.py``) and the GPU acceptance run
(``python -m lsnet.gpu_check``): synchronised wall-clock timing, CUDA-event timing, the copy bandwidth
that sets a kernel's memory floor, and the classifier training step both time. torch only."""
from __future__ import annotations

import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds_per_call(fn: Callable[[], object], device: torch.device, iters: int, warmup: int = 3) -> float:
    """Median seconds of ``iters`` synchronised calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def time_call(fn: Callable[[], object], device: torch.device, min_time: float, warmup: float,
              min_iters: int = 3) -> float:
    """Mean seconds per call: warm up for ``warmup`` s (none if 0), then over at least ``min_time`` s
    and ``min_iters`` calls."""
    start = time.perf_counter()
    while warmup > 0:
        fn()
        synchronize(device)
        if time.perf_counter() - start >= warmup:
            break
    iters, start = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - start < min_time:
        fn()
        iters += 1
        if iters % 5 == 0 or device.type != 'cuda':
            synchronize(device)
    synchronize(device)
    return (time.perf_counter() - start) / iters


def gpu_time_ms(fn: Callable[[], object], iters: int = 20, warmup: int = 3) -> float:
    """Milliseconds per call on the current CUDA stream, by CUDA events."""
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def copy_bandwidth(device: torch.device, numel: Optional[int] = None) -> float:
    """Bytes per second of a device-to-device copy (read + write) of ``numel`` float32 values (default:
    256 MiB on CUDA, 16 MiB elsewhere)."""
    numel = numel or (2 ** 26 if device.type == 'cuda' else 2 ** 22)
    src = torch.empty(numel, device=device)
    dst = torch.empty_like(src)
    if device.type == 'cuda':
        seconds = gpu_time_ms(lambda: dst.copy_(src)) / 1e3
    else:
        seconds = median_seconds_per_call(lambda: dst.copy_(src), device, iters=20)
    return 2 * src.numel() * src.element_size() / seconds


def classifier_train_step(model: torch.nn.Module, forward: Callable, x: torch.Tensor,
                          amp_dtype) -> Callable[[], None]:
    """One AdamW step of ``model`` on ``x`` with random ImageNet labels, under autocast in
    ``amp_dtype`` (loss scaling for fp16; None: fp32); ``forward`` may be a compiled ``model``."""
    device = x.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == 'cuda')
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    target = torch.randint(0, 1000, (x.shape[0],), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = F.cross_entropy(forward(x), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step
