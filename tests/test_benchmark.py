"""The benchmark tool runs end to end on tiny settings and prints ratio tables (no timing asserted)."""
import re

import pytest

from mm_helpers import run_tool


def test_models_table_with_ratios():
    result = run_tool(['tools/benchmark.py', 'models', '--models', 'lsnet_t', 'van_b0', 'resnet18', '--batch', '2',
                       '--img-size', '64', '--min-time', '0.2', '--warmup', '0.05', '--baseline', 'resnet18'])
    rows = [line for line in result.stdout.splitlines() if line.startswith('| ') and 'img/s' not in line]
    assert [r.split('|')[1].strip() for r in rows] == ['lsnet_t', 'van_b0', 'resnet18']
    assert rows[-1].rstrip().endswith('| 1.00 |')
    for row in rows:
        assert float(row.split('|')[2]) > 0


def test_training_step_mode():
    result = run_tool(['tools/benchmark.py', 'models', '--mode', 'train', '--models', 'lsnet_t', '--batch', '2',
                       '--img-size', '64', '--min-time', '0.2', '--warmup', '0.05'])
    assert re.search(r'\| lsnet_t \| [0-9.]+ \| nan \| 1.00 \|', result.stdout)


def test_ska_cpu_ratios():
    result = run_tool(['tools/benchmark.py', 'ska', '--device', 'cpu', '--min-time', '0.1', '--warmup', '0.02'])
    rows = [line for line in result.stdout.splitlines() if re.match(r'\| \d', line)]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.split('|')[1:-1]]
        assert float(cells[4]) > 0 and float(cells[5]) > 0  # compiled/conv and torch-path/conv ratios


@pytest.mark.slow
def test_dense_inference_and_training_step():
    pytest.importorskip('mmdet')
    result = run_tool(['tools/benchmark.py', 'dense', '--configs', 'configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py',
                       'configs/sem_fpn/fpn_lsnet-t_40k_ade20k.py', '--dense-scale', '0.25', '--batch', '1',
                       '--min-time', '0.1', '--warmup', '0.02'])
    assert '| retinanet_lsnet-t_fpn_1x_coco |' in result.stdout and '| fpn_lsnet-t_40k_ade20k |' in result.stdout
