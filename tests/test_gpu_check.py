"""``python -m lsnet.gpu_check``, the acceptance run for a bare GPU machine, kept working on CPU:
the same code at toy sizes, with only torch, timm and triton importable."""
import json
import subprocess
import sys

import pytest

from mm_helpers import ROOT

BARE = '''
import runpy, sys
for name in ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'pytest'):
    sys.modules[name] = None  # as on a machine without them: importing fails
sys.argv = ['gpu_check', '--device', 'cpu', '--small', '--out', sys.argv[1]]
runpy.run_module('lsnet.gpu_check', run_name='__main__')
'''


@pytest.mark.slow
def test_smoke_run_on_cpu_without_openmmlab(tmp_path):
    out = tmp_path / 'report.json'
    result = subprocess.run([sys.executable, '-c', BARE, str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report['ok'] and report['failures'] == 0
    cases = {r['case'] for r in report['ska_correctness']}
    assert {'classification', 'odd', 'channels_last', 'grid_beyond_65535'} <= cases
    assert all(r['forward_rel_err'] < 1e-5 for r in report['ska_correctness'])
    assert [r['model'] for r in report['models']] == ['lsnet_t', 'efficientvit_m4']
    assert report['models'][0]['infer_vs_efficientvit_m4'] > 0
    assert all(r['forward_vs_floor'] > 0 for r in report['ska_speed'])


def test_a_wrong_kernel_fails_the_run(monkeypatch, tmp_path):
    from lsnet import gpu_check
    from lsnet.ops.ska import ska_torch
    monkeypatch.setattr(gpu_check, 'ska', lambda x, w: ska_torch(x, w) * 1.001)
    monkeypatch.setattr(gpu_check, 'time_ska', lambda *args, **kwargs: [])
    monkeypatch.setattr(gpu_check, 'time_models', lambda *args, **kwargs: [])
    assert gpu_check.main(['--device', 'cpu', '--small', '--out', str(tmp_path / 'r.json')]) == 1
    report = json.loads((tmp_path / 'r.json').read_text())
    assert report['failures'] == len(report['ska_correctness']) > 0
