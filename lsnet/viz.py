"""Pictures for the demo, shared part: tiling, captions, the training curves.

Each task draws its predictions in its own package (``lsnet.classification.viz``,
``lsnet.detection.viz``, ``lsnet.segmentation.viz``).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def grid(images: list[Image.Image], columns: int = 4, gap: int = 6) -> Image.Image:
    """Tile ``images`` (resized to the first one's size) ``columns`` to a row, with white gaps."""
    width, height = images[0].size
    rows = (len(images) + columns - 1) // columns
    canvas = Image.new('RGB', (columns * (width + gap) - gap, rows * (height + gap) - gap), (255, 255, 255))
    for index, image in enumerate(images):
        canvas.paste(image.resize((width, height)),
                     ((index % columns) * (width + gap), (index // columns) * (height + gap)))
    return canvas


def display_scale(image: Image.Image, min_side: int = 240) -> int:
    """The whole-number factor that shows ``image`` at least ``min_side`` pixels on its short side."""
    return max(1, -(-min_side // min(image.size)))


def enlarged(image: Image.Image, scale: int, resample=Image.BILINEAR) -> Image.Image:
    return image if scale == 1 else image.resize((image.size[0] * scale, image.size[1] * scale), resample)


def font(size: int = 13) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def captioned(image: Image.Image, caption: str, colour=(0, 0, 0), border=None, height: int = 20) -> Image.Image:
    """``image`` with a one-line caption above it, and an optional coloured border."""
    width = image.size[0]
    panel = Image.new('RGB', (width, image.size[1] + height), (255, 255, 255))
    panel.paste(image, (0, height))
    draw = ImageDraw.Draw(panel)
    draw.text((3, 3), caption, fill=colour, font=font())
    if border is not None:
        draw.rectangle([0, height, width - 1, panel.size[1] - 1], outline=border, width=3)
    return panel


def side_by_side(panels: list[Image.Image], gap: int = 4) -> Image.Image:
    """Panels of equal height in one row."""
    width = sum(p.size[0] for p in panels) + gap * (len(panels) - 1)
    row = Image.new('RGB', (width, max(p.size[1] for p in panels)), (255, 255, 255))
    x = 0
    for panel in panels:
        row.paste(panel, (x, 0))
        x += panel.size[0] + gap
    return row


def titled(image: Image.Image, title: str, height: int = 26) -> Image.Image:
    """``image`` under a title line (the picture's own caption)."""
    canvas = Image.new('RGB', (image.size[0], image.size[1] + height), (255, 255, 255))
    canvas.paste(image, (0, height))
    ImageDraw.Draw(canvas).text((4, 5), title, fill=(0, 0, 0), font=font(15))
    return canvas


def draw_curves(work_dirs: dict, out: Path) -> Path:
    """One panel per task (``work_dirs``: task -> its training work dir): the training loss and, on the right axis, the validation metric at each
    evaluation (its values written beside the points). Classification is drawn against epochs,
    the iteration-based detection and segmentation runs against iterations."""
    import matplotlib
    from .mm.workdir import logged_scalars
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = {'cls': ('Classification', 'top1', 'top-1 (%)'), 'det': ('RetinaNet', 'coco/bbox_mAP', 'bbox mAP'),
             'seg': ('Semantic FPN', 'mIoU', 'mIoU (%)')}
    fig, axes = plt.subplots(1, len(work_dirs), figsize=(5.2 * len(work_dirs), 3.8), squeeze=False)
    for axis, (task, work) in zip(axes[0], work_dirs.items()):
        title, metric, label = names[task]
        records = logged_scalars(work)
        train = [r for r in records if 'loss' in r and 'iter' in r]
        by_epoch = task == 'cls'
        if by_epoch and train:  # train records carry the global iteration; evaluations the epoch
            per_epoch = train[-1]['iter'] / max(train[-1]['epoch'], 1)
            xs = [r['iter'] / per_epoch for r in train]
        else:
            xs = [r['iter'] for r in train]
        axis.plot(xs, [r['loss'] for r in train], color='tab:blue', lw=1)
        axis.set_xlabel('epoch' if by_epoch else 'iteration')
        axis.set_ylabel('training loss', color='tab:blue')
        axis.set_title(f'{title}: training loss and validation {label}', fontsize=10)
        values = [(r['step'], r[metric]) for r in records if metric in r]
        if values:
            twin = axis.twinx()
            twin.plot(*zip(*values), 'o-', color='tab:red')
            twin.set_ylabel(f'validation {label}', color='tab:red')
            for x, y in values:
                twin.annotate(f'{y:.3g}', (x, y), textcoords='offset points', xytext=(0, 6), ha='center',
                              fontsize=8, color='tab:red')
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
