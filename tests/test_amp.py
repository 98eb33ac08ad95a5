"""Mixed precision for every shipped config: ``--amp`` picks bf16 autocast on CPU and fp16 with loss
scaling on a GPU, and adaptive gradient clipping (the classification recipe) survives either."""
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import lsnet  # noqa: E402,F401
from lsnet.mm.build import build_model_from_config  # noqa: E402
from lsnet.mm.optim import AutocastOptimWrapper, enable_amp  # noqa: E402

from mm_helpers import ROOT, fast_tier, run_tool, write_override  # noqa: E402

CONFIGS = sorted(str(p.relative_to(ROOT)) for folder in ('classification', 'retinanet', 'mask_rcnn', 'sem_fpn')
                 for p in (ROOT / 'configs' / folder).glob('*.py'))
# `make test-fast` runs the LSNet-T and VAN-B0 configs of each task, `make test` all of them
FAST_CONFIGS = [c for c in CONFIGS if 'lsnet-t' in c or 'van-b0' in c]


def build(cfg: Config):
    model, cfg = build_model_from_config(cfg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, wrapper


def synthetic_batch(cfg: Config, model) -> dict:
    scope = cfg.default_scope
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        head = cfg.model.get('bbox_head') or cfg.model.roi_head.bbox_head
        return demo_mm_inputs(2, [(3, 128, 160)] * 2, num_items=[3, 3], num_classes=head.num_classes,
                              with_mask='mask_rcnn' in cfg.filename)
    if scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(2):
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(data=torch.randint(0, cfg.model.decode_head.num_classes, (1, 128, 128)))
            sample.set_metainfo(dict(img_shape=(128, 128), ori_shape=(128, 128), pad_shape=(128, 128)))
            samples.append(sample)
        return dict(inputs=[torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8) for _ in range(2)],
                    data_samples=samples)
    return dict(inputs=torch.randn(4, 3, 64, 64), data_samples=torch.tensor([0, 1, 2, 3]))


@pytest.mark.parametrize('path', fast_tier(CONFIGS, FAST_CONFIGS))
def test_every_config_builds_and_trains_an_iteration_under_amp_on_cpu(path):
    cfg = Config.fromfile(str(ROOT / path))
    cfg.model.backbone.init_cfg = None
    if cfg.default_scope == 'mmengine':  # classification: plain batch, no mixup for 4 samples
        cfg.model.mixup = None
        if 'lsnet' in path:  # LSNet's attention grid follows the training size; VAN has none
            cfg.model.backbone.img_size = 64
        cfg.model.backbone.num_classes = 4
        cfg.model.pop('teacher', None)
    expects_agc = cfg.optim_wrapper.get('agc_clip')
    assert enable_amp(cfg.optim_wrapper, cuda=False).endswith('AutocastOptimWrapper')
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    model, wrapper = build(cfg)
    assert isinstance(wrapper, AutocastOptimWrapper)
    assert getattr(wrapper, 'agc_clip', None) == expects_agc  # AGC kept under AMP
    if 'mask_rcnn' in path:
        # mmcv's CPU NMS (used by the RPN while training) has float32 kernels only; bf16 boxes fail
        # there, so two-stage detectors train under --amp on GPUs (fp16), and build here.
        return
    model.train()
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    seen = []
    hook = model.backbone.register_forward_hook(
        lambda module, args, out: seen.append(torch.is_autocast_enabled('cpu')))
    log = model.train_step(synthetic_batch(cfg, model), wrapper)
    hook.remove()
    assert seen == [True], 'the backbone did not run under CPU autocast'
    assert all(torch.isfinite(torch.as_tensor(v)).all() for k, v in log.items() if 'loss' in k), log
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), 'no parameter was updated'


@pytest.mark.parametrize('path', ['classification/lsnet-t_8xb256_in1k.py', 'retinanet/retinanet_lsnet-t_fpn_1x_coco.py',
                                  'sem_fpn/fpn_van-b0_40k_ade20k.py'])
def test_gpu_amp_wrapper_builds_and_keeps_agc(path, monkeypatch):
    # Building needs only that MMEngine believes a GPU is there; no kernel runs.
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    cfg = Config.fromfile(str(ROOT / 'configs' / path))
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('teacher', None)
    assert enable_amp(cfg.optim_wrapper, cuda=True) == 'AmpOptimWrapper'
    _, wrapper = build(cfg)
    assert isinstance(wrapper, AmpOptimWrapper)
    assert getattr(wrapper, 'agc_clip', None) == (0.02 if 'classification' in path else None)


def test_agc_clips_the_unscaled_gradient():
    """The clip runs right before optimizer.step, after a loss scaler has unscaled the gradients."""
    from mmengine.optim import OptimWrapper
    layer = torch.nn.Linear(4, 4, bias=False)
    torch.nn.init.constant_(layer.weight, 0.5)
    cfg = dict(type='OptimWrapper', constructor='AdaptiveGradClipConstructor', agc_clip=0.01,
               optimizer=dict(type='SGD', lr=1.0))
    wrapper = build_optim_wrapper(layer, cfg)
    assert type(wrapper) is OptimWrapper
    loss = (layer(torch.full((1, 4), 100.0)) ** 2).sum() * 1000.0  # a huge gradient
    wrapper.update_params(loss)
    # AGC bounds each output unit's update to clip_factor * its weight norm (here 0.01 * 1.0)
    change = (layer.weight.detach() - 0.5).norm(dim=1)
    assert torch.all(change <= 0.01 * 1.0 + 1e-6) and torch.all(change > 0.009), change
    with pytest.raises(ValueError, match='agc_clip'):
        build_optim_wrapper(layer, dict(cfg, agc_clip=0))


@pytest.mark.slow
def test_train_tool_with_amp_on_classification(tmp_path):
    from lsnet.datasets import generate_shapes
    generate_shapes(tmp_path, ('imagenet',), num_train=32, num_val=8, cls_size=48)
    root = tmp_path / 'imagenet'
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', f'''
        train_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root='{root}',
                                transform=dict(input_size=48, auto_augment=None, re_prob=0.0)))
        val_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root='{root}',
                              transform=dict(input_size=48)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=48), mixup=None)
        train_cfg = dict(max_epochs=1, val_interval=1)
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
    ''')
    result = run_tool(['tools/train.py', str(cfg), '--amp', '--work-dir', str(tmp_path / 'work')])
    assert 'optim_wrapper SkipNonFinite' not in result.stdout
    assert '--amp: optim_wrapper AutocastOptimWrapper' in result.stdout
    assert list((tmp_path / 'work').glob('epoch_1.pth'))
