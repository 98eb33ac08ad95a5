"""Every route by which a user names a checkpoint file reads it through the one safe reader: a
crafted pickle is refused without running, random bytes are called "not a checkpoint"."""
import os
import subprocess
import sys

import pytest
import timm
import torch

pytest.importorskip('mmengine')

import lsnet  # noqa: E402,F401
import lsnet.mm.install_safety  # noqa: E402,F401  (what the configs' custom_imports do)
from lsnet import LSNetBackbone  # noqa: E402
from lsnet.checkpoint import CheckpointError  # noqa: E402

from mm_helpers import ROOT  # noqa: E402


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)}, path)
    yield path
    assert not marker.exists(), 'the pickle ran code'


def test_timm_pretrained_file(evil, noise_file):
    for path, message in ((evil, 'not safe to unpickle'), (noise_file, 'is not a checkpoint')):
        with pytest.raises(CheckpointError, match=message):
            timm.create_model('lsnet_t', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))


def test_init_cfg_pretrained(evil):
    model = LSNetBackbone('t', out_indices=(0,), init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
    with pytest.raises(CheckpointError, match='not safe to unpickle'):
        model.init_weights()


def test_mmengine_load_from_and_resume(evil, noise_file):
    """Runner.load_checkpoint / resume read through MMEngine's CheckpointLoader."""
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(CheckpointError, match='not safe to unpickle'):
        CheckpointLoader.load_checkpoint(str(evil), map_location='cpu')
    with pytest.raises(CheckpointError, match='is not a checkpoint'):
        CheckpointLoader.load_checkpoint(str(noise_file), map_location='cpu')


def run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable] + args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['test', 'export_backbone', 'eval_robustness'])
def test_tools_refuse_crafted_files(tool, evil, tmp_path):
    config = str(ROOT / 'configs' / ('classification/lsnet-t_shapes.py' if tool == 'eval_robustness'
                                     else 'retinanet/retinanet_lsnet-t_fpn_shapes.py'))
    args = {'test': [config, str(evil), '--work-dir', str(tmp_path / 'w')],
            'export_backbone': [str(evil), str(tmp_path / 'out.pth')],
            'eval_robustness': [config, str(evil), '--classes', str(tmp_path)]}[tool]
    result = run([str(ROOT / 'tools' / f'{tool}.py')] + args, tmp_path)
    assert result.returncode != 0
    assert 'not safe to unpickle' in result.stdout + result.stderr
