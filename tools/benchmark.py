"""Throughput, memory and SKA-kernel benchmarks, printed as tables with ratios to a baseline.

Detectors and segmentors from configs: inference at the papers' sizes (1333x800 COCO, 512x512
ADE20K) and a training step (forward + backward + optimizer) on synthetic targets, with peak memory:
    python tools/benchmark.py dense --configs configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py [--batch 2]
The same whole networks on the deploy paths, batch-1 latency at 1333x800 (padded to 1344x800) and
512x512, each beside a baseline detector/segmentor of its task on the same path:
    python tools/benchmark.py dense-deploy --configs configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py \
        configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py --paths eager onnxruntime \
        --baseline-configs configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py
Models (ours or any timm name), the LSNet paper's method: 224x224, Conv-BN fused, warm-up, then
img/s in interleaved rounds (median, spread, peak memory: allocated on GPU, resident set on CPU);
GPU: batch 2048 with fp16 autocast; CPU: batch 16, fp32. ``--paths`` adds the deployment forms:
``deploy`` (``lsnet.deploy_model``: fused, compiled, frozen), ``onnxruntime`` (exported, CPU),
``openvino`` (the graph exported for OpenVINO, CPU, fp32) and their ``-int8`` forms (quantized as
``tools/deploy.py --int8`` does, by the runtime's own quantizer); inference rows add the
batch-1 latency (median, p90); every ratio compares a row with ``--baseline`` on the same path:
    python tools/benchmark.py models --models lsnet_t efficientvit_m4 --paths eager deploy onnxruntime \
        --baseline efficientvit_m4
A training step (forward + backward + AdamW; batch 256 on GPU, 32 on CPU); ``<name>:released`` is
LSNet as the released code runs it: its unfold SKA (restated in plain PyTorch), and the input's
memory layout throughout (NCHW unless --channels-last), the baseline to beat:
    python tools/benchmark.py models --mode train --models lsnet_t lsnet_t:released efficientvit_m4
Activation checkpointing (the backbones' ``with_cp``): the memory autograd saves for the backward
pass, and the step time, with it off and on:
    python tools/benchmark.py checkpointing --configs configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py
What --check-data adds to loading a COCO-sized annotation file (generated), against mmdet's load:
    python tools/benchmark.py datacheck [--images 118287 --boxes 860001]
SKA kernel against its memory floor (bytes moved / copy bandwidth measured in the same run), and,
on CPU, against a depth-wise 3x3 convolution of the same shape, forward and forward + backward:
    python tools/benchmark.py ska [--dtypes fp32 fp16]
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os.path as osp
import statistics
import sys
import time
from typing import Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lsnet.cli import run_cli  # noqa: E402
import lsnet  # noqa: E402,F401
from lsnet.timing import classifier_train_step, copy_bandwidth, gpu_time_ms, synchronize, time_call  # noqa: E402
from lsnet.deploy import deploy_model, export_onnx  # noqa: E402
from lsnet.models.lsnet import LSConv  # noqa: E402
from lsnet.ops.ska import ska, ska_backend, ska_torch  # noqa: E402

SKA_SHAPES = [(256, 128, 14, 14), (256, 128, 28, 28), (256, 384, 14, 14), (2, 64, 100, 168), (2, 128, 50, 84),
              (16, 128, 64, 64)]
CPU_SKA_SHAPES = [(16, 128, 14, 14), (16, 64, 28, 28), (2, 64, 100, 168)]
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


# "<name>:<variant>" rows of the models table: the SKA backend the variant runs.
SKA_VARIANTS = {'released': 'unfold'}


def _proc_status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))


class PeakMemory:
    """Peak memory a block needs: allocated GiB on CUDA; on Linux CPUs the growth of the process's
    resident set, from its size before the block (after returning freed heap pages to the system)
    to its peak during the block (VmHWM, reset through /proc/self/clear_refs); NaN elsewhere."""

    def __init__(self, device: torch.device):
        self.device, self.gib, self._before_kib = device, float('nan'), None

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        try:
            import ctypes
            ctypes.CDLL('libc.so.6').malloc_trim(0)
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # the peak resident set restarts from the current one
            self._before_kib = _proc_status_kib('VmRSS')
        except (OSError, AttributeError, StopIteration):
            self._before_kib = None
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            self.gib = torch.cuda.max_memory_allocated(self.device) / 2 ** 30
        elif self._before_kib is not None:
            self.gib = (_proc_status_kib('VmHWM') - self._before_kib) / 2 ** 20


# The paths that time an exported model: (its runtime's file suffix, INT8)
EXPORTED_PATHS = {'onnxruntime': ('.onnx', False), 'onnxruntime-int8': ('.onnx', True),
                  'openvino': ('.xml', False), 'openvino-int8': ('.xml', True)}
PATHS = ['eager', 'deploy', *EXPORTED_PATHS]


def exported_file(path: str, stem: str, export: Callable[[str], str], image_shape: tuple, calibration_runs: int) -> str:
    """The model file a row of an exported ``path`` runs: ``export(file)`` writes it (``stem`` plus the
    runtime's suffix); an ``-int8`` path quantizes it as ``tools/deploy.py --int8`` does
    (``lsnet.deploy.quantize_int8``), calibrated on seeded random images of ``image_shape`` (the
    ranges, not the data, decide the speed)."""
    import numpy as np

    from lsnet.deploy import int8_path, quantize_int8
    suffix, int8 = EXPORTED_PATHS[path]
    file = export(stem + suffix)
    if int8:
        generator = np.random.default_rng(0)
        feeds = [{'images': generator.standard_normal(image_shape, dtype=np.float32)} for _ in range(calibration_runs)]
        file = quantize_int8(file, int8_path(file), feeds)
    return file


def exported_calls(model: torch.nn.Module, inputs: tuple, path: str, stem: str) -> list:
    """Export ``model`` (fused, dynamic shapes) once for ``path``'s runtime (:data:`EXPORTED_PATHS`) and
    run it there on the CPU, one call per input."""
    from lsnet.deploy import runtime_session
    file = exported_file(path, stem, lambda f: export_onnx(model, f, input_size=tuple(inputs[0].shape[2:])),
                         (1, *inputs[0].shape[1:]), calibration_runs=8)
    session = runtime_session(file)

    def call(feed: dict):
        return lambda: session.run(None, feed)
    return [call({'images': x.cpu().numpy()}) for x in inputs]


def model_steps(name: str, path: str, args: argparse.Namespace, device: torch.device, inputs: tuple,
                amp_dtype, stem: str) -> list:
    """The calls that one row of the models table times, one per input, all on one built model (a
    training step only takes the first input); an exported path writes its files as ``stem`` + suffix."""
    arch, _, variant = name.partition(':')
    model = timm.create_model(arch, num_classes=1000).to(device)
    if variant:  # the swapped SKA must stay in place while this model runs
        model = VariantModel(model, variant)
    if args.mode == 'train':
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        fwd = torch.compile(model) if args.compile else model
        return [classifier_train_step(model.train(), fwd, inputs[0], amp_dtype)]
    if path in EXPORTED_PATHS:
        return exported_calls(model, inputs, path, stem)
    if path == 'deploy':  # a frozen graph runs in one dtype: the model is cast instead of autocast
        fwd = deploy_model(model.to(amp_dtype) if amp_dtype else model)

        def deployed_step(x):
            x = x.to(amp_dtype) if amp_dtype else x

            def step():
                with torch.inference_mode():
                    fwd(x)
            return step
        return [deployed_step(x) for x in inputs]
    fwd = build_eager(model, args)

    def eager_step(x):
        def step():
            with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                fwd(x)
        return step
    return [eager_step(x) for x in inputs]


class VariantModel(torch.nn.Module):
    """Runs the wrapped model with the SKA backend of its variant (``:released``: the released code's
    unfold SKA, ``lsnet.ops.ska.ska_unfold``), in the input's memory layout as the released code does
    (no channels-last on CPU unless the input has it)."""

    def __init__(self, model: torch.nn.Module, variant: str):
        super().__init__()
        if variant not in SKA_VARIANTS:
            raise SystemExit(f'unknown model variant {variant!r}: valid "<name>:{"|".join(SKA_VARIANTS)}"')
        if not any(isinstance(module, LSConv) for module in model.modules()):
            raise SystemExit(f'":{variant}" swaps the SKA of LSNet models; {type(model).__name__} has none')
        model.cpu_channels_last = False
        self.model, self.variant = model, variant

    def forward(self, x):
        with ska_backend(SKA_VARIANTS[self.variant]):
            return self.model(x)


def build_eager(model: torch.nn.Module, args: argparse.Namespace) -> Callable:
    model = deploy_model(model, compile=False)  # fused, on the model's device and dtype
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        return torch.compile(model, mode='max-autotune' if args.cuda_graph else None)
    return model


def latency_ms(step: Callable[[], object], device: torch.device, seconds: float) -> list[float]:
    """Milliseconds of each single call made within ``seconds`` (at least 5 calls)."""
    times = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_models(args: argparse.Namespace, device: torch.device) -> None:
    """Every (model, path) in interleaved rounds: median img/s over the rounds, their spread, peak memory,
    and for inference the batch-1 latency (median and p90 over every call of every round). Ratios
    compare each row with the baseline model on the same path."""
    import tempfile
    default_batch = {('infer', 'cuda'): 2048, ('infer', 'cpu'): 16, ('train', 'cuda'): 256, ('train', 'cpu'): 32}
    batch = args.batch or default_batch[args.mode, device.type]
    amp_dtype = DTYPES[args.amp] if args.amp != 'none' else None
    if args.mode == 'train' and args.paths != ['eager']:
        raise SystemExit('--paths is for inference; a training step runs eager (add --compile to compile it)')
    paths = args.paths
    if any(p in EXPORTED_PATHS for p in paths) and (device.type != 'cpu' or amp_dtype is not None):
        raise SystemExit(f'--paths {"/".join(EXPORTED_PATHS)} measure the exported graph on the CPU: use --device '
                         'cpu, no --amp')
    if args.baseline is not None and args.baseline not in args.models:
        raise SystemExit(f'--baseline {args.baseline!r} must be one of --models {args.models}: each row is '
                         'compared with the baseline model on its own path')
    with_latency = args.mode == 'infer' and not args.no_latency
    x = torch.randn(batch, 3, args.img_size, args.img_size, device=device)
    x1 = x[:1].clone()
    if args.channels_last:
        x = x.to(memory_format=torch.channels_last)
        x1 = x1.to(memory_format=torch.channels_last)
    plan = [(name, path, name if path == 'eager' else f'{name} ({path})') for name in args.models for path in paths]
    entries, single, first_run_peaks = {}, {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name, path, label in plan:
            # batch-1 latency runs the same model (a compiled one compiles this shape too)
            steps = model_steps(name, path, args, device, (x, x1) if with_latency else (x,), amp_dtype,
                                osp.join(folder, f'row{len(entries)}'))
            step = steps[0]
            started = time.perf_counter()
            with PeakMemory(device) as first_run:
                time_call(step, device, 0.0, args.warmup, min_iters=1)  # compiles, if it compiles
            if with_latency:
                single[label] = steps[1]
                time_call(single[label], device, 0.0, args.warmup, min_iters=1)
            print(f'  {label}: ready ({time.perf_counter() - started:.1f} s warm-up)', flush=True)
            entries[label] = step
            if path in EXPORTED_PATHS:  # a runtime's memory arena keeps what the first run took, so count that
                first_run_peaks[label] = first_run.gib
        speeds = {label: [] for label in entries}
        latencies = {label: [] for label in single}
        peaks = dict.fromkeys(entries, float('nan'))
        for round_index in range(args.rounds):
            for label, step in entries.items():
                step()  # untimed: the first call after another row's runs on caches that row filled
                synchronize(device)  # and none of its GPU work runs into the timed calls
                with PeakMemory(device) as peak:
                    seconds = time_call(step, device, args.min_time / args.rounds, 0.0, min_iters=1)
                speeds[label].append(batch / seconds)
                peaks[label] = peak.gib if round_index == 0 else max(peaks[label], peak.gib)
                if label in single:
                    single[label]()
                    latencies[label] += latency_ms(single[label], device, args.min_time / args.rounds / 2)
    peaks.update(first_run_peaks)
    base_model = args.baseline or args.models[0]
    base_label = {path: label for name, path, label in plan if name == base_model}
    row_path = {label: path for _, path, label in plan}
    print(f'\n{args.mode}, batch {batch}, {args.img_size}px, amp={args.amp}, compile={args.compile}, '
          f'channels_last={args.channels_last}, {torch.get_num_threads()} threads, '
          f'device={torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}; '
          f'median of {args.rounds} interleaved rounds; ratios: to {base_model} on the same path')
    memory = 'peak GiB allocated' if device.type == 'cuda' else 'peak RSS growth GiB'
    if any(p in EXPORTED_PATHS for p in paths):
        memory += ' (exported paths: first run)'
    latency_head = ' batch-1 ms median | p90 | latency ratio |' if with_latency else ''
    print(f'| model | path | img/s | spread (min-max) | {memory} | ratio to {base_model} |{latency_head}')
    print('|---|---|---|---|---|---|' + ('---|---|---|' if with_latency else ''))
    for label, values in speeds.items():
        path = row_path[label]
        median = statistics.median(values)
        base = statistics.median(speeds[base_label[path]])
        row = (f'| {label.split(" (")[0]} | {path} | {median:.1f} | {min(values):.1f}-{max(values):.1f} | '
               f'{peaks[label]:.2f} | {median / base:.2f} |')
        if with_latency:
            ms = statistics.median(latencies[label])
            base_ms = statistics.median(latencies[base_label[path]])
            row += f' {ms:.2f} | {percentile(latencies[label], 0.9):.2f} | {base_ms / ms:.2f} |'
        print(row)


def bench_ska_gpu(args: argparse.Namespace, device: torch.device) -> None:
    bandwidth = copy_bandwidth(device)
    print(f'copy bandwidth: {bandwidth / 1e12:.2f} TB/s ({torch.cuda.get_device_name(device)})')
    print('| shape B,C,H,W | dtype | fwd ms | fwd floor ms | fwd / floor | fwd+bwd ms | fwd+bwd floor ms | '
          'fwd+bwd / floor | torch-path fwd ms |\n|---|---|---|---|---|---|---|---|---|')
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        for b, c, h, w in SKA_SHAPES:
            x = torch.randn(b, c, h, w, device=device, dtype=dtype, requires_grad=True)
            wt = torch.randn(b, c // 8, 9, h, w, device=device, dtype=dtype, requires_grad=True)
            go = torch.randn_like(x)
            size = dtype.itemsize
            fwd_bytes = (2 * x.numel() + wt.numel()) * size
            bwd_bytes = (3 * x.numel() + 2 * wt.numel()) * size  # grad_out, x, w -> grad_x, grad_w
            with ska_backend('triton'):
                fwd = gpu_time_ms(lambda: ska(x, wt))
                both = gpu_time_ms(lambda: torch.autograd.backward(ska(x, wt), go, inputs=[x, wt]))
            with torch.no_grad():
                plain = gpu_time_ms(lambda: ska_torch(x, wt))
            fwd_floor = fwd_bytes / bandwidth * 1e3
            both_floor = (fwd_bytes + bwd_bytes) / bandwidth * 1e3
            print(f'| {b},{c},{h},{w} | {dtype_name} | {fwd:.3f} | {fwd_floor:.3f} | {fwd / fwd_floor:.2f} | '
                  f'{both:.3f} | {both_floor:.3f} | {both / both_floor:.2f} | {plain:.3f} |', flush=True)


def bench_ska_cpu(args: argparse.Namespace) -> None:
    """Compiled SKA against a depth-wise 3x3 convolution of the same shape, forward and forward +
    backward (the convolution's own backward, weight gradient included), in interleaved rounds."""
    print(f'CPU, {torch.get_num_threads()} threads: SKA (compiled kernel; plain torch path) against a depth-wise '
          f'3x3 convolution of the same shape; median ms of {args.rounds} interleaved rounds, ratio spread min-max')
    print('| shape B,C,H,W | SKA fwd ms | conv fwd ms | fwd: SKA / conv | SKA fwd+bwd ms | conv fwd+bwd ms | '
          'fwd+bwd: SKA / conv | torch-path fwd / conv |\n|---|---|---|---|---|---|---|---|')
    device = torch.device('cpu')
    for b, c, h, w in CPU_SKA_SHAPES:
        x = torch.randn(b, c, h, w, requires_grad=True)
        wt = torch.randn(b, c // 8, 9, h, w, requires_grad=True)
        kernel = torch.randn(c, 1, 3, 3, requires_grad=True)
        grad = torch.randn(b, c, h, w)

        def compiled():
            with ska_backend('cpp'):
                return ska(x, wt)

        def conv():
            return F.conv2d(x, kernel, padding=1, groups=c)

        def forward_only(fn):
            def call():
                with torch.no_grad():
                    fn()
            return call

        def forward_backward(fn, inputs):
            return lambda: torch.autograd.backward(fn(), grad, inputs=inputs)

        calls = {'ska': forward_only(compiled), 'conv': forward_only(conv), 'torch': forward_only(lambda: ska_torch(x, wt)),
                 'ska_fb': forward_backward(compiled, [x, wt]), 'conv_fb': forward_backward(conv, [x, kernel])}
        times = {name: [] for name in calls}
        for name, fn in calls.items():
            time_call(fn, device, 0.0, args.warmup)
        for _ in range(args.rounds):
            for name, fn in calls.items():
                times[name].append(time_call(fn, device, args.min_time / args.rounds, 0.0))
        median = {name: statistics.median(values) * 1e3 for name, values in times.items()}

        def ratio(num: str, den: str) -> str:
            per_round = [a / b for a, b in zip(times[num], times[den])]
            return f'{median[num] / median[den]:.2f} ({min(per_round):.2f}-{max(per_round):.2f})'
        print(f'| {b},{c},{h},{w} | {median["ska"]:.2f} | {median["conv"]:.2f} | {ratio("ska", "conv")} | '
              f'{median["ska_fb"]:.2f} | {median["conv_fb"]:.2f} | {ratio("ska_fb", "conv_fb")} | '
              f'{ratio("torch", "conv")} |', flush=True)


def _dense_inputs(model, scope: str, batch: int, size: tuple[int, int], num_classes: int, device):
    """Packed synthetic inputs (images and targets) that the model's data preprocessor accepts."""
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        packed = demo_mm_inputs(batch, [(3, *size)] * batch, num_items=[5] * batch, num_classes=num_classes,
                                with_mask=hasattr(model, 'roi_head') and getattr(model.roi_head, 'with_mask', False))
        return packed
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        sample.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 255, (3, *size), dtype=torch.uint8) for _ in range(batch)],
                data_samples=samples)


def bench_dense(args: argparse.Namespace, device: torch.device) -> None:
    from mmengine.optim import build_optim_wrapper
    from lsnet.mm.build import PAPER_INPUT_SIZES, build_model_from_config
    rows = []
    for path in args.configs:
        model, cfg = build_model_from_config(path, pretrained=False, device=device)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        scope = cfg.default_scope
        size = PAPER_INPUT_SIZES[scope]
        head = (cfg.model.get('bbox_head') or cfg.model.roi_head.bbox_head) if scope == 'mmdet' else cfg.model.decode_head
        size = tuple(int(round(v * args.dense_scale / 32)) * 32 for v in size)
        batch = args.batch or 2
        amp_dtype = DTYPES[args.amp] if args.amp != 'none' else None
        model.eval()
        x = torch.randn(1, 3, *size, device=device)

        def infer():
            with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                model(x, mode='tensor')
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        infer_s = time_call(infer, device, args.min_time, args.warmup)
        infer_mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else float('nan')
        train_size = tuple(int(round(512 * args.dense_scale / 32)) * 32 for _ in range(2)) if scope == 'mmseg' else size
        packed = _dense_inputs(model, scope, batch, train_size, head.num_classes, device)
        model.train()

        def train_step():
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                data = model.data_preprocessor(packed, True)
                losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            optim.update_params(loss)
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        train_s = time_call(train_step, device, args.min_time, args.warmup)
        train_mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else float('nan')
        rows.append((path.split('/')[-1][:-3], infer_s, infer_mem, batch / train_s, train_mem, train_size))
        print(f'  {rows[-1][0]}: {1 / infer_s:.2f} img/s inference, {batch / train_s:.2f} img/s training', flush=True)
    print(f'\nbatch {args.batch or 2} for training, amp={args.amp}, device={device}')
    print('| config | inference img/s | inference peak GiB | train img/s (crop) | train peak GiB |\n|---|---|---|---|---|')
    for name, infer_s, infer_mem, train_speed, train_mem, train_size in rows:
        print(f'| {name} | {1 / infer_s:.2f} | {infer_mem:.2f} | {train_speed:.2f} ({train_size[1]}x{train_size[0]}) | '
              f'{train_mem:.2f} |')


def deploy_input_size(scope: str, scale: float) -> tuple:
    """The papers' input size of ``scope`` scaled by ``scale`` and padded to a multiple of 32, as the
    detectors' data preprocessor pads (1333x800 -> 1344x800)."""
    from lsnet.mm.build import PAPER_INPUT_SIZES
    return tuple(max(1, math.ceil(v * scale / 32)) * 32 for v in PAPER_INPUT_SIZES[scope])


def dense_network_step(config: str, path: str, args: argparse.Namespace, stem: str) -> Callable:
    """One batch-1 call of ``config``'s whole network on ``path``, as ``tools/deploy.py`` exports it:
    backbone (deploy form) + neck + head, the segmentor's resize and argmax included, the detector's
    box decoding and NMS (mmdet's Python code, the same on every path) not."""
    from lsnet.deploy import runtime_session
    from lsnet.mm.build import build_model_from_config
    from lsnet.mm.onnx_model import deploy_network, export_whole_model, network_inputs, task_export_for
    model, cfg = build_model_from_config(config, pretrained=False)
    model.eval()
    task = task_export_for(model)
    if task.extra_inputs(model):
        raise SystemExit(f'{config}: a two-stage detector\'s RoI heads run on as many RoIs as the RPN proposes; '
                         'the deploy rows time single-stage detectors and segmentors')
    size = deploy_input_size(cfg.default_scope, args.dense_scale)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    if path in EXPORTED_PATHS:
        file = exported_file(path, stem, lambda f: export_whole_model(model, f, size), (1, 3, *size),
                             calibration_runs=2)
        session = runtime_session(file)
        feed = {name: value.numpy() for name, value in network_inputs(task, model, x).items()}
        return lambda: session.run(None, feed)
    network = deploy_network(model)
    if path == 'deploy':
        network = deploy_model(network)

    def step():
        with torch.inference_mode():
            network(x)
    return step


def bench_dense_deploy(args: argparse.Namespace) -> None:
    """Whole detectors and segmentors at the papers' input sizes on the deploy paths, batch 1 on the CPU:
    every (config, path) in interleaved rounds, latency median and p90 over every call; each row's ratio
    is the --baseline config of its task (mmdet or mmseg) on the same path, its latency over the row's."""
    import tempfile

    from mmengine.config import Config
    scopes = {config: Config.fromfile(config).get('default_scope', 'mmengine') for config in args.configs}
    baselines = {}
    for config in args.baseline_configs or []:
        if config not in scopes:
            raise SystemExit(f'--baseline-configs {config} must be one of --configs: each row is compared with '
                             'the baseline of its task on its own path')
        baselines[scopes[config]] = config
    plan = [(config, path) for config in args.configs for path in args.paths]
    latencies = {entry: [] for entry in plan}
    with tempfile.TemporaryDirectory() as folder:
        steps = {}
        for index, (config, path) in enumerate(plan):
            started = time.perf_counter()
            steps[config, path] = dense_network_step(config, path, args, osp.join(folder, f'row{index}'))
            time_call(steps[config, path], torch.device('cpu'), 0.0, args.warmup, min_iters=1)
            print(f'  {config} ({path}): ready ({time.perf_counter() - started:.1f} s)', flush=True)
        for _ in range(args.rounds):
            for entry, step in steps.items():
                step()  # untimed: the first call after another row's
                latencies[entry] += latency_ms(step, torch.device('cpu'), args.min_time / args.rounds)
    print(f'\nwhole networks, batch 1, fp32 (INT8 for the -int8 paths), CPU, {torch.get_num_threads()} threads; '
          f'median of every call in {args.rounds} interleaved rounds; ratio: the baseline\'s latency over the row\'s, '
          'same task, same path')
    print('| config | input | path | ms median | p90 | ratio to baseline |\n|---|---|---|---|---|---|')
    for (config, path), values in latencies.items():
        size = deploy_input_size(scopes[config], args.dense_scale)
        base = baselines.get(scopes[config])
        ratio = (f'{statistics.median(latencies[base, path]) / statistics.median(values):.2f}' if base else '-')
        print(f'| {osp.basename(config)[:-3]} | {size[1]}x{size[0]} | {path} | {statistics.median(values):.1f} | '
              f'{percentile(values, 0.9):.1f} | {ratio} |')


class SavedActivations:
    """Bytes of the tensors autograd saves for the backward pass (distinct storages), the memory
    that activation checkpointing trades for recomputation; counted, so the same on every machine."""

    def __init__(self):
        self.storages: dict = {}

    def __enter__(self):
        def pack(tensor):
            storage = tensor.untyped_storage()
            self.storages[storage.data_ptr()] = storage.nbytes()
            return tensor
        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)

    @property
    def gib(self) -> float:
        return sum(self.storages.values()) / 2 ** 30


def bench_checkpointing(args: argparse.Namespace, device: torch.device) -> None:
    """Training step of each config with the backbone's ``with_cp`` off and on, side by side."""
    from lsnet.mm.build import PAPER_INPUT_SIZES, build_model_from_config
    rows = []
    for path in args.configs:
        batch = args.batch or 2
        results = {}
        for with_cp in (False, True):
            torch.manual_seed(0)
            model, cfg = build_model_from_config(path, {'model.backbone.with_cp': with_cp}, pretrained=False,
                                                 device=device)
            model.train()
            scope = cfg.default_scope
            head = cfg.model.get('bbox_head') or (cfg.model.roi_head.bbox_head if scope == 'mmdet'
                                                  else cfg.model.decode_head)
            size = tuple(int(round(v * args.dense_scale / 32)) * 32 for v in PAPER_INPUT_SIZES[scope])
            packed = _dense_inputs(model, scope, batch, size, head.num_classes, device)

            def train_step(count: bool = False):
                saved = SavedActivations()
                with saved if count else contextlib.nullcontext():
                    data = model.data_preprocessor(packed, True)
                    loss, _ = model.parse_losses(model(**data, mode='loss'))
                loss.backward()
                model.zero_grad(set_to_none=True)
                return saved
            saved = train_step(count=True)
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            seconds = time_call(train_step, device, args.min_time, args.warmup)
            peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else float('nan')
            results[with_cp] = (saved.gib, peak, seconds)
            del model
        name = path.split('/')[-1][:-3]
        rows.append((name, size, results))
        print(f'  {name}: saved activations {results[False][0]:.3f} -> {results[True][0]:.3f} GiB', flush=True)
    print(f'\ntraining step (forward + backward), batch {args.batch or 2}, device={device}')
    print('| config | input | saved activations GiB: plain / with_cp (ratio) | peak GiB plain / with_cp | '
          'step time with_cp / plain |\n|---|---|---|---|---|')
    for name, size, results in rows:
        (plain_saved, plain_peak, plain_s), (cp_saved, cp_peak, cp_s) = results[False], results[True]
        peaks = f'{plain_peak:.2f} / {cp_peak:.2f}' if device.type == 'cuda' else '- (GPU only)'
        print(f'| {name} | {size[1]}x{size[0]} | {plain_saved:.3f} / {cp_saved:.3f} ({cp_saved / plain_saved:.2f}) | '
              f'{peaks} | {cp_s / plain_s:.2f} |')


def bench_datacheck(args: argparse.Namespace) -> None:
    """What ``--check-data`` adds to loading a COCO-sized annotation file, against mmdet's own load."""
    import json
    import random
    import tempfile
    from mmdet.datasets import CocoDataset
    from lsnet.detection.datacheck import recording_coco_api, coco_problems
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'instances.json')
        images = [dict(id=i, file_name=f'{i:012d}.jpg', width=640, height=480) for i in range(args.images)]
        annotations = []
        for k in range(args.boxes):
            w, h = rng.uniform(2, 200), rng.uniform(2, 200)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            annotations.append(dict(id=k, image_id=rng.randrange(args.images), category_id=rng.randint(1, 80),
                                    bbox=[x, y, w, h], area=w * h, iscrowd=0, segmentation=[]))
        categories = [dict(id=c, name=f'class{c}') for c in range(1, 81)]
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        del images, annotations
        classes = tuple(c['name'] for c in categories)
        rows = []
        for _ in range(args.rounds):
            dataset = CocoDataset(ann_file=path, data_prefix=dict(img=folder), metainfo=dict(classes=classes),
                                  pipeline=[], lazy_init=True)
            loaded: list = []
            dataset.COCOAPI = recording_coco_api(CocoDataset.COCOAPI, loaded)
            start = time.perf_counter()
            dataset.full_init()  # mmdet's load, the structure checks included
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            coco_problems(loaded[0].dataset, path, list(classes))
            for index in range(len(dataset)):
                osp.isfile(dataset.get_data_info(index)['img_path'])  # the per-image existence check
            check_s = time.perf_counter() - start
            rows.append((load_s, check_s))
            del dataset, loaded
    load_s = sorted(r[0] for r in rows)[len(rows) // 2]
    check_s = sorted(r[1] for r in rows)[len(rows) // 2]
    print(f'\nCOCO-sized annotation file: {args.images} images, {args.boxes} boxes; median of {args.rounds} rounds')
    print('| mmdet load s | --check-data extra s | extra / load |\n|---|---|---|')
    print(f'| {load_s:.2f} | {check_s:.2f} | {check_s / load_s:.3f} |')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('what', choices=['models', 'ska', 'dense', 'dense-deploy', 'checkpointing', 'datacheck'])
    parser.add_argument('--configs', nargs='+', default=['configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py'])
    parser.add_argument('--models', nargs='+', default=['lsnet_t', 'lsnet_s', 'lsnet_b'])
    parser.add_argument('--baseline', default=None, help='model whose img/s is the ratios\' denominator')
    parser.add_argument('--baseline-configs', nargs='+', default=None,
                        help='dense-deploy: per task (mmdet, mmseg), the config whose latency the ratios divide')
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer')
    parser.add_argument('--no-latency', action='store_true', help='models: skip the batch-1 latency columns')
    parser.add_argument('--paths', nargs='+', default=['eager'],
                        choices=PATHS, help='inference forms: eager (fused), deploy (lsnet.deploy_model), onnxruntime '
                        'and openvino (exported, CPU), -int8 (quantized by the runtime\'s quantizer)')
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default=None)
    parser.add_argument('--compile', action='store_true')
    parser.add_argument('--cuda-graph', action='store_true', help='with --compile: CUDA graphs (max-autotune)')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'fp16'], choices=list(DTYPES))
    parser.add_argument('--dense-scale', type=float, default=1.0, help='scale the papers\' dense input sizes')
    parser.add_argument('--images', type=int, default=118287, help='datacheck: images in the generated file')
    parser.add_argument('--boxes', type=int, default=860001, help='datacheck: boxes in the generated file')
    parser.add_argument('--rounds', type=int, default=None, help='interleaved rounds (datacheck 3, others 5)')
    parser.add_argument('--min-time', type=float, default=3.0)
    parser.add_argument('--warmup', type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.what == 'datacheck' else 5
    device = torch.device(args.device)
    if args.amp is None:
        args.amp = 'fp16' if device.type == 'cuda' else 'none'
    if args.what == 'models':
        bench_models(args, device)
    elif args.what == 'dense':
        bench_dense(args, device)
    elif args.what == 'dense-deploy':
        bench_dense_deploy(args)
    elif args.what == 'checkpointing':
        bench_checkpointing(args, device)
    elif args.what == 'datacheck':
        bench_datacheck(args)
    elif device.type == 'cuda':
        bench_ska_gpu(args, device)
    else:
        bench_ska_cpu(args)


if __name__ == '__main__':
    run_cli(main)
