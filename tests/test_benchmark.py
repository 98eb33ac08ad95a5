"""The benchmark tool runs end to end on tiny settings and prints ratio tables (no timing asserted)."""
import importlib.util
import re
import subprocess
import sys

import pytest
import torch

from mm_helpers import ROOT, run_tool
from test_backbones import conv_input_layouts


def half_unit(cell: str) -> float:
    """Half of the last printed digit's unit: the most a value printed as ``cell`` was rounded by."""
    decimals = len(cell.split('.')[1]) if '.' in cell else 0
    return 0.5 * 10.0 ** -decimals


def assert_printed_ratio(ratio: str, numerator: str, denominator: str) -> None:
    """``ratio`` is numerator / denominator of the unrounded values behind the three printed cells:
    it lies in the interval the rounding of all three allows."""
    num, den = float(numerator), float(denominator)
    low = (num - half_unit(numerator)) / (den + half_unit(denominator)) - half_unit(ratio)
    high = (num + half_unit(numerator)) / (den - half_unit(denominator)) + half_unit(ratio)
    assert low <= float(ratio) <= high, f'{ratio} is not {numerator} / {denominator}'


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of a printed markdown table's data rows."""
    return [[c.strip() for c in line.split('|')[1:-1]] for line in stdout.splitlines()
            if line.startswith('| ') and not line.startswith('| model') and not line.startswith('| shape')]


@pytest.mark.serial
def test_models_table_compares_each_row_with_the_baseline_on_its_own_path():
    """Every (model, path) row; the ratio is the row's median over the baseline model's median on the
    same path (eager with eager, onnxruntime with onnxruntime), the latency ratio likewise, and p90 is
    not below the median."""
    result = run_tool(['tools/benchmark.py', 'models', '--models', 'lsnet_t', 'resnet18', '--paths', 'eager',
                       'onnxruntime', '--batch', '2', '--img-size', '64', '--min-time', '0.4', '--warmup', '0.05',
                       '--baseline', 'resnet18', '--rounds', '2'])
    rows = table_rows(result.stdout)
    assert [(r[0], r[1]) for r in rows] == [('lsnet_t', 'eager'), ('lsnet_t', 'onnxruntime'),
                                            ('resnet18', 'eager'), ('resnet18', 'onnxruntime')]
    by_key = {(r[0], r[1]): r for r in rows}
    for name, path, median, spread, memory, ratio, ms, p90, latency_ratio in rows:
        base = by_key['resnet18', path]
        assert_printed_ratio(ratio, median, base[2])
        assert_printed_ratio(latency_ratio, base[6], ms)
        low, high = map(float, spread.split('-'))
        assert low <= float(median) <= high and float(ms) <= float(p90)
        assert float(memory) >= 0  # measured on Linux CPUs too (resident-set growth), not NaN
    assert by_key['resnet18', 'onnxruntime'][5] == by_key['resnet18', 'eager'][5] == '1.00'
    # every row is built and warmed up before the timed rounds start
    lines = result.stdout.splitlines()
    ready = [i for i, line in enumerate(lines) if line.strip().endswith('warm-up)')]
    assert len(ready) == 4 and max(ready) < min(i for i, line in enumerate(lines) if line.startswith('| model'))
    refused = run_tool(['tools/benchmark.py', 'models', '--models', 'lsnet_t', '--baseline', 'resnet18 (onnxruntime)'],
                       check=False)
    assert refused.returncode != 0 and 'must be one of --models' in refused.stderr


@pytest.mark.serial
def test_training_step_mode_with_the_released_ska_baseline():
    result = run_tool(['tools/benchmark.py', 'models', '--mode', 'train', '--models', 'lsnet_t', 'lsnet_t:released',
                       '--batch', '2', '--img-size', '64', '--min-time', '0.2', '--warmup', '0.05', '--rounds', '2'])
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == ['lsnet_t', 'lsnet_t:released'] and rows[0][5] == '1.00'
    assert float(rows[0][4]) > 0  # a training step allocates activations and gradients


@pytest.mark.parametrize('extra,message', [
    (['--mode', 'train', '--paths', 'deploy'], '--paths is for inference'),
    (['--baseline', 'lsnet_tt'], "--baseline 'lsnet_tt' must be one of --models"),
    (['--models', 'resnet18:released'], 'swaps the SKA of LSNet models'),
    (['--models', 'lsnet_t:relased'], "unknown model variant 'relased'"),
    (['--paths', 'onnxruntime', '--amp', 'bf16'], 'onnxruntime/onnxruntime-int8/openvino/openvino-int8 measure the exported graph on the CPU'),
])
@pytest.mark.slow
def test_models_rejects_arguments_it_would_ignore(extra, message):
    result = subprocess.run([sys.executable, 'tools/benchmark.py', 'models', '--models', 'lsnet_t', *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_tool', ROOT / 'tools' / 'benchmark.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_released_ska_restatement_equals_ska():
    from lsnet.ops.ska import ska, ska_backend, ska_torch, ska_unfold
    x, w = torch.randn(2, 32, 5, 7, dtype=torch.float64), torch.randn(2, 4, 9, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(ska_unfold(x, w), ska_torch(x, w), rtol=1e-12, atol=1e-12)
    with ska_backend('unfold'):
        torch.testing.assert_close(ska(x, w), ska_torch(x, w), rtol=1e-12, atol=1e-12)


@pytest.mark.serial
def test_ska_cpu_ratios():
    result = run_tool(['tools/benchmark.py', 'ska', '--device', 'cpu', '--min-time', '0.1', '--warmup', '0.02',
                       '--rounds', '2'])
    rows = table_rows(result.stdout)
    assert len(rows) == 3
    for row in rows:
        for cell in (row[3], row[6], row[7]):  # forward, forward+backward and torch-path ratios with spreads
            median, low, high = map(float, re.fullmatch(r'([0-9.]+) \(([0-9.]+)-([0-9.]+)\)', cell).groups())
            assert 0 < low <= high and median > 0


@pytest.mark.slow
@pytest.mark.serial
def test_dense_inference_and_training_step():
    pytest.importorskip('mmdet')
    result = run_tool(['tools/benchmark.py', 'dense', '--configs', 'configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py',
                       'configs/sem_fpn/fpn_lsnet-t_40k_ade20k.py', '--dense-scale', '0.25', '--batch', '1',
                       '--min-time', '0.1', '--warmup', '0.02'])
    assert '| retinanet_lsnet-t_fpn_1x_coco |' in result.stdout and '| fpn_lsnet-t_40k_ade20k |' in result.stdout


@pytest.mark.slow
@pytest.mark.serial
def test_dense_deploy_rows_compare_each_task_with_its_baseline_on_the_same_path():
    """Whole RetinaNet and Semantic FPN networks, LSNet-T beside efficientvit_m4 (AnySizeTIMMBackbone),
    on the eager and onnxruntime paths: one row per (config, path) with the input size the papers' sizes
    scale to, p90 not below the median, and the ratio the baseline's median latency over the row's,
    both of the same task on the same path (the baselines' own rows 1.00). A two-stage detector is
    refused by name."""
    configs = ['configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py', 'configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py',
               'configs/sem_fpn/fpn_lsnet-t_40k_ade20k.py', 'configs/sem_fpn/fpn_efficientvit-m4_40k_ade20k.py']
    result = run_tool(['tools/benchmark.py', 'dense-deploy', '--configs', *configs, '--paths', 'eager', 'onnxruntime',
                       '--baseline-configs', configs[1], configs[3], '--dense-scale', '0.1', '--rounds', '2',
                       '--min-time', '0.2', '--warmup', '0.05'])
    rows = [r for r in table_rows(result.stdout) if r[0] != 'config']
    names = [c.split('/')[-1][:-3] for c in configs]
    assert [(r[0], r[2]) for r in rows] == [(n, p) for n in names for p in ('eager', 'onnxruntime')]
    by_key = {(r[0], r[2]): r for r in rows}
    for name, size, path, ms, p90, ratio in rows:
        assert size == ('160x96' if name.startswith('retinanet') else '64x64')  # padded to 32, as the detectors pad
        base = by_key[names[1] if name.startswith('retinanet') else names[3], path]
        assert float(ms) <= float(p90)
        assert_printed_ratio(ratio, base[3], ms)
    assert by_key[names[1], 'onnxruntime'][5] == by_key[names[3], 'eager'][5] == '1.00'
    refused = run_tool(['tools/benchmark.py', 'dense-deploy', '--configs', 'configs/mask_rcnn/mask-rcnn_lsnet-t_fpn_1x_coco.py',
                        '--dense-scale', '0.1'], check=False)
    assert refused.returncode != 0 and 'two-stage detector' in refused.stderr


def test_released_baseline_runs_the_released_ska_in_nchw():
    """``:released`` is LSNet as the released code runs it: unfold SKA, and NCHW convolutions on CPU
    (our LSNet converts to channels-last)."""
    import importlib
    import timm
    ska_module = importlib.import_module('lsnet.ops.ska')  # the module (lsnet.ops.ska is also the function)
    tool = load_tool()
    model = timm.create_model('lsnet_t', num_classes=10).eval()
    assert conv_input_layouts(model, torch.randn(2, 3, 64, 64)) == {'channels_last'}
    calls = []
    original = ska_module.ska_unfold

    def counting_unfold(x, w):
        calls.append(x.shape)
        return original(x, w)
    ska_module.ska_unfold = counting_unfold
    try:
        baseline = tool.VariantModel(model, 'released')
        with torch.no_grad():
            assert conv_input_layouts(baseline, torch.randn(2, 3, 64, 64)) == {'nchw'}
            model(torch.randn(1, 3, 64, 64))  # outside the variant: the default backend again
    finally:
        ska_module.ska_unfold = original
    assert len(calls) == 5  # LSNet-T's five LS convolutions, only in the variant's call
