"""Pictures for the demo, shared part: tiling, the training curves and classification predictions.

Detection and segmentation pictures live with their tasks (``detection.viz``, ``segmentation.viz``).
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def grid(images: list[Image.Image], columns: int = 4) -> Image.Image:
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


def demo_config(cfg: Path, opts: list[str]):
    """The config as the demo's tools ran it: the file plus the same ``--cfg-options`` strings."""
    import argparse
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    config = Config.fromfile(str(cfg))
    config.merge_from_dict(parser.parse_args(['--o', *opts]).o)
    return config


def draw_classification(cfg: Path, checkpoint: Path, opts: list[str], image_root: Path, out: Path,
                        per_class: int = 4) -> Path:
    import torch

    from .checkpoint import load_model_checkpoint
    from .mm.build import build_model_from_config
    from .mm.classification import ImageFolderDataset
    model, config = build_model_from_config(demo_config(cfg, opts), pretrained=False)
    model.eval()
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
    grid(tiles, columns=per_class).save(target)
    return target
