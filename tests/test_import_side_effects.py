"""``import lsnet`` registers models and changes nothing else in the process; the checkpoint safety
is installed only when asked for (tools, or ``lsnet.mm.install_safety`` in a config's custom_imports)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip('mmengine')

from mm_helpers import ROOT  # noqa: E402

PROBE = '''
import sys
from mmengine.fileio.backends import backends
from mmengine.runner.checkpoint import CheckpointLoader
import torch
before = (dict(CheckpointLoader._schemes), dict(backends), torch.load, torch.get_num_threads(),
          torch.get_default_dtype(), None)
import lsnet, timm
after = (dict(CheckpointLoader._schemes), dict(backends), torch.load, torch.get_num_threads(),
         torch.get_default_dtype(), None)
assert 'lsnet_t' in timm.list_models('lsnet*') and 'van_b0' in timm.list_models('van*')
from mmengine.registry import MODELS
assert MODELS.get('LSNet') is lsnet.LSNetBackbone and MODELS.get('VAN') is lsnet.VANBackbone
for name, a, b in zip(('checkpoint loaders', 'file backends', 'torch.load', 'threads', 'dtype'), before, after):
    assert a == b, f'import lsnet changed {name}'
print('untouched')
import lsnet.mm.install_safety
from lsnet.mm.safe_io import AtomicLocalBackend, load_from_local
assert CheckpointLoader._schemes[''] is load_from_local and backends['local'] is AtomicLocalBackend
print('installed')
'''


def test_import_lsnet_leaves_mmengine_untouched():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore')
    result = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ['untouched', 'installed']


def test_shipped_configs_install_the_safety():
    from mmengine.config import Config
    for family in ('classification/lsnet-t_8xb256_in1k.py', 'retinanet/retinanet_van-b0_fpn_1x_coco.py',
                   'sem_fpn/fpn_lsnet-t_40k_ade20k.py', 'mask_rcnn/mask-rcnn_lsnet-t_fpn_1x_coco.py'):
        cfg = Config.fromfile(str(ROOT / 'configs' / family))
        assert 'lsnet.mm.install_safety' in cfg.custom_imports['imports'], family
        hooks = {h['type'] for h in cfg.custom_hooks}
        assert {'RNGStateHook', 'NonFiniteLossHook', 'ClassCountCheckHook'} <= hooks, family
