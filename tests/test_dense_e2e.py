"""End to end on CPU: the real configs (data swapped for the synthetic set) through our tools."""
import json
import re
import sys

import pytest
import torch

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from lsnet.datasets import generate_shapes  # noqa: E402

from mm_helpers import ROOT, expect_tool_failure, logged_losses, run_tool, write_override  # noqa: E402
from reference_weights import released_state_dict  # noqa: E402

ITERS = 8


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes(root, ('coco', 'ade'), num_train=12, num_val=4, image_size=(128, 160), max_objects=3)
    return root


def det_overrides(shapes_root, masks: bool) -> str:
    coco = f'{shapes_root}/coco/'
    # After a few iterations no score passes the usual 0.05 threshold: keep every detection.
    test_cfg = "dict(rcnn=dict(score_thr=0.0))" if masks else "dict(score_thr=0.0)"
    return f'''
        model = dict(test_cfg={test_cfg})
        train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        val_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file='{coco}annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
        param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end={ITERS})]
        optim_wrapper = dict(optimizer=dict(lr=2e-4))
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={ITERS}),
                             visualization=dict(draw=False))
        log_processor = dict(window_size=1)
        randomness = dict(seed=0)
    '''


def seg_overrides(shapes_root) -> str:
    ade = f'{shapes_root}/ade'
    return f'''
        train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{ade}'))
        val_dataloader = dict(num_workers=0, dataset=dict(data_root='{ade}'))
        test_dataloader = val_dataloader
        train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
        param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end={ITERS})]
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={ITERS}))
        log_processor = dict(window_size=1)
        randomness = dict(seed=0)
    '''


CASES = [
    ('retinanet/retinanet_lsnet-t_fpn_shapes.py', 'det', 'coco/bbox_mAP'),
    ('retinanet/retinanet_van-b0_fpn_shapes.py', 'det', 'coco/bbox_mAP'),
    ('mask_rcnn/mask-rcnn_lsnet-t_fpn_shapes.py', 'ins', 'coco/segm_mAP'),
    ('mask_rcnn/mask-rcnn_van-b0_fpn_shapes.py', 'ins', 'coco/segm_mAP'),
    ('sem_fpn/fpn_lsnet-t_shapes.py', 'seg', 'mIoU'),
    ('sem_fpn/fpn_van-b0_shapes.py', 'seg', 'mIoU'),
]


@pytest.mark.slow
@pytest.mark.parametrize('config,kind,metric', CASES, ids=[c[0].split('/')[1][:-3] for c in CASES])
def test_train_then_test(tmp_path, shapes, config, kind, metric):
    body = seg_overrides(shapes) if kind == 'seg' else det_overrides(shapes, kind == 'ins')
    cfg = write_override(tmp_path, config, body)
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work)])
    losses = logged_losses(work)
    assert len(losses) == ITERS and all(map(lambda v: v == v and abs(v) < 1e4, losses)), losses
    assert sum(losses[-3:]) < sum(losses[:3]), f'loss did not decrease: {losses}'
    checkpoint = work / f'iter_{ITERS}.pth'
    assert checkpoint.is_file()
    out = tmp_path / 'metrics.json'
    run_tool(['tools/test.py', str(cfg), str(checkpoint), '--work-dir', str(tmp_path / 'test'), '--out', str(out)])
    metrics = json.loads(out.read_text())
    assert metric in metrics and 0.0 <= metrics[metric] <= 100.0, metrics
    # a second training into the same work dir must not overwrite the checkpoints silently
    expect_tool_failure(['tools/train.py', str(cfg), '--work-dir', str(work)], 'already holds checkpoints')


def test_released_retinanet_layout_evaluates(tmp_path, shapes):
    """A file laid out like the papers' mmdet 2.x RetinaNet checkpoint (backbone with 14x14 bias
    tables from the released layout, neck and head names) loads with no key left over or missing."""
    from lsnet.mm.build import build_model_from_config
    model, _ = build_model_from_config(ROOT / 'configs/retinanet/retinanet_lsnet-t_fpn_shapes.py')
    state = {f'backbone.{k}': v for k, v in released_state_dict('lsnet_t').items() if not k.startswith('head')}
    for key in [k for k in state if k.endswith('attention_biases')]:
        state[key] = torch.randn(4, 196)
        state[key.replace('attention_biases', 'attention_bias_idxs')] = torch.zeros(196, 196, dtype=torch.long)
    state.update({k: 0.01 * torch.randn_like(v) for k, v in model.state_dict().items() if not k.startswith('backbone.')})
    path = tmp_path / 'retinanet_lsnet_t_released.pth'
    torch.save({'meta': {'mmdet_version': '2.28.2'}, 'state_dict': state}, path)
    out = tmp_path / 'metrics.json'
    cfg_path = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', det_overrides(shapes, False))
    result = run_tool(['tools/test.py', str(cfg_path), str(path), '--work-dir', str(tmp_path / 'w'), '--out', str(out)])
    assert 'coco/bbox_mAP' in json.loads(out.read_text())
    assert not re.search(r'missing keys|unexpected key', result.stdout + result.stderr)


def test_mismatched_checkpoint_is_refused(tmp_path, shapes):
    path = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.patch_embed.0.c.weight': torch.zeros(1)}}, path)
    cfg_path = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', det_overrides(shapes, False))
    expect_tool_failure(['tools/test.py', str(cfg_path), str(path), '--work-dir', str(tmp_path / 'w')], 'missing keys')


@pytest.mark.slow
@pytest.mark.serial
def test_ddp_two_processes_stay_in_sync(tmp_path, shapes):
    body = det_overrides(shapes, False).replace(f'max_iters={ITERS}', 'max_iters=3').replace(
        f'interval={ITERS})', 'interval=3)') + "\n        custom_hooks = [dict(type='RankConsistencyHook')]\n"
    cfg = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', body)
    work = tmp_path / 'ddp'
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29611']
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work), '--launcher', 'pytorch',
              '--cfg-options', 'train_cfg.val_interval=100'], launcher=launcher)
    report = json.loads((work / 'rank_consistency.json').read_text())
    assert report['world_size'] == 2
    assert report['stats'][0] == pytest.approx(report['stats'][1], rel=1e-9)
