"""The demo's classification pictures."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..viz import captioned, demo_config, grid, titled


def draw_classification(cfg: Path, checkpoint: Path, opts: list[str], image_root: Path, out: Path,
                        per_class: int = 4) -> Path:
    """Validation images, ``per_class`` of each class: true class, prediction and its probability,
    green when right and red when wrong."""
    import torch

    from ..checkpoint import load_model_checkpoint
    from ..mm.build import build_model_from_config
    from .data import ImageFolderDataset
    model, config = build_model_from_config(demo_config(cfg, opts), pretrained=False)
    model.eval()
    load_model_checkpoint(model, checkpoint)
    dataset = ImageFolderDataset(str(image_root), 'val', transform=config.val_dataloader.dataset.transform)
    tiles, right = [], 0
    picks = [i for label in range(len(dataset.classes))
             for i in [j for j, (_, l) in enumerate(dataset.samples) if l == label][:per_class]]
    for index in picks:
        path, label = dataset.samples[index]
        with torch.no_grad():
            scores = model(dataset[index]['inputs'][None], mode='tensor').softmax(-1)[0]
        predicted = int(scores.argmax())
        correct = predicted == label
        right += correct
        image = Image.open(path).convert('RGB').resize((160, 160))
        colour = (0, 140, 0) if correct else (210, 0, 0)
        caption = (f'{"right" if correct else "WRONG"}: {dataset.classes[predicted]} {float(scores[predicted]):.2f}'
                   + ('' if correct else f' (is {dataset.classes[label]})'))
        tiles.append(captioned(image, caption, colour, border=colour))
    target = out / 'classification_predictions.png'
    title = (f'Classification: {right} of {len(picks)} validation images right '
             f'({per_class} per class; caption = prediction and its probability)')
    titled(grid(tiles, columns=per_class), title).save(target)
    return target
