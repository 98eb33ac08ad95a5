import argparse
import logging
import re

import pytest
import timm
import torch

from lsnet import VAN, CheckpointError, LSNet, LSNetBackbone, VANBackbone

from reference_weights import fixture, released_state_dict, seeded_input, write_released_checkpoint


def test_non_tensor_metadata_loads_with_weights_only(tmp_path):
    # Released training scripts store argparse.Namespace and numpy scalars beside the weights.
    import numpy as np
    state = released_state_dict('lsnet_t')
    path = tmp_path / 'with_args.pth'
    torch.save({'model': state, 'args': argparse.Namespace(lr=1e-3, model='lsnet_t'),
                'epoch': 299, 'max_accuracy': np.float64(74.9)}, path)
    with pytest.raises(Exception):  # torch's own default refuses it
        torch.load(path)
    model = timm.create_model('lsnet_t', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    torch.testing.assert_close(model.head.l.weight, state['head.l.weight'])


@pytest.mark.parametrize('name', ['lsnet_t', 'van_b0'])
def test_state_dict_overlay_may_be_a_whole_checkpoint(name):
    # timm hands a pretrained_cfg_overlay state dict to the model's filter as given
    state = released_state_dict(name)
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(state_dict={'model': state}))
    for key, value in model.state_dict().items():
        if not key.endswith('attention_bias_idxs'):
            torch.testing.assert_close(value, state[key], msg=key)


def test_other_variant_is_refused_with_key_report(tmp_path):
    path = write_released_checkpoint('lsnet_s', tmp_path / 'lsnet_s.pth')
    with pytest.raises(CheckpointError) as err:
        timm.create_model('lsnet_t', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    message = str(err.value)
    assert 'lsnet_s.pth' in message and 'shape mismatches' in message
    assert 'patch_embed.0.c.weight: file (24, 3, 3, 3) vs model (16, 3, 3, 3)' in message
    assert 'unexpected keys: blocks1.0' in message


def test_missing_backbone_keys_are_refused(tmp_path):
    state = released_state_dict('van_b0')
    del state['block2.1.mlp.fc1.weight']
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError, match=r'missing keys: block2\.1\.mlp\.fc1\.weight'):
        VAN('b0', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()


# the damaged pickle streams break the unpickler in three ways: BUILD on an empty stack (IndexError), a memo
# key never stored (KeyError), a length field cut short (struct.error)
@pytest.mark.parametrize('content,match', [(b'', 'empty'), (b'PK\x03\x04garbage', 'corrupt or truncated'),
                                           (b'\x80\x02b.', 'corrupt or truncated.*IndexError'),
                                           (b'\x80\x02h\x05.', 'corrupt or truncated.*KeyError'),
                                           (b'\x80\x02}q\x00(X\x01', 'corrupt or truncated.*error')])
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as err:
        LSNet('t', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    assert 'bad.pth' in str(err.value)


def test_truncated_file(tmp_path):
    good = write_released_checkpoint('lsnet_t', tmp_path / 'good.pth')
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match='truncated.pth is corrupt or truncated'):
        LSNet('t', init_cfg=dict(type='Pretrained', checkpoint=str(truncated))).init_weights()


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        LSNet('t', init_cfg=dict(type='Pretrained', checkpoint='/nowhere.pth')).init_weights()


def test_classifier_head_dropped_for_other_class_count(tmp_path, caplog):
    path = write_released_checkpoint('lsnet_t_distill', tmp_path / 'distill.pth')
    state = released_state_dict('lsnet_t_distill')
    with caplog.at_level(logging.INFO, logger='lsnet'):
        model = timm.create_model('lsnet_t_distill', pretrained=True, num_classes=10,
                                  pretrained_cfg_overlay=dict(file=str(path)))
    assert model.head.l.weight.shape == (10, 384)
    torch.testing.assert_close(model.head.bn.weight, state['head.bn.weight'])
    torch.testing.assert_close(model.blocks4[3].ffn.m.pw1.c.weight, state['blocks4.3.ffn.m.pw1.c.weight'])
    assert 'head.l.weight' in caplog.text


def test_dense_backbone_from_detector_checkpoint(tmp_path):
    # mmdet/mmseg wrap the backbone under 'backbone.' beside neck and head keys.
    meta, outs = fixture('lsnet_t')
    state = released_state_dict('lsnet_t', outs['overrides'])
    wrapped = {f'backbone.{k}': v for k, v in state.items() if not k.startswith('head')}
    wrapped['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    path = tmp_path / 'retinanet.pth'
    torch.save({'state_dict': wrapped, 'meta': {'epoch': 12}}, path)
    x = seeded_input(meta['input'], meta['input_seed'])
    for prefix in ('backbone.', ''):  # explicit, or recognised automatically
        model = LSNetBackbone('t', out_indices=(3,), init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                            prefix=prefix))
        model.init_weights()
        with torch.no_grad():
            (feat,) = model.eval()(x)
        assert ((feat - outs['feats'][3]).norm() / outs['feats'][3].norm()) < 1e-4


def test_wrong_prefix_lists_available_ones(tmp_path):
    path = tmp_path / 'x.pth'
    torch.save({'state_dict': {'backbone.a': torch.zeros(1), 'neck.b': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=r"no keys under prefix 'model\.'.*backbone\."):
        LSNet('t', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='model.')).init_weights()


def test_bias_table_of_another_grid_is_resized(tmp_path):
    # The released detectors hold 14x14 attention-bias tables (heads, 196); ours is 4x4 at 224.
    state = released_state_dict('lsnet_t')
    for key in [k for k in state if k.endswith('attention_biases')]:
        state[key] = torch.full((4, 196), 0.25)
        state[key.replace('attention_biases', 'attention_bias_idxs')] = torch.zeros(196, 196, dtype=torch.long)
    path = tmp_path / 'dense_tables.pth'
    torch.save({'model': state}, path)
    model = LSNet('t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    attn = model.blocks4[3].mixer.m
    torch.testing.assert_close(attn.attention_biases, torch.full((4, 16), 0.25))
    assert attn.attention_bias_idxs.max() == 15  # the model's own index, not the file's


def test_mmpretrain_van_names(tmp_path):
    meta, outs = fixture('van_b0')
    state = released_state_dict('van_b0', outs['overrides'])
    renamed = {}
    for key, value in state.items():
        key = re.sub(r'^block(\d)\.', r'blocks\1.', key)
        key = key.replace('.conv0.', '.DW_conv.').replace('.conv_spatial.', '.DW_D_conv.')
        key = re.sub(r'^(patch_embed\d)\.proj\.', r'\1.projection.', key)
        key = key.replace('.mlp.dwconv.dwconv.', '.mlp.dwconv.')
        key = re.sub(r'^head\.', 'head.fc.', key)
        renamed['backbone.' + key if not key.startswith('head') else key] = value
    path = tmp_path / 'mmpretrain_van.pth'
    torch.save({'state_dict': renamed, 'meta': {}}, path)
    model = VANBackbone('b0', out_indices=(0, 1, 2, 3), init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    x = seeded_input(meta['feats_input'], meta['feats_input_seed'])
    with torch.no_grad():
        feats = model.eval()(x)
    for got, want in zip(feats, outs['feats']):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
