"""Segmentation pictures for the demo: image, ground truth and prediction side by side, with a legend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..viz import captioned, demo_config, display_scale, enlarged, font, grid, side_by_side, titled


def _legend(classes: list[str], palette: np.ndarray, width: int) -> Image.Image:
    legend = Image.new('RGB', (width, 22), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    x = 4
    for name, colour in zip(classes, palette):
        draw.rectangle([x, 5, x + 12, 17], fill=tuple(int(c) for c in colour), outline=(0, 0, 0))
        draw.text((x + 16, 4), name, fill=(0, 0, 0), font=font(12))
        x += 26 + int(draw.textlength(name, font=font(12)))
    return legend


def draw_segmentation(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                      count: int = 4) -> Path:
    """For ``count`` validation images: the image, its label map and the predicted classes, coloured
    by the dataset's palette (pixels the labels ignore are shown black)."""
    from mmseg.apis import inference_model, init_model
    config = demo_config(cfg, opts)
    config.model.backbone.init_cfg = None
    model = init_model(config, str(checkpoint), device='cpu')
    classes = list(model.dataset_meta['classes'])
    palette = np.array(model.dataset_meta['palette'], dtype=np.uint8)
    label_dir = image_dir.parent.parent / 'annotations' / image_dir.name
    rows = []
    for path in sorted(image_dir.glob('*.jpg'))[:count]:
        prediction = inference_model(model, str(path)).pred_sem_seg.data[0].numpy()
        image = Image.open(path).convert('RGB')
        label = np.asarray(Image.open(label_dir / f'{path.stem}.png')).astype(np.int64) - 1  # reduce_zero_label
        truth = np.zeros((*label.shape, 3), np.uint8)
        known = (label >= 0) & (label < len(classes))
        truth[known] = palette[label[known]]
        accuracy = float((prediction[known] == label[known]).mean() * 100)
        scale = display_scale(image, 200)
        rows.append(side_by_side([
            captioned(enlarged(image, scale), 'image'),
            captioned(enlarged(Image.fromarray(truth), scale, Image.NEAREST), 'ground truth'),
            captioned(enlarged(Image.fromarray(palette[prediction]), scale, Image.NEAREST),
                      f'prediction: {accuracy:.0f}% pixels right')]))
    picture = grid(rows, columns=1, gap=10)
    canvas = Image.new('RGB', (picture.size[0], picture.size[1] + 22), (255, 255, 255))
    canvas.paste(picture, (0, 0))
    canvas.paste(_legend(classes, palette, picture.size[0]), (0, picture.size[1]))
    target = out / f'{title}_predictions.png'
    titled(canvas, f'{title}: validation images, label maps and predictions').save(target)
    return target
