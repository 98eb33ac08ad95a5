"""Pictures for the demo: predictions on validation images and training curves (PNG files)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def _grid(images: list[Image.Image], columns: int = 4) -> Image.Image:
    width, height = images[0].size
    rows = (len(images) + columns - 1) // columns
    canvas = Image.new('RGB', (columns * width, rows * height), (255, 255, 255))
    for index, image in enumerate(images):
        canvas.paste(image.resize((width, height)), ((index % columns) * width, (index // columns) * height))
    return canvas


def _scalars(work_dir: Path) -> list[dict]:
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    return [json.loads(line) for line in files[-1].read_text().splitlines()] if files else []


def draw_curves(work_dirs: dict, out: Path) -> Path:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = {'cls': ('classification', 'top1'), 'det': ('RetinaNet', 'coco/bbox_mAP'), 'seg': ('Semantic FPN', 'mIoU')}
    fig, axes = plt.subplots(1, len(work_dirs), figsize=(5 * len(work_dirs), 3.6), squeeze=False)
    for axis, (task, (_, work, _, _)) in zip(axes[0], work_dirs.items()):
        title, metric = names[task]
        records = _scalars(work)
        train = [(r['step'], r['loss']) for r in records if 'loss' in r and 'step' in r]
        if train:
            axis.plot(*zip(*train), color='tab:blue', lw=1)
        axis.set_xlabel('iteration' if task != 'cls' else 'iteration (logged)')
        axis.set_ylabel('training loss', color='tab:blue')
        axis.set_title(f'{title}: loss and {metric}')
        values = [(r['step'], r[metric]) for r in records if metric in r]
        if values:
            twin = axis.twinx()
            twin.plot(*zip(*values), 'o-', color='tab:red')
            twin.set_ylabel(metric, color='tab:red')
    fig.tight_layout()
    path = out / 'training_curves.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _config(cfg: Path, opts: list[str]):
    """The config as the demo's tools ran it: the file plus the same ``--cfg-options`` strings."""
    import argparse
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    config = Config.fromfile(str(cfg))
    config.merge_from_dict(parser.parse_args(['--o', *opts]).o)
    return config


def draw_detections(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                    score_thr: float = 0.3, count: int = 8) -> Path:
    from mmdet.apis import inference_detector, init_detector
    config = _config(cfg, opts)
    config.model.backbone.init_cfg = None
    model = init_detector(config, str(checkpoint), device='cpu')
    classes = model.dataset_meta['classes']
    tiles = []
    for path in sorted(image_dir.glob('*.jpg'))[:count]:
        result = inference_detector(model, str(path)).pred_instances
        image = Image.open(path).convert('RGB')
        draw = ImageDraw.Draw(image)
        for box, score, label in zip(result.bboxes.numpy(), result.scores.numpy(), result.labels.numpy()):
            if score < score_thr:
                continue
            colour = COLOURS[int(label) % len(COLOURS)]
            draw.rectangle(box.tolist(), outline=colour, width=2)
            draw.text((box[0] + 2, max(0, box[1] - 11)), f'{classes[label]} {score:.2f}', fill=colour)
        tiles.append(image)
    target = out / f'{title}_predictions.png'
    _grid(tiles).save(target)
    return target


def draw_segmentation(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                      count: int = 8) -> Path:
    from mmseg.apis import inference_model, init_model
    config = _config(cfg, opts)
    config.model.backbone.init_cfg = None
    model = init_model(config, str(checkpoint), device='cpu')
    palette = np.array(model.dataset_meta['palette'], dtype=np.uint8)
    tiles = []
    for path in sorted(image_dir.glob('*.jpg'))[:count]:
        prediction = inference_model(model, str(path)).pred_sem_seg.data[0].numpy()
        image = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32)
        overlay = 0.45 * image + 0.55 * palette[prediction].astype(np.float32)
        tiles.append(Image.fromarray(np.concatenate([image, overlay], axis=1).astype(np.uint8)))
    target = out / f'{title}_predictions.png'
    _grid(tiles, columns=2).save(target)
    return target


def draw_classification(cfg: Path, checkpoint: Path, opts: list[str], image_root: Path, out: Path,
                        per_class: int = 4) -> Path:
    import torch
    from mmengine.registry import MODELS

    from .checkpoint import load_model_checkpoint
    from .mm.classification import ImageFolderDataset
    config = _config(cfg, opts)
    model = MODELS.build(config.model).eval()
    load_model_checkpoint(model, checkpoint)
    dataset = ImageFolderDataset(str(image_root), 'val', transform=config.val_dataloader.dataset.transform)
    tiles = []
    picks = [i for label in range(len(dataset.classes))
             for i in [j for j, (_, l) in enumerate(dataset.samples) if l == label][:per_class]]
    for index in picks:
        path, label = dataset.samples[index]
        with torch.no_grad():
            scores = model(dataset[index]['inputs'][None], mode='tensor').softmax(-1)[0]
        predicted = int(scores.argmax())
        image = Image.open(path).convert('RGB').resize((128, 128))
        draw = ImageDraw.Draw(image)
        colour = (0, 160, 0) if predicted == label else (220, 0, 0)
        draw.rectangle([0, 0, 127, 14], fill=(255, 255, 255))
        draw.text((2, 2), f'{dataset.classes[predicted]} {float(scores[predicted]):.2f}', fill=colour)
        tiles.append(image)
    target = out / 'classification_predictions.png'
    _grid(tiles, columns=per_class).save(target)
    return target


def draw_all(work_dirs: dict, data: Path, out: Path, backbone: str) -> list[Path]:
    paths = []
    if 'cls' in work_dirs:
        cfg, _, checkpoint, opts = work_dirs['cls']
        paths.append(draw_classification(cfg, checkpoint, opts, data / 'imagenet', out))
    if 'det' in work_dirs:
        cfg, _, checkpoint, opts = work_dirs['det']
        paths.append(draw_detections(cfg, checkpoint, opts, data / 'coco' / 'val2017', out, f'retinanet_{backbone}'))
    if 'seg' in work_dirs:
        cfg, _, checkpoint, opts = work_dirs['seg']
        paths.append(draw_segmentation(cfg, checkpoint, opts, data / 'ade' / 'images' / 'validation', out,
                                       f'semantic_fpn_{backbone}'))
    if work_dirs:
        paths.append(draw_curves(work_dirs, out))
    return paths
