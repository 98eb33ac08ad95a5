"""Deterministic synthetic data in the formats the real datasets use.

Images show a few filled shapes (the classes) on textured, cluttered backgrounds, and are written as:

* ``coco/``: ``{train,val}2017/*.jpg`` and ``annotations/instances_{train,val}2017.json`` (boxes and
  polygon masks), read unchanged by mmdet's ``CocoDataset`` and scored by ``CocoMetric``;
* ``ade/``: ``images/{training,validation}/*.jpg`` and ``annotations/.../*.png`` label maps
  (0 = "other", ignored with ``reduce_zero_label``; 1 = background; 2.. = shapes), as ADE20K;
* ``imagenet/``: ``{train,val}/<class>/*.jpg``, one centred shape per image, as ImageFolder.

Everything derives from one seed, so a regenerated set is byte-identical. Generation is skipped
when a finished set with the same parameters is already present (a ``.complete`` marker). A set is
written beside its final place and moved there when finished, replacing only an earlier generated set
(one with a marker), so a set of other sizes leaves no files behind and a folder of other data is
never written into.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star')
SEG_CLASSES = ('background',) + SHAPE_CLASSES


def _background(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Low-contrast colour gradients plus noise and a few clutter lines: texture that is not a class."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        fy, fx, phase = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
        image[..., channel] = 110 + 25 * np.sin(2 * math.pi * (fy * yy / height + fx * xx / width) + phase)
    image += rng.normal(0, 6, size=image.shape)
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(0, 5)):
        points = [tuple(rng.uniform(0, [width, height])) for _ in range(2)]
        draw.line(points, fill=tuple(int(c) for c in rng.integers(40, 220, 3)), width=int(rng.integers(1, 3)))
    return canvas.filter(ImageFilter.GaussianBlur(0.6))


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    if shape == 'circle':
        count, radii = 32, [radius]
    elif shape == 'square':
        count, radii = 4, [radius]
    elif shape == 'triangle':
        count, radii = 3, [radius]
    else:  # star: alternate outer and inner radius
        count, radii = 10, [radius, radius * 0.45]
    angle += math.pi / 4 if shape == 'square' else 0.0
    return [(cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / count),
             cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / count)) for i in range(count)]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    # saturated colours, so shapes differ from the background by colour and by edges
    base = rng.permutation([rng.integers(200, 256), rng.integers(0, 60), rng.integers(0, 256)])
    return tuple(int(c) for c in base)


def _scene(rng: np.random.Generator, height: int, width: int, max_objects: int, object_size: tuple[float, float]):
    """An image with 1..max_objects non-overlapping shapes; returns image, objects, label map."""
    image = _background(rng, height, width)
    draw = ImageDraw.Draw(image)
    label = Image.new('L', (width, height), 1)  # 1 = background
    label_draw = ImageDraw.Draw(label)
    objects, placed = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            radius = rng.uniform(*object_size) * min(height, width)
            cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, radius))
        class_index = int(rng.integers(len(SHAPE_CLASSES)))
        polygon = _polygon(SHAPE_CLASSES[class_index], cx, cy, radius, rng.uniform(0, 2 * math.pi))
        draw.polygon(polygon, fill=_colour(rng))
        label_draw.polygon(polygon, fill=class_index + 2)
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        x0, y0 = max(0.0, min(xs)), max(0.0, min(ys))
        x1, y1 = min(float(width), max(xs)), min(float(height), max(ys))
        objects.append(dict(category=class_index, bbox=[x0, y0, x1 - x0, y1 - y0],
                            polygon=[float(v) for point in polygon for v in point]))
    return image, objects, label


def _write_coco(root: Path, split: str, count: int, rng: np.random.Generator, size: tuple[int, int],
                max_objects: int, object_size: tuple[float, float]) -> None:
    image_dir = root / f'{split}2017'
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        height, width = size
        image, objects, _ = _scene(rng, height, width, max_objects, object_size)
        name = f'{index:06d}.jpg'
        image.save(image_dir / name, quality=92)
        images.append(dict(id=index + 1, file_name=name, height=height, width=width))
        for obj in objects:
            poly = np.array(obj['polygon']).reshape(-1, 2)
            area = 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1)))
            annotations.append(dict(id=len(annotations) + 1, image_id=index + 1, category_id=obj['category'] + 1,
                                    bbox=obj['bbox'], area=float(area), iscrowd=0, segmentation=[obj['polygon']]))
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPE_CLASSES)]
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    with open(root / 'annotations' / f'instances_{split}2017.json', 'w') as f:
        json.dump(dict(info=dict(description='lsnet synthetic shapes', version='1.0', year=2026),
                       licenses=[], images=images, annotations=annotations, categories=categories), f)


def _write_ade(root: Path, split: str, count: int, rng: np.random.Generator, size: tuple[int, int],
               max_objects: int, object_size: tuple[float, float]) -> None:
    image_dir, ann_dir = root / 'images' / split, root / 'annotations' / split
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, _, label = _scene(rng, *size, max_objects, object_size)
        image.save(image_dir / f'shapes_{index:06d}.jpg', quality=92)
        label.save(ann_dir / f'shapes_{index:06d}.png')


def _write_imagenet(root: Path, split: str, per_class: int, rng: np.random.Generator, size: int) -> None:
    for class_index, name in enumerate(SHAPE_CLASSES):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = _background(rng, size, size)
            radius = rng.uniform(0.2, 0.4) * size
            cx, cy = size / 2 + rng.uniform(-0.1, 0.1) * size, size / 2 + rng.uniform(-0.1, 0.1) * size
            ImageDraw.Draw(image).polygon(_polygon(name, cx, cy, radius, rng.uniform(0, 2 * math.pi)),
                                          fill=_colour(rng))
            image.save(folder / f'{name}_{index:05d}.jpg', quality=92)


def generate_shapes(root: str | os.PathLike, tasks: tuple[str, ...] = ('coco', 'ade', 'imagenet'),
                    num_train: int = 200, num_val: int = 50, image_size: tuple[int, int] = (64, 64),
                    cls_per_class: Optional[int] = None, cls_size: int = 64, max_objects: int = 3,
                    object_size: tuple[float, float] = (0.2, 0.35), seed: int = 0,
                    progress: Callable[[str], None] = print) -> Path:
    """Write the synthetic datasets under ``root`` (see the module docstring); returns ``root``.

    The defaults are the sizes the ``*_shapes.py`` configs are tuned for: 64 px class images, 64x64
    scenes of up to ``max_objects`` shapes whose radius is ``object_size`` times the short side.
    """
    root = Path(root)
    writers = {'coco': _write_coco, 'ade': _write_ade}
    for task in tasks:
        if task not in ('coco', 'ade', 'imagenet'):
            raise ValueError(f"unknown synthetic task {task!r}; valid: 'coco', 'ade', 'imagenet'")
        params = dict(num_train=num_train, num_val=num_val, image_size=list(image_size), seed=seed,
                      cls_per_class=cls_per_class, cls_size=cls_size, max_objects=max_objects,
                      object_size=list(object_size), version=5)
        target, partial = root / task, root / f'.{task}.partial'
        marker = target / '.complete'
        if marker.exists() and json.loads(marker.read_text()) == params:
            progress(f'synthetic {task} data present in {target}')
            continue
        if target.exists() and not marker.exists() and any(target.iterdir()):
            raise FileExistsError(f'{target} holds files that generate_shapes did not write (no .complete '
                                  f'marker); remove it or choose another root')
        progress(f'generating synthetic {task} data in {target} ...')
        shutil.rmtree(partial, ignore_errors=True)  # an interrupted generation's leftovers
        for split_index, split in enumerate(('train', 'val')):
            rng = np.random.default_rng([seed, ('coco', 'ade', 'imagenet').index(task), split_index])
            count = num_train if split == 'train' else num_val
            if task == 'imagenet':
                per_class = max(1, count // len(SHAPE_CLASSES))
                if cls_per_class:
                    per_class = cls_per_class if split == 'train' else max(1, cls_per_class * num_val // num_train)
                _write_imagenet(partial, split, per_class, rng, cls_size)
            elif task == 'coco':
                writers[task](partial, split, count, rng, image_size, max_objects, object_size)
            else:
                writers[task](partial, 'training' if split == 'train' else 'validation', count, rng,
                              image_size, max_objects, object_size)
        (partial / '.complete').write_text(json.dumps(params))
        if target.exists():  # an earlier generated set (checked above) or an empty folder
            shutil.rmtree(target)
        partial.rename(target)
    return root
