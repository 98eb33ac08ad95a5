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


def best_per_object(found: list, iou_threshold: float = 0.5) -> list:
    """Of overlapping ``(x0, y0, x1, y1, label, score)`` boxes, whatever their classes, the highest
    scoring one. RetinaNet's NMS runs per class, and mmdet's evaluation wants it so, since a second guess
    of another class can still match; the shapes never overlap, so for the pictures the detector's best
    guess per object is what to show."""
    import torch
    from torchvision.ops import nms
    if not found:
        return []
    boxes = torch.tensor([box[:4] for box in found], dtype=torch.float32)
    scores = torch.tensor([box[5] for box in found], dtype=torch.float32)
    return [found[i] for i in nms(boxes, scores, iou_threshold).tolist()]


class ValidationDetections:
    """The detector of a demo run on its validation images: the annotated boxes and, per image, the
    detector's best box per object (:func:`best_per_object`) among those scoring at least ``score_thr``;
    boxes are ``(x0, y0, x1, y1, class index, score or None)`` in image coordinates."""

    def __init__(self, cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, score_thr: float = 0.3):
        from mmdet.apis import init_detector
        config = demo_config(cfg, opts)
        config.model.backbone.init_cfg = None
        self.model = init_detector(config, str(checkpoint), device='cpu')
        self.classes = list(self.model.dataset_meta['classes'])
        self.image_dir, self.score_thr = image_dir, score_thr
        annotations = json.loads(Path(config.test_evaluator.ann_file).read_text())
        index = {c['id']: self.classes.index(c['name']) for c in annotations['categories'] if c['name'] in self.classes}
        self.truth: dict = {}
        for ann in annotations['annotations']:
            x, y, w, h = ann['bbox']
            self.truth.setdefault(ann['image_id'], []).append((x, y, x + w, y + h, index[ann['category_id']], None))
        self.images = sorted(annotations['images'], key=lambda i: i['file_name'])
        self._found: dict = {}  # image id -> its boxes: the counting pass and the picture share one inference

    def found(self, info: dict) -> list:
        if info['id'] not in self._found:
            from mmdet.apis import inference_detector
            result = inference_detector(self.model, str(self.image_dir / info['file_name'])).pred_instances
            self._found[info['id']] = best_per_object(
                [(*box.tolist(), int(label), float(score)) for box, score, label
                 in zip(result.bboxes.numpy(), result.scores.numpy(), result.labels.numpy()) if score >= self.score_thr])
        return self._found[info['id']]

    def objects_named_right(self, iou_threshold: float = 0.5) -> tuple[int, int]:
        """(annotated objects whose best box overlaps them by ``iou_threshold`` and names their class,
        annotated objects) over all validation images."""
        import torch
        from torchvision.ops import box_iou
        right = total = 0
        for info in self.images:
            found, objects = self.found(info), self.truth.get(info['id'], [])
            total += len(objects)
            if not found or not objects:
                continue
            iou = box_iou(torch.tensor([obj[:4] for obj in objects]), torch.tensor([box[:4] for box in found]))
            for obj, overlaps in zip(objects, iou):
                overlapping = [box for box, value in zip(found, overlaps.tolist()) if value >= iou_threshold]
                right += bool(overlapping) and max(overlapping, key=lambda box: box[5])[4] == obj[4]
        return right, total

    def draw(self, out: Path, title: str, count: int = 6) -> Path:
        """For the first ``count`` validation images: the annotated boxes beside the detector's."""
        rows = []
        for info in self.images[:count]:
            image = Image.open(self.image_dir / info['file_name']).convert('RGB')
            expected, found = self.truth.get(info['id'], []), self.found(info)
            scale = display_scale(image)
            rows.append(side_by_side([
                captioned(_boxes(image, expected, self.classes, scale), f'ground truth: {len(expected)} shape(s)'),
                captioned(_boxes(image, found, self.classes, scale),
                          f'best box per object: {len(found)} (score >= {self.score_thr})')]))
        target = out / f'{title}_predictions.png'
        titled(grid(rows, columns=2, gap=12), f'{title}: validation images, annotated (left) and detected (right)') \
            .save(target)
        return target
