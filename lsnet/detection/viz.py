"""Detection pictures for the demo: ground truth and predicted boxes side by side, with class names."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from ..viz import COLOURS, captioned, demo_config, display_scale, enlarged, font, grid, side_by_side, titled


def _boxes(image: Image.Image, boxes: list, classes: list[str], scale: int) -> Image.Image:
    """``image`` enlarged ``scale`` times with ``(x0, y0, x1, y1, class index, score or None)`` boxes
    (image coordinates) and their names."""
    image = enlarged(image, scale)
    draw = ImageDraw.Draw(image)
    for box in boxes:
        x0, y0, x1, y1 = (v * scale for v in box[:4])
        label, score = box[4:]
        colour = COLOURS[int(label) % len(COLOURS)]
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=2)
        text = classes[int(label)] + ('' if score is None else f' {score:.2f}')
        left, top = x0 + 1, max(0, y0 - 15)
        draw.rectangle(draw.textbbox((left, top), text, font=font(12)), fill=(255, 255, 255))
        draw.text((left, top), text, fill=colour, font=font(12))
    return image


def draw_detections(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                    score_thr: float = 0.3, count: int = 6) -> Path:
    """For ``count`` validation images: the annotated boxes beside the detector's boxes scoring at
    least ``score_thr``."""
    from mmdet.apis import inference_detector, init_detector
    config = demo_config(cfg, opts)
    config.model.backbone.init_cfg = None
    model = init_detector(config, str(checkpoint), device='cpu')
    classes = list(model.dataset_meta['classes'])
    annotations = json.loads(Path(config.test_evaluator.ann_file).read_text())
    category_index = {c['id']: classes.index(c['name']) for c in annotations['categories'] if c['name'] in classes}
    truth: dict = {}
    for ann in annotations['annotations']:
        x, y, w, h = ann['bbox']
        truth.setdefault(ann['image_id'], []).append((x, y, x + w, y + h, category_index[ann['category_id']], None))
    rows = []
    for info in sorted(annotations['images'], key=lambda i: i['file_name'])[:count]:
        path = image_dir / info['file_name']
        result = inference_detector(model, str(path)).pred_instances
        found = [(*box.tolist(), int(label), float(score))
                 for box, score, label in zip(result.bboxes.numpy(), result.scores.numpy(), result.labels.numpy())
                 if score >= score_thr]
        image = Image.open(path).convert('RGB')
        expected = truth.get(info['id'], [])
        scale = display_scale(image)
        rows.append(side_by_side([
            captioned(_boxes(image, expected, classes, scale), f'ground truth: {len(expected)} shape(s)'),
            captioned(_boxes(image, found, classes, scale), f'prediction: {len(found)} (score >= {score_thr})')]))
    target = out / f'{title}_predictions.png'
    titled(grid(rows, columns=2, gap=12), f'{title}: validation images, annotated (left) and detected (right)') \
        .save(target)
    return target
