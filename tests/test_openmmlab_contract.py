"""What OpenMMLab users and configs expect of a backbone: mmpretrain's VAN config dicts,
``init_cfg`` initializers, ``norm_cfg``, ``with_cp``, and the norm state of frozen stages."""
import os

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

pytest.importorskip('mmengine')

from mmengine.registry import MODELS  # noqa: E402

import lsnet  # noqa: E402,F401
from lsnet import VAN, LSNet, LSNetBackbone, VANBackbone, fuse_model  # noqa: E402
from lsnet.checkpoint import CheckpointError  # noqa: E402

from reference_weights import write_released_checkpoint  # noqa: E402


def test_mmpretrain_van_config_dicts_build_unchanged():
    # mmpretrain's configs/van/van-tiny_8xb128_in1k.py backbone, and a custom arch in its terms
    model = MODELS.build(dict(type='VAN', arch='tiny', drop_path_rate=0.1)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert isinstance(outs, tuple) and [o.shape for o in outs] == [(1, 256, 2, 3)]  # mmpretrain's default (3,)
    for alias, arch in (('tiny', 'b0'), ('small', 'b1'), ('base', 'b2'), ('large', 'b3')):
        assert VAN(alias).arch_name == arch
    with pytest.raises(ValueError, match=r"VAN: unknown arch 't'; valid: \['b0'.*'tiny'"):
        VAN('t')  # mmpretrain's letter for b0; 't' is LSNet-T here
    custom = MODELS.build(dict(type='VAN', arch=dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                                     ffn_ratios=[2, 2, 2, 2]),
                               in_channels=1, patch_sizes=[7, 3, 3, 3], norm_cfg=dict(type='LN'),
                               out_indices=(0, 1, 2, 3))).eval()
    with torch.no_grad():
        assert [o.shape[1] for o in custom(torch.randn(1, 1, 64, 64))] == [8, 16, 24, 32]
    with pytest.raises(ValueError, match='patch_sizes'):
        VAN('tiny', patch_sizes=[4, 2, 2, 2])
    assert VAN('b0').out_indices is None  # our own names keep the classifier default


def test_init_cfg_initializers_apply_as_in_base_module(tmp_path):
    model = LSNetBackbone('t', out_indices=(0, 1, 2, 3), init_cfg=[dict(type='Constant', layer='Conv2d', val=0.25)])
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.all(m.weight == 0.25) for m in convs)
    # initializers first, then Pretrained on top (MMEngine's order)
    path = write_released_checkpoint('lsnet_t', tmp_path / 'lsnet_t.pth')
    model = LSNetBackbone('t', out_indices=(3,), init_cfg=[dict(type='Pretrained', checkpoint=str(path)),
                                                   dict(type='Constant', layer='Conv2d', val=0.25)])
    model.init_weights()
    assert not torch.all(model.patch_embed[0].c.weight == 0.25)
    with pytest.raises(ValueError, match=r"init_cfg type 'Kaimin' is not an MMEngine initializer.*Kaiming"):
        LSNet('t', init_cfg=dict(type='Kaimin', layer='Conv2d'))


@pytest.mark.parametrize('cls,arch', [(LSNetBackbone, 't'), (VANBackbone, 'b0')])
def test_norm_cfg(cls, arch, tmp_path):
    sync = cls(arch, out_indices=(0, 1, 2, 3), norm_cfg=dict(type='SyncBN'))
    assert not any(type(m) is nn.BatchNorm2d for m in sync.modules())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())
    name = 'lsnet_t' if cls is LSNetBackbone else 'van_b0'
    path = write_released_checkpoint(name, tmp_path / f'{name}.pth')
    sync.load_pretrained(str(path))  # the BN checkpoint loads strictly into SyncBN layers
    plain = cls(arch, out_indices=(0, 1, 2, 3))
    plain.load_pretrained(str(path))
    assert all(torch.equal(a, b) for a, b in zip(sync.state_dict().values(), plain.state_dict().values()))
    group = cls(arch, out_indices=(0, 1, 2, 3), norm_cfg=dict(type='GN', num_groups=8)).eval()
    assert not any(type(m) is nn.BatchNorm2d for m in group.modules())
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 8 for m in group.modules())
    with torch.no_grad():
        assert len(group(torch.randn(1, 3, 64, 64))) == 4
    if cls is LSNetBackbone:  # VAN has no Conv-BN pairs to fuse
        with pytest.raises(ValueError, match='fusing needs BatchNorm'):
            fuse_model(group)
    frozen_norms = cls(arch, out_indices=(0,), norm_cfg=dict(type='BN', requires_grad=False))
    norm_params = [p for m in frozen_norms.modules() if isinstance(m, _BatchNorm) for p in m.parameters()]
    assert norm_params and not any(p.requires_grad for p in norm_params)
    with pytest.raises(ValueError, match="norm_cfg type 'IN'"):
        cls(arch, norm_cfg=dict(type='IN'))


@pytest.mark.parametrize('backbone', [dict(type='LSNet', arch='t'), dict(type='VAN', arch='b0')])
def test_with_cp_recomputes_blocks(backbone):
    model = MODELS.build(dict(backbone, out_indices=(0, 1, 2, 3), with_cp=True, norm_eval=True)).train()
    reference = MODELS.build(dict(backbone, out_indices=(0, 1, 2, 3), norm_eval=True)).train()
    reference.load_state_dict(model.state_dict())
    assert model.grad_checkpointing and not reference.grad_checkpointing
    block = dict(model.named_modules())['blocks3.3' if backbone['type'] == 'LSNet' else 'block3.0']
    calls = []
    block.register_forward_pre_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 64, 96)
    outs, want = model(x), reference(x)
    sum(o.mean() for o in outs).backward()
    assert len(calls) == 2
    for got, expected in zip(outs, want):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize('cls,arch', [(LSNetBackbone, 's'), (VANBackbone, 'b1')])
def test_frozen_stages_norm_state_like_mmdet_tests(cls, arch):
    """mmdet's backbone tests: frozen stages stay in eval mode with no gradients after train()."""
    model = cls(arch, out_indices=(0, 1, 2, 3), frozen_stages=2)
    model.train()
    for index in range(-1, 2):
        for module in model.stage_modules(index):
            for m in module.modules():
                if isinstance(m, _BatchNorm):
                    assert not m.training
            assert all(not p.requires_grad for p in module.parameters())
    assert all(m.training for m in model.stage_modules(3)[0].modules() if isinstance(m, _BatchNorm))


def test_teacher_checkpoint_never_runs_code(tmp_path, noise_file):
    """A crafted distillation-teacher file is refused by the safe reader; nothing is executed."""
    marker = tmp_path / 'executed'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    evil = tmp_path / 'teacher.pth'
    torch.save({'model': Payload()}, evil)
    with pytest.raises(CheckpointError, match='not safe to unpickle'):
        MODELS.build(dict(type='TimmClassifier', backbone=dict(model_name='lsnet_t_distill', num_classes=4),
                          teacher=dict(model='resnet18', checkpoint=str(evil))))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match='is not a checkpoint') as info:
        MODELS.build(dict(type='TimmClassifier', backbone=dict(model_name='lsnet_t_distill', num_classes=4),
                          teacher=dict(model='resnet18', checkpoint=str(noise_file))))
    assert 'weights_only=False' not in str(info.value)
