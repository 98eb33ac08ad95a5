"""Acceptance check of a bare GPU machine: ``python -m lsnet.gpu_check [--out results.json]``.

Needs only torch, timm and triton. Measures and checks, in one run:

* SKA correctness: the Triton forward and both gradients against a float64 reference, fp32, fp16
  and bf16, on classification, detection, odd-sized and channels-last shapes, and at B * G beyond
  65,535 (LSNet-T at batch 2048);
* SKA time against its memory floor (bytes it must move / copy bandwidth measured in the same run);
* LSNet-T/S/B inference (batch 2048, fp16, fused) and a training step (batch 256, AMP), with timm's
  efficientvit_m4 measured beside them (ratios to it), and the peak memory of each.

Prints a JSON report (also written to ``--out``) and exits non-zero when any check fails.
``--device cpu --small`` runs the same code on CPU at toy sizes (the torch/compiled CPU SKA paths),
which is how the test suite keeps this script working.
"""
import argparse
import json
import sys
import time
from typing import Dict, List

import timm
import torch

from .deploy import deploy_model
from .ops.ska import resolve_backend, ska, ska_torch
from .timing import classifier_train_step, copy_bandwidth, median_seconds_per_call

TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}  # relative, vs float64
SKA_CASES = {  # name: (B, C, H, W), groups
    'classification': ((64, 128, 14, 14), 16),
    'detection': ((2, 64, 100, 168), 8),
    'odd': ((3, 40, 7, 9), 5),
    'channels_last': ((8, 256, 14, 14), 32),
    'grid_beyond_65535': ((2048, 256, 14, 14), 32),
}
SMALL_CASES = {'classification': ((4, 16, 7, 7), 2), 'odd': ((3, 40, 7, 9), 5),
               'channels_last': ((2, 32, 5, 6), 4), 'grid_beyond_65535': ((4100, 16, 1, 2), 16)}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).norm() / want.norm().clamp_min(1e-30)).item()


def check_ska(device: torch.device, cases: Dict, dtypes: List[torch.dtype]) -> List[dict]:
    results = []
    for name, (shape, groups) in cases.items():
        for dtype in dtypes:
            generator = torch.Generator().manual_seed(0)
            b, c, h, w = shape
            x = torch.randn(shape, generator=generator).to(device, dtype)
            k = torch.randn(b, groups, 9, h, w, generator=generator).to(device, dtype)
            if name == 'channels_last':
                x = x.to(memory_format=torch.channels_last)
            x.requires_grad_()
            k.requires_grad_()
            record = dict(case=name, shape=list(shape), groups=groups, dtype=str(dtype).split('.')[-1],
                          backend=resolve_backend(x, k))
            try:
                out = ska(x, k)
                grad_out = torch.randn(out.shape, generator=generator).to(device, dtype)
                grads = torch.autograd.grad(out, (x, k), grad_out)
                x64 = x.detach().double().requires_grad_()
                k64 = k.detach().double().requires_grad_()
                ref = ska_torch(x64, k64)
                ref_grads = torch.autograd.grad(ref, (x64, k64), grad_out.double())
                errors = [relative_error(a, b) for a, b in zip((out, *grads), (ref, *ref_grads))]
                record.update(forward_rel_err=errors[0], grad_x_rel_err=errors[1], grad_w_rel_err=errors[2],
                              ok=all(e <= TOLERANCE[dtype] for e in errors))
            except Exception as err:  # report every failure in the JSON, then fail the run
                record.update(ok=False, error=f'{type(err).__name__}: {err}')
            results.append(record)
            del x, k
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    return results


def time_ska(device: torch.device, cases: Dict, dtypes: List[torch.dtype], iters: int) -> List[dict]:
    bandwidth = copy_bandwidth(device, 64 * 2 ** 20 if device.type == 'cuda' else 2 ** 22)
    rows = []
    for name, (shape, groups) in cases.items():
        if name == 'grid_beyond_65535':
            continue
        for dtype in dtypes:
            b, c, h, w = shape
            x = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
            k = torch.randn(b, groups, 9, h, w, device=device, dtype=dtype, requires_grad=True)
            grad_out = torch.randn_like(x)
            size = dtype.itemsize
            forward_bytes = (2 * x.numel() + k.numel()) * size  # read x and w, write out
            backward_bytes = (3 * x.numel() + 2 * k.numel()) * size  # read go, x, w; write gx, gw
            with torch.no_grad():
                forward = median_seconds_per_call(lambda: ska(x, k), device, iters)
            both = median_seconds_per_call(lambda: torch.autograd.grad(ska(x, k), (x, k), grad_out), device, iters)
            rows.append(dict(case=name, shape=list(shape), dtype=str(dtype).split('.')[-1],
                             forward_ms=forward * 1e3, forward_backward_ms=both * 1e3,
                             forward_vs_floor=forward / (forward_bytes / bandwidth),
                             forward_backward_vs_floor=both / ((forward_bytes + backward_bytes) / bandwidth)))
    return rows


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else float('nan')


def time_models(device: torch.device, names: List[str], batch: int, train_batch: int, iters: int,
                img_size: int, warmup: int) -> List[dict]:
    amp_dtype = torch.float16 if device.type == 'cuda' else None  # fp32 on CPU
    rows = []
    for name in names:
        row = dict(model=name)
        try:
            model = deploy_model(timm.create_model(name), compile=False).to(device)
            x = torch.randn(batch, 3, img_size, img_size, device=device)
            if device.type == 'cuda':
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)

            def infer():
                with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    model(x)
            seconds = median_seconds_per_call(infer, device, iters, warmup)
            row.update(infer_batch=batch, infer_img_s=batch / seconds, infer_peak_gib=peak_gib(device))
            del model, x
            model = timm.create_model(name).to(device).train()
            x = torch.randn(train_batch, 3, img_size, img_size, device=device)
            if device.type == 'cuda':
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            train_step = classifier_train_step(model, model, x, amp_dtype)
            seconds = median_seconds_per_call(train_step, device, iters, warmup)
            row.update(train_batch=train_batch, train_img_s=train_batch / seconds, train_peak_gib=peak_gib(device),
                       ok=True)
            del model, x, train_step
        except Exception as err:
            row.update(ok=False, error=f'{type(err).__name__}: {err}')
        rows.append(row)
    baseline = next((r for r in rows if r['model'] == 'efficientvit_m4' and r.get('ok')), None)
    for row in rows:
        if baseline and row.get('ok'):
            row['infer_vs_efficientvit_m4'] = row['infer_img_s'] / baseline['infer_img_s']
            row['train_vs_efficientvit_m4'] = row['train_img_s'] / baseline['train_img_s']
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--small', action='store_true', help='toy sizes (a smoke run of this script)')
    parser.add_argument('--out', help='also write the JSON report here')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        print(json.dumps(dict(ok=False, error='no CUDA device visible')))
        return 2
    start = time.perf_counter()
    cases = SMALL_CASES if args.small else SKA_CASES
    dtypes = [torch.float32] if device.type == 'cpu' else [torch.float32, torch.float16, torch.bfloat16]
    report = dict(device=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
                  torch=torch.__version__, timm=timm.__version__)
    try:
        import triton
        report['triton'] = triton.__version__
    except ImportError:
        report['triton'] = None
    report['ska_correctness'] = check_ska(device, cases, dtypes)
    report['ska_speed'] = time_ska(device, cases, dtypes[:2], iters=2 if args.small else 50)
    names = ['lsnet_t', 'efficientvit_m4'] if args.small else ['lsnet_t', 'lsnet_s', 'lsnet_b', 'efficientvit_m4']
    report['models'] = time_models(device, names, batch=2 if args.small else 2048,
                                   train_batch=2 if args.small else 256, iters=1 if args.small else 20,
                                   img_size=224, warmup=1 if args.small else 3)
    failures = [r for r in report['ska_correctness'] + report['models'] if not r.get('ok')]
    report['ok'] = not failures
    report['failures'] = len(failures)
    report['seconds'] = time.perf_counter() - start
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
