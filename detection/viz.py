"""Detection pictures for the demo: predicted boxes on validation images."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from lsnet.viz import COLOURS, demo_config, grid


def draw_detections(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                    score_thr: float = 0.3, count: int = 8) -> Path:
    from mmdet.apis import inference_detector, init_detector
    config = demo_config(cfg, opts)
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
    grid(tiles).save(target)
    return target
