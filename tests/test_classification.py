"""ImageNet-style pretraining on the synthetic class folders, and the hand-over to detection."""
import json

import pytest
import timm
import torch

pytestmark = pytest.mark.slow  # every test here runs the project's tools
pytest.importorskip('mmengine')

from lsnet.datasets import generate_shapes  # noqa: E402

from mm_helpers import ROOT, expect_tool_failure, logged_losses, run_tool, write_override  # noqa: E402
from reference_weights import write_released_checkpoint  # noqa: E402


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('cls')
    generate_shapes(root, ('imagenet',), num_train=400, num_val=80, cls_size=64)
    return root / 'imagenet'


def overrides(root, epochs: int, extra: str = '') -> str:
    # Light augmentation so that a CPU minute shows learning; the recipe's pieces are all used.
    return f'''
        train_dataloader = dict(batch_size=16, num_workers=0,
                                dataset=dict(data_root='{root}', transform=dict(input_size=64, auto_augment=None,
                                                                                 re_prob=0.0, scale=(0.8, 1.0))))
        val_dataloader = dict(batch_size=20, num_workers=0, dataset=dict(data_root='{root}',
                                                                        transform=dict(input_size=64)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=64), mixup=None)
        custom_hooks = [dict(type='EMAHook', momentum=0.05, priority='ABOVE_NORMAL')]
        train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
        optim_wrapper = dict(optimizer=dict(lr=1e-3))
        param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={epochs})]
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={epochs}))
        log_processor = dict(window_size=1)
        {extra}
    '''


@pytest.fixture(scope='module')
def trained(folders, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls_run')
    cfg = write_override(tmp, 'classification/lsnet-t_shapes.py', overrides(folders, 6))
    work = tmp / 'work'
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work)])
    return cfg, work


def test_training_learns(trained):
    cfg, work = trained
    losses = logged_losses(work)
    assert len(losses) >= 140
    assert sum(losses[-25:]) / 25 < sum(losses[:25]) / 25 - 0.05, losses
    scalars = (next(work.glob('*/vis_data/scalars.json'))).read_text().splitlines()
    top1 = [json.loads(line)['top1'] for line in scalars if 'top1' in line]
    assert top1 and top1[-1] > 30.0, top1  # 4 classes: chance is 25%


def test_checkpoint_holds_ema_and_evaluates(trained, tmp_path):
    cfg, work = trained
    checkpoint = work / 'epoch_6.pth'
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert 'ema_state_dict' in state and any(k.startswith('backbone.') for k in state['state_dict'])
    out = tmp_path / 'metrics.json'
    # top-5 of 4 classes is 100% whatever the model does: ask for top-1 and top-2
    run_tool(['tools/test.py', str(cfg), str(checkpoint), '--work-dir', str(tmp_path / 't'), '--out', str(out),
              '--cfg-options', 'test_evaluator.topk=[1,2]'])
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'top1', 'top2'}, metrics
    assert 30.0 < metrics['top1'] <= metrics['top2'], metrics  # learned: chance is 25%


@pytest.mark.parametrize('suffix,runtime,needs', [('.onnx', 'onnxruntime', ('onnxruntime',)),
                                                   ('.xml', 'openvino', ('openvino', 'nncf'))])
def test_export_and_int8_evaluate_like_pytorch(suffix, runtime, needs, trained, tmp_path):
    """``tools/deploy.py`` writes the fp32 and INT8 classifiers for the runtime the suffix names in one
    command (INT8 calibrated on the training images: onnxruntime's quantizer or NNCF) and its accuracy
    gate passes the INT8 one (bound 5 points here); ``tools/test.py`` runs both in that runtime with
    the same TopKAccuracy: fp32 top-1 within 0.2 points of PyTorch's, INT8 within 5 (on 80 images one
    image is 1.25 points)."""
    for module in needs:
        pytest.importorskip(module)
    cfg, work = trained
    checkpoint = work / 'epoch_6.pth'
    exported = tmp_path / f'lsnet_t_shapes{suffix}'
    result = run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(exported), '--size', '64', '64', '--int8',
                       '--calib-images', '16', '--int8-max-drop', '5'])
    assert f'classifier: {runtime} vs PyTorch at 96x128: max difference' in result.stdout
    assert 'INT8 top1 ' in result.stdout and 'bound 5' in result.stdout  # the gate ran, and passed
    top1 = []
    for model_file in (checkpoint, exported, tmp_path / f'lsnet_t_shapes.int8{suffix}'):
        out = tmp_path / f'{model_file.name}.json'
        result = run_tool(['tools/test.py', str(cfg), str(model_file), '--work-dir', str(tmp_path / 't'),
                           '--out', str(out)])
        assert (f'running {model_file} in {runtime}' in result.stdout) == (model_file.suffix == suffix)
        top1.append(json.loads(out.read_text())['top1'])
    torch_top1, fp32_top1, int8_top1 = top1
    assert torch_top1 > 30.0
    assert fp32_top1 == pytest.approx(torch_top1, abs=0.2)
    assert int8_top1 == pytest.approx(torch_top1, abs=5.0)


def test_checkpoint_initialises_detector_backbone(trained):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import lsnet  # noqa: F401
    _, work = trained
    checkpoint = work / 'epoch_6.pth'
    cfg = Config.fromfile(str(ROOT / 'configs/retinanet/retinanet_lsnet-t_fpn_shapes.py'))
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(checkpoint))
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    saved = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    backbone = detector.backbone.state_dict()
    for key, value in backbone.items():
        if key.endswith('attention_biases') or key.endswith('attention_bias_idxs'):
            continue  # resized from the 2x2 training grid to the detector's 14x14 table
        torch.testing.assert_close(value, saved[f'backbone.{key}'], msg=key)


def test_export_to_released_layout(trained, tmp_path):
    _, work = trained
    out = tmp_path / 'lsnet_t_shapes.pth'
    run_tool(['tools/export_backbone.py', str(work / 'epoch_6.pth'), str(out)])
    model = timm.create_model('lsnet_t', pretrained=True, num_classes=4, img_size=64,
                              pretrained_cfg_overlay=dict(file=str(out)))
    saved = torch.load(out, weights_only=True)['model']
    torch.testing.assert_close(model.head.l.weight, saved['head.l.weight'])
    expect_tool_failure(['tools/export_backbone.py', str(work / 'epoch_6.pth'), str(out)], 'exists')


def test_distillation_with_tiny_teacher(folders, tmp_path):
    extra = "model = dict(backbone=dict(model_name='lsnet_t_distill'), teacher=dict(model='test_resnet', checkpoint=None))"
    body = overrides(folders, 1, extra).replace("model = dict(backbone=dict(img_size=64), mixup=None)",
                                                "model = dict(backbone=dict(img_size=64), mixup=None)\n")
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', body)
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work), '--cfg-options',
              'train_dataloader.dataset.transform.input_size=64'])
    scalars = next(work.glob('*/vis_data/scalars.json')).read_text()
    assert 'loss_distill' in scalars and 'loss_cls' in scalars


def test_released_classifier_checkpoint_evaluates(folders, tmp_path):
    # a file laid out as the released lsnet_t.pth ({'model': sd}, 1000 classes) on a 1000-class config
    path = write_released_checkpoint('lsnet_t', tmp_path / 'lsnet_t.pth')
    body = overrides(folders, 1).replace("model = dict(backbone=dict(img_size=64), mixup=None)",
                                         "model = dict(backbone=dict(img_size=224, num_classes=1000), mixup=None)")
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', body)
    out = tmp_path / 'm.json'
    run_tool(['tools/test.py', str(cfg), str(path), '--work-dir', str(tmp_path / 't'), '--out', str(out)])
    assert 'top1' in json.loads(out.read_text())
