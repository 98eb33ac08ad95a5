"""The whole mission on a laptop CPU, with nothing to download: ``make demo``.

1. generate the synthetic shapes data (class folders, COCO json, ADE-style maps) if absent;
2. pretrain the backbone as a classifier (the ImageNet config and tools, small schedule);
3. fine-tune RetinaNet and Semantic FPN from that checkpoint;
4. evaluate each with the toolboxes' metrics (top-1, COCO bbox mAP, mIoU) at its last step and print a summary;
5. draw predictions on validation images and the training curves into PNG files.

python tools/demo.py [--backbone lsnet_t] [--tasks cls det seg] [--out-dir outputs/demo] [--budget full]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsnet.cli import run_cli  # noqa: E402
from lsnet.models.variants import LSNET_ARCHS, VAN_ARCHS, stage_channels  # noqa: E402
# The full demo trains on the shapes configs' own schedules (configs/_base_/schedules/shapes_*.py); the
# other budgets shorten them: 'reduced' runs the recipe on half the data for 57% of the pretraining
# steps and half the fine-tuning ones (the test of what the recipe reaches), 'quick' a few steps of
# everything (the smoke run). Data: generate_shapes' default
# sizes (64 px class images, 64x64 scenes of one to three shapes), these many images.
DATA = {'full': dict(cls=dict(num_train=4000, num_val=400), dense=dict(num_train=3000, num_val=200)),
        'reduced': dict(cls=dict(num_train=2000, num_val=200), dense=dict(num_train=1500, num_val=100)),
        'quick': dict(cls=dict(num_train=16, num_val=8), dense=dict(num_train=16, num_val=8))}
SHORTENED = {'reduced': dict(cls_epochs=8, cls_batch=64, det_iters=200, seg_iters=400),
             'quick': dict(cls_epochs=2, cls_batch=8, det_iters=4, seg_iters=4)}


def log(message: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {message}', flush=True)


def backbone_overrides(name: str) -> tuple[str, list[str], list[str]]:
    """(config family, overrides for the classifier, overrides for the dense models)."""
    family, _, arch = name.partition('_')
    valid = [f'lsnet_{a}' for a in LSNET_ARCHS] + [f'van_{a}' for a in VAN_ARCHS]
    if name not in valid:
        raise SystemExit(f'--backbone {name!r} is not one of {valid}')
    dims = list(stage_channels(name))
    config_family = {'lsnet': 'lsnet-t', 'van': 'van-b0'}[family]
    return config_family, [f'model.backbone.model_name={name}'], [f'model.backbone.arch={arch}',
                                                             f'model.neck.in_channels={dims}']


def run(args: list[str], label: str, log_file: Path) -> None:
    """Run a project tool, showing its progress lines, keeping its full output in ``log_file``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore')
    progress = re.compile(r'(Epoch|Iter)\((train|val|test)\)|top1:|bbox_mAP:|mIoU:')
    with open(log_file, 'w') as logf:
        proc = subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            logf.write(line)
            if progress.search(line):
                text = line.split(' - mmengine - INFO - ')[-1].strip()
                print(f'  {label}: {text[:150]}', flush=True)
        if proc.wait():
            raise SystemExit(f'{label} failed (exit {proc.returncode}); see {log_file}')


def latest_checkpoint(work_dir: Path) -> Path:
    from lsnet.mm.workdir import find_resumable_checkpoint
    found = find_resumable_checkpoint(str(work_dir))
    if found is None:
        raise SystemExit(f'no readable checkpoint in {work_dir}')
    return Path(found)


@dataclass
class TrainedModel:
    """One trained task of the demo: its config, work dir, checkpoint and the --cfg-options it ran with."""
    config: Path
    work_dir: Path
    checkpoint: Path
    options: list


def draw_pictures(trained: dict, detections, data: Path, out: Path, backbone: str) -> list[Path]:
    """Predictions of each trained model on validation images (the detector's: ``detections``, a
    ``ValidationDetections``), and the training curves."""
    from lsnet.viz import draw_curves
    paths = []
    if 'cls' in trained:
        from lsnet.classification.viz import draw_classification
        run_ = trained['cls']
        paths.append(draw_classification(run_.config, run_.checkpoint, run_.options, data / 'imagenet', out))
    if detections is not None:
        paths.append(detections.draw(out, f'retinanet_{backbone}'))
    if 'seg' in trained:
        from lsnet.segmentation.viz import draw_segmentation
        run_ = trained['seg']
        paths.append(draw_segmentation(run_.config, run_.checkpoint, run_.options,
                                       data / 'ade' / 'images' / 'validation', out, f'semantic_fpn_{backbone}'))
    if trained:
        paths.append(draw_curves({task: run_.work_dir for task, run_ in trained.items()}, out))
    return paths


def scheduler_index(config: Path, kind: str) -> int:
    """The position of the ``kind`` entry in ``config``'s param_scheduler list (what --cfg-options addresses)."""
    from mmengine.config import Config
    kinds = [entry.get('type') for entry in Config.fromfile(str(config)).param_scheduler]
    if kind not in kinds:
        raise SystemExit(f'{config}: no {kind} in param_scheduler ({kinds})')
    return kinds.index(kind)


def train_and_evaluate(task: str, title: str, config: Path, options: list, out: Path) -> tuple:
    """``tools/train.py``: (TrainedModel, the metrics of the validation the run logged at its final
    checkpoint, also written to ``work/{task}_metrics.json``). Each config validates at its last step,
    with the config's evaluator on the whole validation set, so the checkpoint is not evaluated twice."""
    from lsnet.mm.workdir import validation_at
    work = out / 'work' / task
    run(['tools/train.py', str(config), '--work-dir', str(work), '--overwrite', '--cfg-options', *options],
        title, out / 'work' / f'{task}_train.log')
    checkpoint = latest_checkpoint(work)
    try:
        metrics = validation_at(work, checkpoint)
    except ValueError as err:
        raise SystemExit(f'{title}: {err}') from None
    (out / 'work' / f'{task}_metrics.json').write_text(json.dumps(metrics, indent=2))
    return TrainedModel(config, work, checkpoint, options), metrics


def classifier_options(args, cls_opts: list, common: list, data: Path, config: Path) -> list:
    opts = cls_opts + common + [f'{split}_dataloader.dataset.data_root={data}/imagenet' for split in ('train', 'val', 'test')]
    if args.budget in SHORTENED:
        schedule = SHORTENED[args.budget]
        epochs = schedule['cls_epochs']
        cosine = scheduler_index(config, 'CosineAnnealingLR')
        opts += [f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={schedule["cls_batch"]}',
                 f'param_scheduler.{cosine}.T_max={epochs - 1}', f'param_scheduler.{cosine}.end={epochs}',
                 f'default_hooks.checkpoint.interval={epochs}']
    return opts


def dense_options(args, task: str, dense_opts: list, common: list, data: Path, config: Path, pretrained) -> list:
    opts = dense_opts + common
    if args.budget in SHORTENED:
        iters = SHORTENED[args.budget][f'{task}_iters']
        decay = scheduler_index(config, 'CosineAnnealingLR' if task == 'det' else 'PolyLR')
        opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                 f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.{decay}.end={iters}']
    if task == 'det':
        opts += [f'{split}_dataloader.dataset.data_root={data}/coco/' for split in ('train', 'val', 'test')]
        opts += [f'{split}_evaluator.ann_file={data}/coco/annotations/instances_val2017.json' for split in ('val', 'test')]
        if args.budget == 'quick':  # a few iterations score nothing above the usual 0.05: keep every box
            opts.append('model.test_cfg.score_thr=0.0')
    else:
        opts += [f'{split}_dataloader.dataset.data_root={data}/ade' for split in ('train', 'val', 'test')]
    if pretrained:  # the shapes classifier's backbone, BatchNorm kept frozen as the dense recipes do
        opts += ['model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
                 f'model.backbone.init_cfg.checkpoint={pretrained}']
    return opts


def write_summary(backbone: str, results: dict, named_right, timings: dict, total: float, out: Path) -> list:
    """summary.md (the table the demo prints) and summary.json: the evaluators' metrics, the objects the
    detector names right (``named_right``: (right, annotated) or None) and the times."""
    summary = [f'| {backbone} on synthetic shapes | value |', '|---|---|']
    summary += [f'| {name} | {value:.3f} |' if 'mAP' in name else f'| {name} | {value:.1f} |'
                for name, value in results.items()]
    if named_right:
        summary.append(f'| RetinaNet: validation objects named right (best box, IoU >= 0.5) | '
                       f'{named_right[0]} of {named_right[1]} |')
    summary += [f'| time: {name} (train + eval) | {seconds / 60:.1f} min |' for name, seconds in timings.items()]
    summary.append(f'| time: whole demo | {total / 60:.1f} min |')
    (out / 'summary.md').write_text('\n'.join(summary) + '\n')
    (out / 'summary.json').write_text(json.dumps(dict(backbone=backbone, metrics=results, objects_named_right=named_right,
                                                      seconds=dict(timings, total=total)), indent=2))
    return summary


DENSE_TASKS = {'det': ('RetinaNet', 'configs/retinanet/retinanet_{}_fpn_shapes.py', 'coco/bbox_mAP', 'bbox mAP'),
               'seg': ('Semantic FPN', 'configs/sem_fpn/fpn_{}_shapes.py', 'mIoU', 'mIoU (%)')}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backbone', default='lsnet_t', help='lsnet_t/s/b or van_b0..b3')
    parser.add_argument('--tasks', nargs='+', default=['cls', 'det', 'seg'], choices=['cls', 'det', 'seg'])
    parser.add_argument('--out-dir', default='outputs/demo')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--budget', choices=['full', *SHORTENED], default='full',
                        help="full: the recipe of the configs; reduced: about half of it; quick: a few steps")
    parser.add_argument('--quick', dest='budget', action='store_const', const='quick', help='--budget quick')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    data_sizes = DATA[args.budget]
    family, cls_opts, dense_opts = backbone_overrides(args.backbone)
    out = Path(args.out_dir).resolve()
    if out.exists():
        shutil.rmtree(out / 'work', ignore_errors=True)  # the demo's own previous run, nothing else
    (out / 'work').mkdir(parents=True, exist_ok=True)
    data = Path(args.data_root).resolve()
    started = time.time()

    from lsnet.datasets import generate_shapes
    log(f'1/5 synthetic data in {data}')
    for tasks, sizes in ((('imagenet',), data_sizes['cls']), (('coco', 'ade'), data_sizes['dense'])):
        generate_shapes(data, tasks, **sizes, seed=args.seed, progress=lambda m: log('    ' + m))
    common = [f'randomness.seed={args.seed}', 'randomness.deterministic=True']
    if args.budget == 'quick':  # log every iteration, so the few steps of a quick run leave their losses
        common.append('default_hooks.logger.interval=1')
    results, timings, trained = {}, {}, {}

    pretrained = None
    if 'cls' in args.tasks:
        config = ROOT / f'configs/classification/{family}_shapes.py'
        log(f'2/5 pretraining {args.backbone} as a classifier ({config.relative_to(ROOT)})')
        t0 = time.time()
        trained['cls'], metrics = train_and_evaluate(
            'cls', 'classification', config, classifier_options(args, cls_opts, common, data, config), out)
        pretrained = trained['cls'].checkpoint
        results['top-1 (%)'] = metrics['top1']
        timings['classification'] = time.time() - t0

    for step, task in enumerate(t for t in ('det', 'seg') if t in args.tasks):
        title, config_pattern, key, column = DENSE_TASKS[task]
        config = ROOT / config_pattern.format(family)
        log(f'{3 + step}/5 fine-tuning {title}-{args.backbone} ({config.relative_to(ROOT)})'
            f'{" from the pretrained backbone" if pretrained else " from scratch"}')
        t0 = time.time()
        trained[task], metrics = train_and_evaluate(
            task, title, config, dense_options(args, task, dense_opts, common, data, config, pretrained), out)
        if key not in metrics:  # CocoMetric returns nothing when no box passed the score threshold
            log(f'    {title} made no detections above the score threshold: {key} = 0')
        results[column] = metrics.get(key, 0.0)
        timings[title] = time.time() - t0

    detections = named_right = None
    if 'det' in trained:
        from lsnet.detection.viz import ValidationDetections
        run_ = trained['det']
        detections = ValidationDetections(run_.config, run_.checkpoint, run_.options, data / 'coco' / 'val2017')
        named_right = detections.objects_named_right()
    log('5/5 pictures')
    pictures = draw_pictures(trained, detections, data, out, args.backbone)
    summary = write_summary(args.backbone, results, named_right, timings, time.time() - started, out)
    print('\n' + '\n'.join(summary))
    print('\npictures:')
    for path in pictures:
        print(f'  {path}')


if __name__ == '__main__':
    run_cli(main)
