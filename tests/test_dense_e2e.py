"""End to end on CPU: the real configs (data swapped for the synthetic set) through our tools."""
import json
import re
import sys

import pytest
import torch

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

from mm_helpers import ITERS, ROOT, det_overrides, expect_tool_failure, logged_losses, run_tool, write_override  # noqa: E402
from reference_weights import released_state_dict  # noqa: E402


@pytest.fixture(scope='module')
def shapes(shared_runs):
    return shared_runs.data()


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
def test_train_then_test(shared_runs, config, kind, metric):
    """Each config trained (through the session's shared run, which the deployment tests export) and
    evaluated with its toolbox's metric; a second training into the same work dir refuses."""
    run = shared_runs.run(config, kind)
    losses = logged_losses(run.work)
    assert len(losses) == ITERS and all(map(lambda v: v == v and abs(v) < 1e4, losses)), losses
    assert sum(losses[-3:]) < sum(losses[:3]), f'loss did not decrease: {losses}'
    assert run.checkpoint.is_file()
    assert metric in run.metrics and 0.0 <= run.metrics[metric] <= 100.0, run.metrics
    # a second training into the same work dir must not overwrite the checkpoints silently
    expect_tool_failure(['tools/train.py', str(run.cfg), '--work-dir', str(run.work)], 'already holds checkpoints')


@pytest.mark.slow
def test_load_from_starts_from_the_loaded_neck_and_head(tmp_path, shared_runs):
    """Fine-tuning from a whole-detector checkpoint (``load_from``) starts from its weights: the runner's
    weight initialisation (the neck's and head's init_cfg) runs before the strict load, never after it.
    With lr 0, one iteration leaves every convolution as loaded."""
    run = shared_runs.run('retinanet/retinanet_lsnet-t_fpn_shapes.py', 'det')
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(run.cfg), '--work-dir', str(work), '--cfg-options', f'load_from={run.checkpoint}',
              'optim_wrapper.optimizer.lr=0.0', 'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
              'default_hooks.checkpoint.interval=1'])
    loaded = torch.load(run.checkpoint, weights_only=False)['state_dict']
    after = torch.load(work / 'iter_1.pth', weights_only=False)['state_dict']
    convs = [k for k, v in loaded.items() if v.dim() == 4]
    assert any(k.startswith('bbox_head.') for k in convs) and any(k.startswith('neck.') for k in convs)
    changed = [k for k in convs if not torch.equal(after[k], loaded[k])]
    assert not changed, changed[:5]


@pytest.mark.slow
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


@pytest.mark.slow
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
