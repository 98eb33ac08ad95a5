"""Segmentation pictures for the demo: predicted classes over validation images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lsnet.viz import demo_config, grid


def draw_segmentation(cfg: Path, checkpoint: Path, opts: list[str], image_dir: Path, out: Path, title: str,
                      count: int = 8) -> Path:
    from mmseg.apis import inference_model, init_model
    config = demo_config(cfg, opts)
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
    grid(tiles, columns=2).save(target)
    return target
