"""Released detection and segmentation checkpoints compute what the release computes.

The released dense LSNet (its ``detection/`` and ``segmentation/`` model files) differs from the
released classifier in one computation: stage 4's attention bias is built as the (heads, 196, 196)
matrix of a 14x14 grid and resized bicubically to (heads, N, N) for N tokens at every forward. This
module restates the released dense computation functionally, from the formulas of the released code
(backbone, LSNetFPN neck, RetinaNet / RPN heads, Semantic FPN head), runs it in float64 on seeded
weights in the released whole-model layout, and compares it with our model after the same file went
through ``tools/test.py``'s loading path, at sizes whose token grids are not 14x14.
"""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lsnet.models.lsnet import Attention, LSNet, LSNetBackbone
from reference_weights import fixture, released_state_dict, seeded_input, seeded_tensor, write_released_checkpoint

RELEASED_GRID = 14  # the released dense Attention's ``resolution``, whatever the image size


# -- the released dense computation, restated ------------------------------------------------------
def first_seen_offset_index(r: int) -> torch.Tensor:
    """The released ``attention_bias_idxs``: offsets (|dy|, |dx|) numbered in first-seen order."""
    points = list(itertools.product(range(r), range(r)))
    numbers, idxs = {}, []
    for p1 in points:
        for p2 in points:
            idxs.append(numbers.setdefault((abs(p1[0] - p2[0]), abs(p1[1] - p2[1])), len(numbers)))
    return torch.tensor(idxs).view(len(points), len(points))


def conv_bn(sd, key, x, stride=1, groups=1, eps=1e-5):
    weight = sd[f'{key}.c.weight']
    x = F.conv2d(x, weight, None, stride, weight.shape[-1] // 2, 1, groups)
    return F.batch_norm(x, sd[f'{key}.bn.running_mean'], sd[f'{key}.bn.running_var'], sd[f'{key}.bn.weight'],
                        sd[f'{key}.bn.bias'], False, 0.0, eps)


def depthwise(sd, key):
    return sd[f'{key}.c.weight'].shape[0]


def released_ska(x, w):
    """out[b, c, i, j] = sum_{u,v} x[b, c, i+u-1, j+v-1] * w[b, c mod G, 3u+v, i, j] (zero padding)."""
    b, c, h, wd = x.shape
    groups = w.shape[1]
    padded = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros_like(x)
    for u in range(3):
        for v in range(3):
            kernel = w[:, torch.arange(c) % groups, 3 * u + v]
            out = out + padded[:, :, u:u + h, v:v + wd] * kernel
    return out


def released_attention(sd, key, x, num_heads, key_dim=16):
    b, _, h, w = x.shape
    n = h * w
    nh_kd = key_dim * num_heads
    qkv = conv_bn(sd, f'{key}.qkv', x)
    dh = qkv.shape[1] - 2 * nh_kd
    q, k, v = qkv.split([nh_kd, nh_kd, dh], dim=1)
    q = conv_bn(sd, f'{key}.dw', q, groups=nh_kd)
    q, k, v = (t.reshape(b, num_heads, -1, n) for t in (q, k, v))
    attn = (q.transpose(-2, -1) @ k) * key_dim ** -0.5
    bias = sd[f'{key}.attention_biases'][:, sd[f'{key}.attention_bias_idxs']]
    bias = F.interpolate(bias.unsqueeze(0), size=(n, n), mode='bicubic')
    attn = (attn + bias).softmax(dim=-1)
    out = (v @ attn.transpose(-2, -1)).reshape(b, -1, h, w)
    return conv_bn(sd, f'{key}.proj.1', F.relu(out))


def released_backbone(sd, x, num_heads=(3, 3, 3, 4)):
    """The released dense LSNet in eval mode: the four stage maps."""
    x = F.relu(conv_bn(sd, 'patch_embed.0', x, stride=2))
    x = F.relu(conv_bn(sd, 'patch_embed.2', x, stride=2))
    x = conv_bn(sd, 'patch_embed.4', x, stride=2)
    feats = []
    for stage in range(4):
        prefix = f'blocks{stage + 1}'
        indices = sorted({int(k.split('.')[1]) for k in sd if k.startswith(prefix + '.')})
        first_block = 0
        if stage > 0:
            x = conv_bn(sd, f'{prefix}.0', x, stride=2, groups=depthwise(sd, f'{prefix}.0'))
            x = conv_bn(sd, f'{prefix}.1', x)
            first_block = 2
        for depth, index in enumerate(i for i in indices if i >= first_block):
            key = f'{prefix}.{index}'
            if depth % 2 == 0:
                dim = x.shape[1]
                x = conv_bn(sd, f'{key}.mixer.conv', x, groups=dim) + conv_bn(sd, f'{key}.mixer.conv1', x, groups=dim) + x
                gate = F.conv2d(x.mean((2, 3), keepdim=True), sd[f'{key}.se.fc1.weight'], sd[f'{key}.se.fc1.bias'])
                gate = F.conv2d(F.relu(gate), sd[f'{key}.se.fc2.weight'], sd[f'{key}.se.fc2.bias'])
                x = x * gate.sigmoid()
            elif stage == 3:
                x = x + released_attention(sd, f'{key}.mixer.m', x, num_heads[stage])
            else:
                lkp = f'{key}.mixer.lkp'
                half = x.shape[1] // 2
                t = F.relu(conv_bn(sd, f'{lkp}.cv1', x))
                t = F.relu(conv_bn(sd, f'{lkp}.cv3', conv_bn(sd, f'{lkp}.cv2', t, groups=half)))
                t = F.conv2d(t, sd[f'{lkp}.cv4.weight'], sd[f'{lkp}.cv4.bias'])
                groups = x.shape[1] // 8
                t = F.group_norm(t, groups, sd[f'{lkp}.norm.weight'], sd[f'{lkp}.norm.bias'])
                kernels = t.view(t.shape[0], groups, 9, *t.shape[-2:])
                bn = f'{key}.mixer.bn'
                x = F.batch_norm(released_ska(x, kernels), sd[f'{bn}.running_mean'], sd[f'{bn}.running_var'],
                                 sd[f'{bn}.weight'], sd[f'{bn}.bias'], False, 0.0, 1e-5) + x
            x = x + conv_bn(sd, f'{key}.ffn.m.pw2', F.relu(conv_bn(sd, f'{key}.ffn.m.pw1', x)))
        feats.append(x)
    return feats


def conv(sd, key, x, stride=1, transposed=False):
    weight, bias = sd[f'{key}.weight'], sd.get(f'{key}.bias')
    if transposed:
        return F.conv_transpose2d(x, weight, bias, stride)
    return F.conv2d(x, weight, bias, stride, weight.shape[-1] // 2)


def released_neck(sd, feats, num_outs, extra_conv_on_input, trans_convs):
    """The released LSNetFPN (mmdet FPN plus transposed-conv levels in front); no norm, no activation."""
    laterals = [conv(sd, f'neck.lateral_convs.{i}.conv', f) for i, f in enumerate(feats)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode='nearest')
    extra = []
    source = laterals[0]
    for i in range(trans_convs):
        source = conv(sd, f'neck.extra_trans_convs.{i}.conv', source, stride=2, transposed=True)
        extra.insert(0, source)
    outs = [conv(sd, f'neck.fpn_convs.{i}.conv', lat) for i, lat in enumerate(laterals)]
    while len(outs) + trans_convs < num_outs:
        if extra_conv_on_input:
            outs.append(conv(sd, f'neck.fpn_convs.{len(outs)}.conv', feats[-1], stride=2))
        else:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    extra_outs = [conv(sd, f'neck.extra_fpn_convs.{i}.conv', e) for i, e in enumerate(extra)]
    return extra_outs + outs


def released_retina_head(sd, feats):
    cls_scores, bbox_preds = [], []
    for x in feats:
        c, r = x, x
        for i in range(4):
            c = F.relu(conv(sd, f'bbox_head.cls_convs.{i}.conv', c))
            r = F.relu(conv(sd, f'bbox_head.reg_convs.{i}.conv', r))
        cls_scores.append(conv(sd, 'bbox_head.retina_cls', c))
        bbox_preds.append(conv(sd, 'bbox_head.retina_reg', r))
    return cls_scores + bbox_preds


def released_rpn_head(sd, feats):
    hidden = [F.relu(conv(sd, 'rpn_head.rpn_conv', x)) for x in feats]
    return [conv(sd, 'rpn_head.rpn_cls', h) for h in hidden] + [conv(sd, 'rpn_head.rpn_reg', h) for h in hidden]


def released_sem_fpn_head(sd, feats, strides, image_size):
    """mmseg's FPNHead (3x3 conv-BN-ReLU stacks, x2 bilinear steps up to stride 8, summed, 1x1
    classifier), resized to the input as EncoderDecoder does in inference."""
    output = None
    for i, x in enumerate(feats):
        steps = max(1, int(math.log2(strides[i]) - math.log2(strides[0])))
        for j in range(steps):
            key = f'decode_head.scale_heads.{i}.{2 * j if strides[i] != strides[0] else j}'
            x = F.relu(F.batch_norm(conv(sd, f'{key}.conv', x), sd[f'{key}.bn.running_mean'],
                                    sd[f'{key}.bn.running_var'], sd[f'{key}.bn.weight'], sd[f'{key}.bn.bias'],
                                    False, 0.0, 1e-5))
            if strides[i] != strides[0]:
                x = F.interpolate(x, size=[2 * s for s in x.shape[-2:]], mode='bilinear', align_corners=False)
        output = x if output is None else output + F.interpolate(x, size=output.shape[2:], mode='bilinear',
                                                                  align_corners=False)
    logits = conv(sd, 'decode_head.conv_seg', output)
    return [F.interpolate(logits, size=image_size, mode='bilinear', align_corners=False)]


# -- files in the released layout -------------------------------------------------------------------
def released_dense_backbone_state(name: str = 'lsnet_t') -> dict:
    """The released dense backbone's state dict (no classifier; 14x14 bias tables and index), seeded,
    with the parity fixture's calibrated BatchNorm statistics so that activations stay O(1) and the
    attention logits, like the bias tables (std 1, as in trained models), are not saturated."""
    _, outs = fixture(name)
    state = {k: v for k, v in released_state_dict(name, outs['overrides']).items() if not k.startswith('head')}
    for key in [k for k in state if k.endswith('attention_biases')]:
        state[key] = RELEASED_GRID * seeded_tensor(key + '.dense', [state[key].shape[0], RELEASED_GRID ** 2])
        state[key.replace('attention_biases', 'attention_bias_idxs')] = first_seen_offset_index(RELEASED_GRID)
    return state


def write_released_whole_model(model, path) -> dict:
    """Seeded weights in the released whole-model layout, saved as mmcv 1.x saved them."""
    state = {f'backbone.{k}': v for k, v in released_dense_backbone_state().items()}
    for key, value in model.state_dict().items():
        if not key.startswith('backbone.'):
            state[key] = seeded_tensor(key, list(value.shape)) if value.is_floating_point() else torch.zeros_like(value)
    torch.save({'meta': {'mmdet_version': '2.28.2', 'CLASSES': None}, 'state_dict': state, 'optimizer': {}}, path)
    return {k: v.double() if v.is_floating_point() else v for k, v in state.items()}


def assert_all_close(ours, released, rtol=1e-9):
    assert len(ours) == len(released)
    for index, (a, b) in enumerate(zip(ours, released)):
        assert a.shape == b.shape, (index, a.shape, b.shape)
        scale = b.abs().max().item()
        err = (a - b).abs().max().item()
        assert err <= rtol * scale, f'output {index}: max error {err:.3g} against scale {scale:.3g}'


# -- the checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize('size', [(192, 256), (512, 683), (800, 1067)])
def test_dense_backbone_computes_the_released_dense_backbone(size):
    """The dense configs' backbone, loaded with a released dense state dict, gives the released stage
    maps to float64 rounding at grids other than 14x14 (3x4, 8x11, 13x17 tokens)."""
    from lsnet.mm.build import build_model_from_config
    from mm_helpers import ROOT
    pytest.importorskip('mmdet')
    model, _ = build_model_from_config(ROOT / 'configs/retinanet/retinanet_lsnet-t_fpn_1x_coco.py', pretrained=False)
    backbone = model.backbone
    state = released_dense_backbone_state()
    backbone.load_state_dict(LSNet.checkpoint_filter_fn(state, backbone))
    backbone = backbone.double().eval()
    x = seeded_input((1, 3, *size), seed=3).double()
    with torch.no_grad():
        ours = backbone(x)
        released = released_backbone({k: v.double() if v.is_floating_point() else v for k, v in state.items()}, x)
    assert ours[-1].shape[-2:] != (RELEASED_GRID, RELEASED_GRID)
    assert_all_close(ours, released)
    # the offset-table form is the other choice, and it is a different computation off the 14x14 grid
    attentions = [m for m in backbone.modules() if isinstance(m, Attention)]
    assert len(attentions) == 5
    for attention in attentions:
        attention.bias_resize = 'table'
    with torch.no_grad():
        table_form = backbone(x)[-1]
    assert (table_form - released[-1]).abs().max() > 1e-3


WHOLE_MODELS = [
    ('retinanet/retinanet_lsnet-t_fpn_1x_coco.py', 'retinanet'),
    ('mask_rcnn/mask-rcnn_lsnet-t_fpn_1x_coco.py', 'mask_rcnn'),
    ('sem_fpn/fpn_lsnet-t_40k_ade20k.py', 'sem_fpn'),
]


@pytest.mark.parametrize('config,kind', WHOLE_MODELS, ids=[k for _, k in WHOLE_MODELS])
def test_released_whole_model_file_computes_the_released_outputs(tmp_path, config, kind):
    """A released-layout RetinaNet / Mask R-CNN / Semantic FPN file, loaded as ``tools/test.py`` loads
    it into the shipped config's model, gives the released network outputs in float64 at 192x256
    and 320x448 (token grids 3x4 and 5x7): RetinaNet's class and box maps; Mask R-CNN's neck maps and
    RPN maps (its RoI heads are mmdet's own, fed by these maps); Semantic FPN's logits at the input size."""
    pytest.importorskip('mmdet')
    pytest.importorskip('mmseg')
    from lsnet.checkpoint import load_model_checkpoint
    from lsnet.mm.build import build_model_from_config
    from mm_helpers import ROOT
    model, _ = build_model_from_config(ROOT / 'configs' / config, pretrained=False)
    path = tmp_path / f'lsnet_t_{kind}.pth'
    state = write_released_whole_model(model, path)
    backbone_state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    load_model_checkpoint(model, path)
    model = model.double().eval()
    for size in [(192, 256), (320, 448)]:
        x = seeded_input((1, 3, *size), seed=4).double()
        with torch.no_grad():
            feats = model.extract_feat(x)
            released_feats = released_backbone(backbone_state, x)
            if kind == 'retinanet':
                ours = list(sum(model.bbox_head(feats), []))
                released = released_retina_head(state, released_neck(state, released_feats, 5, True, 0))
            elif kind == 'mask_rcnn':
                ours = list(feats) + list(sum(model.rpn_head(feats), []))
                neck = released_neck(state, released_feats, 5, False, 1)
                released = neck + released_rpn_head(state, neck)
            else:
                meta = [dict(img_shape=size, ori_shape=size, pad_shape=size)]
                ours = [model.encode_decode(x, meta)]
                neck = released_neck(state, released_feats, 4, False, 0)
                released = released_sem_fpn_head(state, neck, (8, 16, 32, 64), size)
        assert_all_close(ours, released)


def test_pretrained_classifier_tables_are_resized_as_the_release_does(tmp_path):
    """``init_cfg`` at a released ImageNet checkpoint: each stage-4 (heads, 16) table becomes the dense
    model's (heads, 196) by bicubic resizing of the 4x4 offset map, the released dense init_weights."""
    path = write_released_checkpoint('lsnet_t', tmp_path / 'lsnet_t.pth')
    source = released_state_dict('lsnet_t')
    backbone = LSNetBackbone('t', out_indices=(0, 1, 2, 3), attention_resolution=RELEASED_GRID,
                     attention_bias_resize='matrix', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    tables = {k: v for k, v in backbone.state_dict().items() if k.endswith('attention_biases')}
    assert len(tables) == 5
    for key, table in tables.items():
        heads = source[key].shape[0]
        expected = F.interpolate(source[key].view(1, heads, 4, 4), size=(RELEASED_GRID, RELEASED_GRID),
                                 mode='bicubic').view(heads, -1)
        torch.testing.assert_close(table, expected, rtol=0, atol=0)


def test_exported_dense_backbone_computes_the_released_dense_backbone(tmp_path):
    """The ONNX export of the dense backbone keeps the matrix resize in the graph: onnxruntime at two
    sizes (grids 3x4 and 8x11) is as close to the released float64 stage maps as our float32 PyTorch
    model is, within a factor of three (float32 rounding is all that separates them: these seeded
    weights amplify it in stage 4, and the two runtimes sum in different orders)."""
    ort = pytest.importorskip('onnxruntime')
    from lsnet.deploy import export_onnx
    backbone = LSNetBackbone('t', out_indices=(0, 1, 2, 3), attention_resolution=RELEASED_GRID,
                     attention_bias_resize='matrix')
    state = released_dense_backbone_state()
    backbone.load_state_dict(LSNet.checkpoint_filter_fn(state, backbone))
    path = export_onnx(backbone, tmp_path / 'backbone.onnx', input_size=(160, 224))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    double_state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    for size in [(192, 256), (512, 683)]:
        x = seeded_input((1, 3, *size), seed=5)
        outs = [torch.from_numpy(o).double() for o in session.run(None, {'images': x.numpy()})]
        with torch.no_grad():
            released = released_backbone(double_state, x.double())
            float32 = [f.double() for f in backbone.eval()(x)]
        assert_all_close(outs, released, rtol=1e-2)
        for index, (exported, eager, want) in enumerate(zip(outs, float32, released)):
            exported_err, eager_err = (exported - want).abs().max(), (eager - want).abs().max()
            assert exported_err <= 3 * eager_err + 1e-5 * want.abs().max(), (size, index, exported_err, eager_err)


def test_shipped_lsnet_coco_configs_pad_as_the_release_did():
    """The released COCO pipelines pad to a multiple of 32 (``Pad(size_divisor=32)``); padding moves
    the maps and the boxes near the border, so the shipped LSNet detectors pad the same."""
    from mmengine.config import Config
    from mm_helpers import ROOT
    pytest.importorskip('mmdet')
    configs = sorted((ROOT / 'configs').glob('*/*_lsnet-*_fpn_1x_coco.py'))
    assert len(configs) == 6
    for path in configs:
        cfg = Config.fromfile(str(path))
        assert cfg.model.data_preprocessor.pad_size_divisor == 32, path.name
        assert cfg.model.backbone.attention_bias_resize == 'matrix', path.name
