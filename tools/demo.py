"""The whole mission on a laptop CPU, with nothing to download: ``make demo``.

1. generate the synthetic shapes data (class folders, COCO json, ADE-style maps) if absent;
2. pretrain the backbone as a classifier (the ImageNet config and tools, small schedule);
3. fine-tune RetinaNet and Semantic FPN from that checkpoint;
4. evaluate each with the toolboxes' metrics (top-1, COCO bbox mAP, mIoU) and print a summary;
5. draw predictions on validation images and the training curves into PNG files.

python tools/demo.py [--backbone lsnet_t] [--tasks cls det seg] [--out-dir outputs/demo] [--quick]
"""
from __future__ import annotations

import argparse
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
# quick one (CI's smoke run) shortens them. Data: generate_shapes' default sizes (64 px class images,
# 64x64 scenes of one to three shapes), these many images.
DATA = {'full': dict(cls=dict(num_train=4000, num_val=400), dense=dict(num_train=3000, num_val=200)),
        'quick': dict(cls=dict(num_train=16, num_val=8), dense=dict(num_train=16, num_val=8))}
QUICK = dict(cls_epochs=2, cls_batch=8, det_iters=4, seg_iters=4)


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
    from lsnet.checkpoint import find_resumable_checkpoint
    found = find_resumable_checkpoint(str(work_dir))
    if found is None:
        raise SystemExit(f'no readable checkpoint in {work_dir}')
    return Path(found)


def draw_pictures(work_dirs: dict, data: Path, out: Path, backbone: str) -> list[Path]:
    """Predictions of each trained model on validation images, and the training curves."""
    from lsnet.viz import draw_curves
    paths = []
    if 'cls' in work_dirs:
        from lsnet.classification.viz import draw_classification
        cfg, _, checkpoint, opts = work_dirs['cls']
        paths.append(draw_classification(cfg, checkpoint, opts, data / 'imagenet', out))
    if 'det' in work_dirs:
        from lsnet.detection.viz import draw_detections
        cfg, _, checkpoint, opts = work_dirs['det']
        paths.append(draw_detections(cfg, checkpoint, opts, data / 'coco' / 'val2017', out, f'retinanet_{backbone}'))
    if 'seg' in work_dirs:
        from lsnet.segmentation.viz import draw_segmentation
        cfg, _, checkpoint, opts = work_dirs['seg']
        paths.append(draw_segmentation(cfg, checkpoint, opts, data / 'ade' / 'images' / 'validation', out,
                                       f'semantic_fpn_{backbone}'))
    if work_dirs:
        paths.append(draw_curves(work_dirs, out))
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backbone', default='lsnet_t', help='lsnet_t/s/b or van_b0..b3')
    parser.add_argument('--tasks', nargs='+', default=['cls', 'det', 'seg'], choices=['cls', 'det', 'seg'])
    parser.add_argument('--out-dir', default='outputs/demo')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--quick', action='store_true', help='tiny schedule (CI smoke run)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    data_sizes = DATA['quick' if args.quick else 'full']
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
    if args.quick:  # log every iteration, so the few steps of a quick run leave their losses
        common.append('default_hooks.logger.interval=1')
    results, timings, work_dirs = {}, {}, {}

    pretrained = None
    if 'cls' in args.tasks:
        cfg = ROOT / f'configs/classification/{family}_shapes.py'
        log(f'2/5 pretraining {args.backbone} as a classifier ({cfg.relative_to(ROOT)})')
        work = out / 'work' / 'cls'
        opts = cls_opts + common + [f'train_dataloader.dataset.data_root={data}/imagenet',
                                    f'val_dataloader.dataset.data_root={data}/imagenet',
                                    f'test_dataloader.dataset.data_root={data}/imagenet']
        if args.quick:
            epochs = QUICK['cls_epochs']
            opts += [f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={QUICK["cls_batch"]}',
                     f'param_scheduler.1.T_max={epochs - 1}',
                     f'param_scheduler.1.end={epochs}', f'default_hooks.checkpoint.interval={epochs}']
        t0 = time.time()
        run(['tools/train.py', str(cfg), '--work-dir', str(work), '--overwrite', '--cfg-options', *opts],
            'classification', out / 'work' / 'cls_train.log')
        pretrained = latest_checkpoint(work)
        metrics_file = out / 'work' / 'cls_metrics.json'
        run(['tools/test.py', str(cfg), str(pretrained), '--work-dir', str(out / 'work' / 'cls_test'),
             '--out', str(metrics_file), '--cfg-options', *opts], 'classification eval', out / 'work' / 'cls_test.log')
        results['top-1 (%)'] = json.loads(metrics_file.read_text())['top1']
        timings['classification'] = time.time() - t0
        work_dirs['cls'] = (cfg, work, pretrained, opts)

    dense = {'det': ('RetinaNet', f'configs/retinanet/retinanet_{family}_fpn_shapes.py', 'coco/bbox_mAP', 'bbox mAP'),
             'seg': ('Semantic FPN', f'configs/sem_fpn/fpn_{family}_shapes.py', 'mIoU', 'mIoU (%)')}
    for step, task in enumerate(t for t in ('det', 'seg') if t in args.tasks):
        title, cfg_rel, key, column = dense[task]
        log(f'{3 + step}/5 fine-tuning {title}-{args.backbone} ({cfg_rel})'
            f'{" from the pretrained backbone" if pretrained else " from scratch"}')
        cfg = ROOT / cfg_rel
        work = out / 'work' / task
        opts = dense_opts + common
        if args.quick:
            iters = QUICK[f'{task}_iters']
            opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                     f'default_hooks.checkpoint.interval={iters}',
                     f'param_scheduler.{1 if task == "det" else 0}.end={iters}']
        if task == 'det':
            opts += [f'train_dataloader.dataset.data_root={data}/coco/', f'val_dataloader.dataset.data_root={data}/coco/',
                     f'test_dataloader.dataset.data_root={data}/coco/',
                     f'val_evaluator.ann_file={data}/coco/annotations/instances_val2017.json',
                     f'test_evaluator.ann_file={data}/coco/annotations/instances_val2017.json']
            if args.quick:  # a few iterations score nothing above the usual 0.05: keep every box
                opts.append('model.test_cfg.score_thr=0.0')
        else:
            opts += [f'train_dataloader.dataset.data_root={data}/ade', f'val_dataloader.dataset.data_root={data}/ade',
                     f'test_dataloader.dataset.data_root={data}/ade']
        if pretrained:  # the shapes classifier's backbone, BatchNorm kept frozen as the dense recipes do
            opts += ['model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={pretrained}']
        t0 = time.time()
        run(['tools/train.py', str(cfg), '--work-dir', str(work), '--overwrite', '--cfg-options', *opts],
            title, out / 'work' / f'{task}_train.log')
        checkpoint = latest_checkpoint(work)
        metrics_file = out / 'work' / f'{task}_metrics.json'
        run(['tools/test.py', str(cfg), str(checkpoint), '--work-dir', str(out / 'work' / f'{task}_test'),
             '--out', str(metrics_file), '--cfg-options', *opts], f'{title} eval', out / 'work' / f'{task}_test.log')
        metrics = json.loads(metrics_file.read_text())
        if key not in metrics:  # CocoMetric returns nothing when no box passed the score threshold
            log(f'    {title} made no detections above the score threshold: {key} = 0')
        results[column] = metrics.get(key, 0.0)
        timings[title] = time.time() - t0
        work_dirs[task] = (cfg, work, checkpoint, opts)

    log('5/5 pictures')
    pictures = draw_pictures(work_dirs, data, out, args.backbone)

    total = time.time() - started
    summary = [f'| {args.backbone} on synthetic shapes | value |', '|---|---|']
    summary += [f'| {name} | {value:.3f} |' if 'mAP' in name else f'| {name} | {value:.1f} |'
                for name, value in results.items()]
    summary += [f'| time: {name} (train + eval) | {seconds / 60:.1f} min |' for name, seconds in timings.items()]
    summary.append(f'| time: whole demo | {total / 60:.1f} min |')
    (out / 'summary.md').write_text('\n'.join(summary) + '\n')
    (out / 'summary.json').write_text(json.dumps(dict(backbone=args.backbone, metrics=results,
                                                      seconds=dict(timings, total=total)), indent=2))
    print('\n' + '\n'.join(summary))
    print('\npictures:')
    for path in pictures:
        print(f'  {path}')


if __name__ == '__main__':
    run_cli(main)
