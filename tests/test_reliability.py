"""Interrupted runs resume exactly, checkpoints are never half-written, bad input fails clearly."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip('mmdet')

import lsnet  # noqa: E402,F401
import lsnet.mm.install_safety  # noqa: E402,F401  (what the configs' custom_imports do)
import lsnet.detection  # noqa: E402,F401  (what the detection configs import: the COCO checks)
import lsnet.segmentation  # noqa: E402,F401  (the label-map checks)
from lsnet.datasets import generate_shapes  # noqa: E402
from lsnet.checkpoint import atomic_write  # noqa: E402
from lsnet.mm.workdir import find_resumable_checkpoint, validation_at  # noqa: E402

from mm_helpers import ROOT, THREADS, expect_tool_failure, run_tool, write_override  # noqa: E402


# -- atomic checkpoints ----------------------------------------------------------------------------------
def test_atomic_write_keeps_old_file_on_crash(tmp_path, monkeypatch):
    target = tmp_path / 'latest.pth'
    atomic_write(b'good', target)

    def crash(*_):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        atomic_write(b'x' * 1000, target)
    assert target.read_bytes() == b'good'
    assert [p.name for p in tmp_path.iterdir()] == ['latest.pth']  # no temporary left behind


def test_mmengine_checkpoints_go_through_atomic_backend(tmp_path):
    from mmengine.runner.checkpoint import save_checkpoint
    from lsnet.mm.safe_io import AtomicLocalBackend
    from mmengine.fileio import get_file_backend
    assert isinstance(get_file_backend(str(tmp_path / 'a.pth')), AtomicLocalBackend)
    save_checkpoint({'state_dict': {'w': torch.ones(2)}, 'meta': {}}, str(tmp_path / 'a.pth'))
    assert torch.load(tmp_path / 'a.pth', weights_only=True)['state_dict']['w'].sum() == 2


def test_resume_candidate_skips_truncated_checkpoint(tmp_path, caplog):
    good = {'state_dict': {'w': torch.ones(1)}, 'meta': {'iter': 4}}
    torch.save(good, tmp_path / 'iter_4.pth')
    time.sleep(0.01)
    torch.save({'state_dict': {'w': torch.ones(1000)}, 'meta': {'iter': 8}}, tmp_path / 'iter_8.pth')
    data = (tmp_path / 'iter_8.pth').read_bytes()
    (tmp_path / 'iter_8.pth').write_bytes(data[: len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    with caplog.at_level('WARNING', logger='lsnet'):
        assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    assert any('iter_8.pth is corrupt or truncated' in m for m in caplog.messages)
    assert (tmp_path / 'iter_8.pth').exists()  # reported, never deleted


# -- exact resumption after SIGKILL ------------------------------------------------------------------------
@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('rel')
    generate_shapes(root, ('coco', 'imagenet'), num_train=16, num_val=4, image_size=(128, 160), cls_size=48,
                    max_objects=2)
    return root


def _train_cmd(cfg, work, *extra):
    return [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(work), *extra]


def _kill_when(path_glob: str, work: Path, cmd: list) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if list(work.glob(path_glob)):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be interrupted'


def _final_state(work: Path, name: str) -> dict:
    return torch.load(work / name, map_location='cpu', weights_only=False)


def _assert_same_training_state(a: dict, b: dict):
    assert a['meta']['iter'] == b['meta']['iter']
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value, rtol=0, atol=0, msg=key)
    for key in ('ema_state_dict',):
        if key in a:
            for name, value in a[key].items():
                torch.testing.assert_close(b[key][name], value, rtol=0, atol=0, msg=name)


def _preempt_at(cfg: Path, tmp_path: Path, iteration: int, signal_name: str) -> Path:
    """A copy of ``cfg`` whose run sends itself ``signal_name`` after ``iteration`` (its hooks kept)."""
    from mmengine.config import Config
    loaded = Config.fromfile(str(cfg))
    imports = list(loaded.custom_imports.imports) + ['signal_hook']
    hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h) for h in loaded.get('custom_hooks', [])]
    hooks.append(dict(type='SignalAtIterationHook', iteration=iteration, signal_name=signal_name))
    text = cfg.read_text() + (f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n'
                              f'custom_hooks = {hooks!r}\n')
    path = tmp_path / f'{cfg.stem}_{signal_name}.py'
    path.write_text(text)
    return path


def _preempted_run(cfg: Path, work: Path, iteration: int, signal_name: str):
    """Train until the signal: exit status 75, the state after ``iteration`` saved and named in
    last_checkpoint, no temporary file left."""
    from lsnet.mm.preemption import PREEMPTED_EXIT_STATUS
    env = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{ROOT / "tests"}', OMP_NUM_THREADS=str(THREADS))
    result = subprocess.run(_train_cmd(cfg, work), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == PREEMPTED_EXIT_STATUS, (result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    assert f'preempted by {signal_name}: saved {work / f"iter_{iteration}.pth"}' in result.stdout + result.stderr
    assert (work / 'last_checkpoint').read_text().strip() == str(work / f'iter_{iteration}.pth')
    assert not list(work.glob('.*.tmp'))


@pytest.mark.slow
def test_detection_resume_after_sigkill_or_sigterm_is_exact(tmp_path, shapes):
    """Iteration-based training: killed with SIGKILL after its checkpoint of iteration 4, or preempted
    by SIGTERM after iteration 6 (between checkpoints, so the preemption checkpoint is the only
    record of iterations 5-6), then resumed: the final weights equal the uninterrupted run's bit for
    bit. The SIGKILL run leaves its work-dir lock file behind; it does not block the resume."""
    coco = f'{shapes}/coco/'
    cfg = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', f'''
        train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        val_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file='{coco}annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_iters=10, val_interval=100)
        default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=5))
        randomness = dict(seed=3, deterministic=True)
    ''')
    straight, interrupted, preempted = tmp_path / 'straight', tmp_path / 'interrupted', tmp_path / 'preempted'
    subprocess.run(_train_cmd(cfg, straight), cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    _kill_when('iter_4.pth', interrupted, _train_cmd(cfg, interrupted))
    assert not (interrupted / 'iter_10.pth').exists()
    assert (interrupted / '.lsnet-train.lock').exists()
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(interrupted), '--resume'])
    reference = _final_state(straight, 'iter_10.pth')
    _assert_same_training_state(reference, _final_state(interrupted, 'iter_10.pth'))
    _preempted_run(_preempt_at(cfg, tmp_path, 6, 'SIGTERM'), preempted, 6, 'SIGTERM')
    resumed = run_tool(['tools/train.py', str(cfg), '--work-dir', str(preempted), '--resume'])
    assert f'resuming from {preempted / "iter_6.pth"}' in resumed.stdout
    _assert_same_training_state(reference, _final_state(preempted, 'iter_10.pth'))


@pytest.mark.slow
def test_classification_resume_after_sigkill_or_sigusr1_is_exact(tmp_path, shapes):
    """Epoch-based training with EMA, RandAugment, mixup and drop path: killed after its first epoch's
    checkpoint, or preempted by SIGUSR1 after iteration 6, in the middle of epoch 2 (4 iterations an
    epoch); both resume to the uninterrupted run's weights and EMA weights bit for bit."""
    root = f'{shapes}/imagenet'
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', f'''
        train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root='{root}',
                                transform=dict(input_size=48, auto_augment='rand-m9-mstd0.5-inc1', re_prob=0.25)))
        val_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root='{root}', transform=dict(input_size=48)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=48, drop_path_rate=0.1),
                     mixup=dict(_delete_=True, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1))
        max_epochs = 3
        param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0, end=3,
                                convert_to_iter_based=True)]
        train_cfg = dict(max_epochs=3, val_interval=3)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=5))
        randomness = dict(seed=5, deterministic=True)
    ''')
    straight, interrupted, preempted = tmp_path / 'straight', tmp_path / 'interrupted', tmp_path / 'preempted'
    subprocess.run(_train_cmd(cfg, straight), cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    _kill_when('epoch_1.pth', interrupted, _train_cmd(cfg, interrupted))
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(interrupted), '--resume'])
    a, b = _final_state(straight, 'epoch_3.pth'), _final_state(interrupted, 'epoch_3.pth')
    assert 'ema_state_dict' in a
    _assert_same_training_state(a, b)
    _preempted_run(_preempt_at(cfg, tmp_path, 6, 'SIGUSR1'), preempted, 6, 'SIGUSR1')
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(preempted), '--resume'])
    _assert_same_training_state(a, _final_state(preempted, 'epoch_3.pth'))


# -- non-finite loss ------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize('mode', ['stop', 'skip'])
def test_non_finite_loss(tmp_path, shapes, mode):
    root = f'{shapes}/imagenet'
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', f'''
        train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root='{root}',
                                transform=dict(input_size=48)))
        val_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root='{root}', transform=dict(input_size=48)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=48))
        optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='SGD', lr=1e30))
        param_scheduler = []
        train_cfg = dict(max_epochs=2, val_interval=2)
        default_hooks = dict(checkpoint=dict(interval=1))
    ''')
    work = tmp_path / 'work'
    if mode == 'stop':
        failed = expect_tool_failure(['tools/train.py', str(cfg), '--work-dir', str(work)], 'non-finite loss at iteration')
        assert 'loss_cls=' in failed.stdout + failed.stderr
        assert not list(work.glob('*.pth'))  # nothing of the broken state was saved
    else:
        cfg.write_text(cfg.read_text() + "custom_hooks = [dict(type='NonFiniteLossHook', max_skips=1000)]\n")
        failed = expect_tool_failure(['tools/train.py', str(cfg), '--work-dir', str(work), '--on-nonfinite', 'skip'],
                                     'update skipped')
        output = failed.stdout + failed.stderr
        # skipped updates cannot undo the NaN BatchNorm statistics of those forward passes: the
        # checkpoint is refused instead of saved with them
        assert 'not saving the checkpoint' in output and 'bn.running_var' in output
        assert not list(work.glob('*.pth'))


def test_skip_wrapper_leaves_parameters_untouched():
    from lsnet.mm.optim import SkipNonFiniteOptimWrapper
    layer = torch.nn.Linear(2, 1)
    before = layer.weight.detach().clone()
    wrapper = SkipNonFiniteOptimWrapper(torch.optim.SGD(layer.parameters(), lr=1.0))
    wrapper.update_params(layer(torch.ones(1, 2)).sum() * float('nan'))
    assert wrapper.skipped_steps == 1 and torch.equal(layer.weight, before)
    wrapper.update_params(layer(torch.ones(1, 2)).sum())
    assert not torch.equal(layer.weight, before)


# -- bad data ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def coco_copy(tmp_path, shapes):
    import shutil
    root = tmp_path / 'coco'
    shutil.copytree(f'{shapes}/coco', root)
    return root


def _checked(root, **kwargs):
    from mmdet.utils import register_all_modules
    from mmengine.registry import DATASETS, DefaultScope
    register_all_modules()
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(type='CheckedDataset', dataset=dict(
            type='CocoDataset', data_root=str(root) + '/', ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'), metainfo=dict(classes=('circle', 'square', 'triangle', 'star')),
            pipeline=[]), **kwargs))


def test_missing_and_corrupt_images_are_named(coco_copy):
    images = sorted((coco_copy / 'train2017').glob('*.jpg'))
    images[0].unlink()
    images[1].write_bytes(images[1].read_bytes()[:300])  # truncated JPEG
    with pytest.raises(ValueError, match=f'missing image .*{images[0].name}'):
        _checked(coco_copy)
    with pytest.raises(ValueError, match=f'corrupt or truncated image .*{images[1].name}'):
        _checked(coco_copy, decode=True, on_error='raise')
    dataset = _checked(coco_copy, decode=True, on_error='skip')
    assert dataset.num_skipped == 2 and len(dataset) == 14


def test_category_outside_classes_and_missing_annotation_file(coco_copy):
    ann = coco_copy / 'annotations' / 'instances_train2017.json'
    content = json.loads(ann.read_text())
    content['categories'].append(dict(id=9, name='hexagon'))
    content['annotations'][0]['category_id'] = 9
    ann.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"category ids \['9 \(hexagon\)'\] that are not among the configured"):
        _checked(coco_copy)
    ann.unlink()
    with pytest.raises(FileNotFoundError, match='instances_train2017.json'):
        _checked(coco_copy)


def test_empty_dataset(tmp_path):
    from lsnet.classification import ImageFolderDataset
    (tmp_path / 'train' / 'circle').mkdir(parents=True)
    with pytest.raises(ValueError, match='no images found'):
        ImageFolderDataset(str(tmp_path), 'train')


def test_regenerated_synthetic_data_of_other_sizes_replaces_the_earlier_set(tmp_path):
    def files(task):
        return sorted(str(p.relative_to(tmp_path / task)) for p in (tmp_path / task).rglob('*') if p.is_file())

    quiet = dict(progress=lambda message: None)
    generate_shapes(tmp_path, ('imagenet', 'ade'), num_train=16, num_val=8, cls_size=32, image_size=(32, 32), **quiet)
    generate_shapes(tmp_path, ('imagenet', 'ade'), num_train=8, num_val=4, cls_size=32, image_size=(32, 32), **quiet)
    assert len([f for f in files('imagenet') if f.startswith('train/')]) == 8  # not 16: no earlier image left
    assert len([f for f in files('ade') if f.startswith('images/training/')]) == 8
    assert not list(tmp_path.glob('.*.partial'))
    fresh = tmp_path / 'fresh'
    generate_shapes(fresh, ('ade',), num_train=8, num_val=4, cls_size=32, image_size=(32, 32), **quiet)
    for name in files('ade'):  # the same parameters give the same bytes, whatever was there before
        assert (tmp_path / 'ade' / name).read_bytes() == (fresh / 'ade' / name).read_bytes(), name
    own = tmp_path / 'user' / 'coco'
    own.mkdir(parents=True)
    (own / 'instances_train2017.json').write_text('{}')
    with pytest.raises(FileExistsError, match=r'user/coco holds files that generate_shapes did not write'):
        generate_shapes(tmp_path / 'user', ('coco',), num_train=2, num_val=1, **quiet)
    assert [p.name for p in own.iterdir()] == ['instances_train2017.json']
    assert (own / 'instances_train2017.json').read_text() == '{}'


def test_label_map_values_outside_classes(tmp_path):
    from mmseg.utils import register_all_modules
    from mmengine.registry import DATASETS, DefaultScope
    register_all_modules()
    root = tmp_path / 'ade'
    generate_shapes(tmp_path, ('ade',), num_train=3, num_val=1, image_size=(32, 32))
    label = root / 'annotations' / 'training' / 'shapes_000001.png'
    values = np.asarray(Image.open(label)).copy()
    values[0, 1] = 255  # the ignore value: valid with reduce_zero_label, as in mmseg
    Image.fromarray(values).save(label)

    def build(**kwargs):
        with DefaultScope.overwrite_default_scope('mmseg'):
            return DATASETS.build(dict(type='CheckedDataset', dataset=dict(
                type='BaseSegDataset', data_root=str(root), img_suffix='.jpg', seg_map_suffix='.png',
                reduce_zero_label=True, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                metainfo=dict(classes=('background', 'circle', 'square', 'triangle', 'star'))), **kwargs))
    assert len(build(decode=True)) == 3
    values[0, 0] = 42
    Image.fromarray(values).save(label)
    assert len(build()) == 3  # label values are read only with decode (every map decoded)
    with pytest.raises(ValueError, match=r'shapes_000001.png has values \[41\] outside the 5 classes'):
        build(decode=True)
    Image.fromarray(values[:, :20]).save(label)
    with pytest.raises(ValueError, match=r'shapes_000001.png is 20x32 but its image .*shapes_000001.jpg is 32x32'):
        build()


@pytest.mark.slow
def test_train_tool_reports_bad_data_before_training(tmp_path, coco_copy):
    next(iter(sorted((coco_copy / 'train2017').glob('*.jpg')))).unlink()
    cfg = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', f'''
        train_dataloader = dict(num_workers=0, dataset=dict(data_root='{coco_copy}/'))
    ''')
    expect_tool_failure(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], 'missing image')


# -- bad configuration ----------------------------------------------------------------------------------
def test_config_key_typo_names_the_closest_argument():
    from mmdet.registry import MODELS
    with pytest.raises(Exception, match=r"'out_indice' \(did you mean 'out_indices'\?\)"):
        MODELS.build(dict(type='LSNet', arch='t', out_indice=(0, 1)))
    with pytest.raises(Exception, match=r"unknown arch 'huge'.*'b0'.*'tiny'"):
        MODELS.build(dict(type='VAN', arch='huge'))


def test_checkpoint_files_keep_the_users_umask(tmp_path):
    from lsnet.checkpoint import atomic_write
    old = os.umask(0o027)
    try:
        atomic_write(b'data', tmp_path / 'epoch_1.pth')
    finally:
        os.umask(old)
    assert (tmp_path / 'epoch_1.pth').stat().st_mode & 0o777 == 0o640


def test_interrupted_write_leftovers_are_removed_on_start(tmp_path):
    from lsnet.checkpoint import remove_interrupted_writes
    leftover = tmp_path / '.epoch_2.pth.k3j4h5.tmp'
    leftover.write_bytes(b'half a checkpoint')
    keep = tmp_path / 'epoch_1.pth'
    keep.write_bytes(b'x')
    assert remove_interrupted_writes(str(tmp_path)) == [str(leftover)]
    assert not leftover.exists() and keep.exists()


def test_non_finite_buffers_are_never_saved(tmp_path):
    """BatchNorm statistics gone NaN: the save stops, naming the buffer and the newest checkpoint
    that is checked finite (not the newest file)."""
    import time
    from types import SimpleNamespace
    from lsnet.mm.nonfinite import NonFiniteLossHook
    good = {'state_dict': {'bn.running_mean': torch.zeros(2)}, 'meta': {}}
    torch.save(good, tmp_path / 'epoch_1.pth')
    time.sleep(0.05)
    torch.save({'state_dict': {'bn.running_mean': torch.tensor([float('nan'), 0.0])}, 'meta': {}},
               tmp_path / 'epoch_2.pth')
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=30, epoch=3,
                             logger=SimpleNamespace(warning=lambda message: None))
    hook = NonFiniteLossHook()
    with pytest.raises(RuntimeError, match=r'non-finite values in bn\.running_var.*epoch_1\.pth'):
        hook.before_save_checkpoint(runner, {'state_dict': {'bn.running_var': torch.tensor([float('inf')]),
                                                            'conv.weight': torch.ones(1)}})
    hook.before_save_checkpoint(runner, good)  # finite: saved as usual


def test_misspelt_top_level_key_names_the_closest():
    from mmengine.config import Config
    from lsnet.mm.runner import warn_misspelt_keys
    root = Path(__file__).resolve().parents[1] / 'configs'
    for path in sorted(root.glob('*/*.py')):
        assert warn_misspelt_keys(Config.fromfile(str(path)), path.name) == [], path
    cfg = Config.fromfile(str(root / 'retinanet' / 'retinanet_lsnet-t_fpn_shapes.py'))
    cfg.load_form = 'epoch_1.pth'
    assert warn_misspelt_keys(cfg, 'my_config.py') == [
        "my_config.py: top-level key 'load_form' is not read by MMEngine; did you mean 'load_from'?"]


@pytest.mark.slow
def test_load_from_of_another_variant_fails_naming_the_keys(tmp_path):
    """A fine-tuning start point loads strictly: LSNet-B weights for an LSNet-T RetinaNet stop the run
    with one paragraph (no traceback), instead of training from random weights."""
    from reference_weights import released_state_dict
    other = tmp_path / 'retinanet_lsnet-b.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in released_state_dict('lsnet_b').items()}}, other)
    config = Path(__file__).resolve().parents[1] / 'configs' / 'retinanet' / 'retinanet_lsnet-t_fpn_shapes.py'
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), PYTHONWARNINGS='ignore')
    result = subprocess.run([sys.executable, 'tools/train.py', str(config), '--work-dir', str(tmp_path / 'w'),
                             '--check-data', 'off', '--cfg-options', f'load_from={other}'],
                            cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1
    assert 'shape mismatches: backbone.' in result.stderr and str(other) in result.stderr
    assert 'Traceback' not in result.stderr


def test_coco_annotation_problems_are_named_from_one_load(coco_copy, monkeypatch):
    ann = coco_copy / 'annotations' / 'instances_train2017.json'
    content = json.loads(ann.read_text())
    first, second, third = content['annotations'][:3]
    first['bbox'][2] = 0  # zero width
    image = next(i for i in content['images'] if i['id'] == second['image_id'])
    second['bbox'] = [image['width'] - 5, 2, 40, 10]  # leaves the image
    third['image_id'] = 99999  # no such image
    ann.write_text(json.dumps(content))
    loads = []
    real_load = json.load
    monkeypatch.setattr(json, 'load', lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with pytest.raises(ValueError) as info:
        _checked(coco_copy)
    assert len(loads) == 1  # mmdet's own load, read by the checks
    message = str(info.value)
    assert f'annotation {first["id"]}' in message and 'width 0' in message
    assert f'annotation {second["id"]}' in message and 'outside the image' in message
    assert f'annotation {third["id"]} points at image_id 99999' in message
    dataset = _checked(coco_copy, on_error='skip')
    boxes = [inst['bbox'] for info in dataset.dataset.data_list for inst in info['instances']]
    assert all(b[2] <= image['width'] + 1 for b in boxes) and len(dataset) > 0


@pytest.mark.parametrize('damage,match', [
    (lambda text: text[:len(text) // 2], 'is not valid JSON'),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != 'images'}), 'has no "images" list'),
    (lambda text: json.dumps(dict(json.loads(text), annotations=[])), 'has no annotations'),
])
def test_broken_coco_files_are_named(coco_copy, damage, match):
    ann = coco_copy / 'annotations' / 'instances_train2017.json'
    ann.write_text(damage(ann.read_text()))
    with pytest.raises(ValueError, match=f'instances_train2017.json.*{match}|{match}.*instances_train2017.json'):
        _checked(coco_copy)


def forged_png(path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    import io
    import struct
    import zlib
    buffer = io.BytesIO()
    Image.new('L', (1, 1)).save(buffer, format='PNG')
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_image_folder_problems_are_named(tmp_path):
    from lsnet.mm.datacheck import CheckedDataset
    root = tmp_path / 'imagenet'
    generate_shapes(tmp_path, ('imagenet',), num_train=8, num_val=4, cls_size=32)
    train = root / 'train'
    classes = sorted(p.name for p in train.iterdir())
    folder_cfg = dict(type='ImageFolderDataset', data_root=str(root), split='train', transform=dict(input_size=32))
    (train / classes[0] / 'zero.png').write_bytes(b'')
    forged_png(train / classes[1] / 'bomb.png', 65500, 65500)
    with pytest.raises(ValueError, match=r'empty image file .*zero\.png \(0 bytes\)'):
        CheckedDataset(folder_cfg)
    with pytest.raises(ValueError, match=r'bomb\.png: its header claims more pixels than the decoders accept \(Image size \(4290250000 pixels\)'):
        CheckedDataset(folder_cfg, decode=True)
    skipped = CheckedDataset(folder_cfg, decode=True, on_error='skip')
    assert skipped.num_skipped == 2
    with pytest.raises(ValueError, match=r'oversized image: .*bomb\.png'):  # read without the check
        skipped.dataset._load(str(train / classes[1] / 'bomb.png'))
    (train / 'unused_class').mkdir()
    with pytest.raises(ValueError, match=r'class folder\(s\) without images: .*unused_class'):
        CheckedDataset(folder_cfg)
    (train / 'unused_class').rmdir()
    # a 16-bit grayscale PNG decodes to its picture, not to a constant image
    gradient = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    Image.fromarray(gradient).save(train / classes[2] / 'deep.png')
    dataset = CheckedDataset(folder_cfg, on_error='skip').dataset
    picture = np.asarray(dataset._load(str(train / classes[2] / 'deep.png')))
    assert picture.shape == (32, 32, 3) and picture[:, 0].max() < 10 and picture[:, -1].min() > 245


# -- one run per work dir, preemption from outside -------------------------------------------------------------
@pytest.mark.slow
def test_second_run_on_a_work_dir_is_refused_and_sigterm_from_outside_checkpoints(tmp_path, shapes):
    """While a run trains, a second ``tools/train.py`` on its work dir refuses, naming the folder and
    the first run's process, and writes nothing there. A SIGTERM sent from outside (as a scheduler
    does) then ends the first run within seconds with exit status 75 and a resumable checkpoint."""
    from lsnet.mm.preemption import PREEMPTED_EXIT_STATUS
    root = f'{shapes}/imagenet'
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', f'''
        train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root='{root}',
                                transform=dict(input_size=32)))
        val_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root='{root}', transform=dict(input_size=32)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=32))
        train_cfg = dict(max_epochs=1000, val_interval=1000)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
    ''')
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    first = subprocess.Popen(_train_cmd(cfg, work), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and first.poll() is None and not (work / 'epoch_1.pth').exists():
            time.sleep(0.1)
        assert first.poll() is None, 'the first run ended before the test could use it'
        second = expect_tool_failure(['tools/train.py', str(cfg), '--work-dir', str(work), '--overwrite'],
                                     rf'{work} is in use by another training run \(pid {first.pid} on ')
        assert 'already holds checkpoints' not in second.stderr
        sent = time.monotonic()
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == PREEMPTED_EXIT_STATUS, output[-3000:]
    saved = (work / 'last_checkpoint').read_text().strip()
    assert 'preempted by SIGTERM: saved ' + saved in output and Path(saved).name.startswith('iter_')
    checkpoint = torch.load(saved, map_location='cpu', weights_only=False)
    assert checkpoint['meta']['iter'] == int(Path(saved).stem.split('_')[1]) and 'optimizer' in checkpoint
    print(f'SIGTERM to exit: {took:.2f} s')
    assert took < 60


# -- messages that name the thing ------------------------------------------------------------------------------
def test_last_checkpoint_naming_a_deleted_file_is_reported(tmp_path, caplog):
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'iter': 4}}, tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))  # deleted since
    with caplog.at_level('WARNING', logger='lsnet'):
        assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    assert any(f'names {tmp_path / "iter_8.pth"}, which does not exist' in m for m in caplog.messages)


def test_validation_at_a_checkpoint_is_the_one_logged_at_its_step(tmp_path):
    """An epoch-based run's scalars.json as MMEngine writes it: training records (``loss``, ``step`` the
    iteration) among validation records (``step`` the epoch). A checkpoint's metrics are those of the
    validation at its epoch, never a training record of the same number; a step without validation, or
    a file without a step in its name, is an error naming it."""
    run = tmp_path / '20261202_120000' / 'vis_data'
    run.mkdir(parents=True)
    records = [dict(loss=1.2, iter=2, epoch=1, step=2), dict(top1=40.0, top5=100.0, time=0.1, data_time=0.01, step=1),
               dict(loss=0.9, iter=4, epoch=2, step=4), dict(top1=75.5, top5=100.0, time=0.1, data_time=0.01, step=2)]
    (run / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))
    assert validation_at(tmp_path, tmp_path / 'epoch_2.pth') == dict(top1=75.5, top5=100.0)
    assert validation_at(tmp_path, tmp_path / 'epoch_1.pth') == dict(top1=40.0, top5=100.0)
    with pytest.raises(ValueError, match='no validation logged at step 4'):
        validation_at(tmp_path, tmp_path / 'iter_4.pth')
    with pytest.raises(ValueError, match='best.pth: not named'):
        validation_at(tmp_path, tmp_path / 'best.pth')


def test_resume_with_a_changed_learning_rate_says_which_is_used(capsys):
    import importlib.util
    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools' / 'train.py')
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='AdamW', lr=5e-4))))
    saved = {'optimizer': {'param_groups': [{'lr': 1e-5, 'initial_lr': 1e-4}, {'lr': 2e-5, 'initial_lr': 2e-4}]}}
    train_tool.report_resumed_lr(cfg, saved)
    assert 'config sets lr=0.0005 but the run was started with lr=0.0002' in capsys.readouterr().out
    train_tool.report_resumed_lr(Config(dict(optim_wrapper=dict(optimizer=dict(lr=1e-4)))), saved)
    assert capsys.readouterr().out == ''  # the unscaled group started at the configured value


@pytest.mark.slow
def test_resume_after_changing_the_classes_names_the_keys_and_shapes(tmp_path, shapes):
    """MMEngine resumes non-strictly; ours refuses before training, naming each key with both shapes."""
    from lsnet.mm.build import build_model_from_config
    config = ROOT / 'configs/retinanet/retinanet_lsnet-t_fpn_shapes.py'
    model, _ = build_model_from_config(config, pretrained=False)
    work = tmp_path / 'work'
    work.mkdir()
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 2, 'epoch': 0}}, work / 'iter_2.pth')
    result = expect_tool_failure(['tools/train.py', str(config), '--work-dir', str(work), '--resume',
                                  '--cfg-options', 'model.bbox_head.num_classes=3'],
                                 r'bbox_head\.retina_cls\.weight: file \(36, (\d+), 3, 3\) vs model \(27, \1, 3, 3\)')
    assert 'Was the config changed' in result.stderr


@pytest.mark.slow
def test_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path):
    """An export into a nearly full file system (a 2 MiB tmpfs in a private mount namespace) fails naming
    the file, the space needed and free, and leaves the previous file and no temporary behind."""
    import shutil
    mount = tmp_path / 'small'
    mount.mkdir()
    if shutil.which('unshare') is None or subprocess.run(
            ['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o size=2m none {mount}'], capture_output=True).returncode:
        pytest.skip('this machine cannot mount a private tmpfs (unshare -rm) to fill')
    import timm
    source = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in timm.create_model('lsnet_t').state_dict().items()},
                'meta': {}}, source)
    out = mount / 'lsnet_t.pth'
    script = (f'mount -t tmpfs -o size=2m none {mount} && printf previous > {out} && '
              f'{sys.executable} tools/export_backbone.py {source} {out} --overwrite; echo "rc=$?"; '
              f'echo "kept=$(cat {out})"; ls -a {mount}')
    result = subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert 'rc=1' in result.stdout and 'kept=previous' in result.stdout, result.stdout + result.stderr
    assert f'No space left on device writing {out}: ' in result.stderr
    assert 'MiB needed' in result.stderr and f'free in {mount}; the previous {out} is intact' in result.stderr
    assert '.tmp' not in result.stdout
