"""The contracts timm's users and timm's own tooling rely on, checked on every registered variant:
the pretrained-cfg fields, pooling removal, feature extraction (getter and FX), the keyword
arguments of timm's train.py, activation checkpointing, layer-wise LR decay groups, pretrained
loading (in_chans adaptation, Hugging Face hub offline), TorchScript."""
import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from torch.nn.modules.batchnorm import _BatchNorm

import lsnet

from mm_helpers import fast_tier
from reference_weights import write_released_checkpoint

ALL_MODELS = sorted(n for n in timm.list_models() if n.startswith(('lsnet_', 'van_b')))
SMALL = ['lsnet_t', 'lsnet_s_distill', 'van_b0']


def test_all_variants_registered():
    assert ALL_MODELS == sorted([f'lsnet_{a}{d}' for a in 'tsb' for d in ('', '_distill')]
                                + [f'van_b{i}' for i in range(7)])


@pytest.mark.parametrize('name', ALL_MODELS)
def test_pretrained_cfg_fields_and_pooling_removal(name):
    model = timm.create_model(name).eval()
    cfg = model.pretrained_cfg
    params = dict(model.named_parameters())
    classifiers = cfg['classifier'] if isinstance(cfg['classifier'], tuple) else (cfg['classifier'],)
    for classifier in classifiers:
        assert f'{classifier}.weight' in params
    assert f'{cfg["first_conv"]}.weight' in params
    x = torch.randn(1, 3, *cfg['input_size'][1:]) if name in SMALL else torch.randn(1, 3, 160, 160)
    stride = model.feature_info[-1]['reduction']
    with torch.no_grad():
        feats = model.forward_features(x)
        expected = tuple(-(-s // stride) for s in x.shape[2:])
        if name in SMALL:  # at the cfg's input size the map is the cfg's pool_size
            expected = cfg['pool_size']
        assert feats.shape == (1, model.num_features, *expected)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (1, model.head_hidden_size)
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre)
        model.reset_classifier(0, '')
        assert model(x).shape == feats.shape
    with pytest.raises(ValueError, match="global_pool=''"):
        model.reset_classifier(5, '')


@pytest.mark.parametrize('name', SMALL)
def test_create_without_head_and_pool(name):
    model = timm.create_model(name, num_classes=0, global_pool='').eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, model.num_features, *model.pretrained_cfg['pool_size'])
    with pytest.raises(ValueError, match="global_pool 'max'"):
        timm.create_model(name, global_pool='max')


@pytest.mark.parametrize('name', ALL_MODELS)
def test_forward_intermediates_agree_with_forward_features(name):
    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        assert [f.shape[1] for f in intermediates] == [i['num_chs'] for i in model.feature_info]
        torch.testing.assert_close(final, model.forward_features(x))
        last_two = model.forward_intermediates(x, indices=[-2, -1], intermediates_only=True)
    assert [f.shape[1] for f in last_two] == [i['num_chs'] for i in model.feature_info[-2:]]


@pytest.mark.parametrize('name', fast_tier(ALL_MODELS, [n for n in ALL_MODELS if n not in ('van_b4', 'van_b5', 'van_b6')]))
def test_fx_feature_extraction_at_non_square_size(name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    model = timm.create_model(name).eval()
    _, eval_nodes = get_graph_node_names(model)
    extractor = create_feature_extractor(model, return_nodes=[eval_nodes[-1]])
    for size in ((96, 160), (130, 70)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            traced = next(iter(extractor(x).values()))
            assert torch.equal(traced, model(x))


@pytest.mark.parametrize('name', ['lsnet_t_distill', 'van_b0'])
def test_fx_backward_and_timm_fx_features(name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    model = timm.create_model(name, num_classes=7).train()
    train_nodes, _ = get_graph_node_names(model)
    extractor = create_feature_extractor(model, return_nodes=[train_nodes[-1]])
    out = next(iter(extractor(torch.randn(2, 3, 64, 96)).values()))
    out.mean().backward()
    assert out.shape == (2, 7)
    assert all(p.grad is not None for p in extractor.parameters())
    features = timm.create_model(name, features_only=True, feature_cls='fx', out_indices=(1, 3)).eval()
    with torch.no_grad():
        maps = features(torch.randn(1, 3, 96, 160))
    assert [m.shape[1] for m in maps] == features.feature_info.channels()


@pytest.mark.parametrize('name', fast_tier(SMALL, ['van_b0']))
def test_torchscript_matches_eager_saves_and_trains(name, tmp_path):
    """timm's torchscript tests: ``torch.jit.script`` of the model (also fused, also after FX), saved
    and loaded, gives the eager outputs at the training and at a non-square size, and backpropagates."""
    from timm.layers import set_scriptable
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    with set_scriptable(True):
        model = timm.create_model(name, num_classes=7).eval()
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(tmp_path / 'model.pt'))
    loaded = torch.jit.load(str(tmp_path / 'model.pt'))
    fused = torch.jit.script(lsnet.fuse_model(copy.deepcopy(model)))
    _, eval_nodes = get_graph_node_names(model)
    traced = torch.jit.script(create_feature_extractor(model, return_nodes={eval_nodes[-1]: 'out'}))
    for size in ((224, 224), (96, 160)):
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = model(x)
            for compiled in (scripted, loaded, fused):
                torch.testing.assert_close(compiled(x), expected, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(traced(x)['out'], expected, rtol=1e-4, atol=1e-4)
    # In float64, so that gradients which nearly cancel compare too.
    model.double()
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    gradients = []
    for module in (model.train(), scripted.train()):  # the scripted module shares the parameters
        model.zero_grad(set_to_none=True)
        module(x).square().mean().backward()
        gradients.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert gradients[0].keys() == dict(model.named_parameters()).keys()
    for key, expected in gradients[0].items():
        torch.testing.assert_close(gradients[1][key], expected, rtol=1e-7, atol=1e-10, msg=key)
    dense = lsnet.LSNetBackbone('t', out_indices=(1, 2)) if name.startswith('lsnet') else lsnet.VANBackbone('b0', out_indices=(1, 2))
    with pytest.raises(RuntimeError, match=r'out_indices=\(1, 2\)'):
        torch.jit.script(dense)
    model.set_grad_checkpointing(True)
    with pytest.raises(RuntimeError, match='set_grad_checkpointing'):
        torch.jit.script(model)


@pytest.mark.parametrize('name', SMALL)
def test_timm_train_script_keyword_arguments(name):
    # what timm's train.py passes for every model (None values are dropped by create_model)
    model = timm.create_model(name, pretrained=False, in_chans=3, num_classes=10, drop_rate=0.2,
                              drop_path_rate=0.05, drop_block_rate=None, global_pool=None, bn_momentum=0.03,
                              bn_eps=2e-5, scriptable=False, checkpoint_path='')
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.03 and m.eps == 2e-5 for m in norms)
    model.train()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    # drop_rate is dropout before the head, in LSNet and VAN alike (timm's --drop)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    feats = model.forward_features(x)
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.eval()
    pooled = [model.forward_head(feats, pre_logits=True) for _ in range(2)]
    assert (pooled[0] == 0).float().mean() > 0.05 and not torch.equal(pooled[0], pooled[1])
    with pytest.raises(ValueError, match='no DropBlock'):
        timm.create_model(name, drop_block_rate=0.1)


@pytest.mark.parametrize('name,indices', [('lsnet_t', (-2, -1)), ("van_b0", (-3, 2)), ('lsnet_b', (0, -1))])
def test_features_only_negative_indices(name, indices):
    model = timm.create_model(name, features_only=True, out_indices=indices).eval()
    info = timm.create_model(name).feature_info
    want = [info[i]['num_chs'] for i in indices]
    assert model.feature_info.channels() == want
    with torch.no_grad():
        assert [f.shape[1] for f in model(torch.randn(1, 3, 128, 96))] == want


@pytest.mark.parametrize('name', ['lsnet_t', 'van_b0'])
def test_pruned_features_have_no_unused_parameters(name):
    model = timm.create_model(name, features_only=True, out_indices=(1,))
    feats = model(torch.randn(2, 3, 64, 64))
    sum(f.mean() for f in feats).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused


@pytest.mark.parametrize('name', SMALL)
def test_grad_checkpointing_recomputes_blocks_and_keeps_outputs(name):
    model = timm.create_model(name, num_classes=5, drop_path_rate=0.0).train()
    for module in model.modules():
        if isinstance(module, _BatchNorm):  # BN in eval: recomputation then cannot change statistics
            module.eval()
    x = torch.randn(2, 3, 64, 64)
    block = dict(model.named_modules())['blocks3.3' if name.startswith('lsnet') else 'block3.0']
    calls = []
    block.register_forward_pre_hook(lambda *args: calls.append(1))
    plain = model(x)
    plain.sum().backward()
    plain_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    assert len(calls) == 1
    model.set_grad_checkpointing(True)
    checkpointed = model(x)
    checkpointed.sum().backward()
    assert len(calls) == 3  # forward, then recomputed in backward
    torch.testing.assert_close(checkpointed, plain)
    for got, want in zip((p.grad for p in model.parameters()), plain_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', SMALL)
def test_group_matcher_drives_layer_decay(name):
    from timm.optim import create_optimizer_v2
    model = timm.create_model(name)
    optimizer = create_optimizer_v2(model, 'adamw', lr=1e-3, layer_decay=0.7)
    scales = sorted({group['lr_scale'] for group in optimizer.param_groups})
    assert len(scales) > model.num_stages  # stem, blocks ..., head at distinct depths
    named = dict(model.named_parameters())
    covered = {id(p) for group in optimizer.param_groups for p in group['params']}
    assert covered == {id(p) for p in named.values()}
    head_scale = max(scales)
    stem_name = model.pretrained_cfg['first_conv'] + '.weight'
    stem_scale = next(g['lr_scale'] for g in optimizer.param_groups if any(p is named[stem_name] for p in g['params']))
    assert head_scale == 1.0 and stem_scale == min(scales)


@pytest.mark.parametrize('name', ['lsnet_t', 'van_b0'])
def test_pretrained_file_adapts_in_chans_and_head(name, tmp_path):
    path = write_released_checkpoint(name, tmp_path / f'{name}.pth')
    reference = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)),
                              in_chans=1, num_classes=5)
    key = model.pretrained_cfg['first_conv'] + '.weight'
    torch.testing.assert_close(model.state_dict()[key], reference.state_dict()[key].sum(1, keepdim=True))
    assert model.eval()(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    other = [k for k in reference.state_dict() if k != key and not k.startswith(('head', 'head_dist'))]
    assert all(torch.equal(model.state_dict()[k], reference.state_dict()[k]) for k in other)


HUB_CHECK = textwrap.dedent('''
    import sys, timm, torch, lsnet
    name, hub_name, reference = sys.argv[1:4]
    want = torch.load(reference, weights_only=True)
    for model in (timm.create_model(name, pretrained=True), timm.create_model(hub_name, pretrained=True)):
        got = model.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want if not k.endswith('attention_bias_idxs')), name
    print('HUB-OK', type(model).__name__)
''')


def fill_hub_cache(hub_dir, repo_id: str, files: dict) -> None:
    """A Hugging Face cache as huggingface_hub lays it out, with one snapshot of ``files``."""
    commit = '0123456789abcdef0123456789abcdef01234567'
    repo = hub_dir / f'models--{repo_id.replace("/", "--")}'
    (repo / 'refs').mkdir(parents=True, exist_ok=True)
    (repo / 'refs' / 'main').write_text(commit)
    snapshot = repo / 'snapshots' / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for filename, writer in files.items():
        writer(snapshot / filename)


@pytest.mark.parametrize('name,hub_repo,hub_file', [
    ('lsnet_t', 'jameslahm/lsnet', 'lsnet_t.pth'),
    ('van_b0', 'Visual-Attention-Network/VAN-Tiny-original', 'van_tiny_754.pth.tar')])
def test_pretrained_true_from_hugging_face_cache_offline(name, hub_repo, hub_file, tmp_path):
    """``pretrained=True`` and ``hf_hub:`` names resolve through huggingface_hub's cache (here
    filled by the test, read with HF_HUB_OFFLINE=1): the files of the release, loaded safely."""
    from reference_weights import released_state_dict
    state = released_state_dict(name)
    hub = tmp_path / 'hf' / 'hub'
    fill_hub_cache(hub, hub_repo, {hub_file: lambda p: write_released_checkpoint(name, p)})
    model_repo = f'lsnet-tests/{name}'  # a timm-style repository: config.json + pytorch_model.bin
    config = dict(architecture=name, num_classes=1000, num_features=timm.create_model(name).num_features,
                  pretrained_cfg=dict(input_size=[3, 224, 224], crop_pct=0.875, interpolation='bicubic'))
    fill_hub_cache(hub, model_repo, {'config.json': lambda p: p.write_text(json.dumps(config)),
                                     'pytorch_model.bin': lambda p: torch.save(state, p)})
    reference = tmp_path / 'reference.pt'
    torch.save(state, reference)
    env = dict(os.environ, HF_HOME=str(tmp_path / 'hf'), HF_HUB_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1')
    result = subprocess.run([sys.executable, '-c', HUB_CHECK, name, f'hf_hub:{model_repo}', str(reference)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert 'HUB-OK' in result.stdout, result.stderr[-3000:]
