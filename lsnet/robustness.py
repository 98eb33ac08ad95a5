"""Robustness benchmarks as released with LSNet: ImageNet-C (mCE), ImageNet-A, ImageNet-R, ImageNet-Sketch.

Folder layouts (the datasets' own): ImageNet-C ``root/<corruption>/<severity 1-5>/<wnid>/*``;
ImageNet-A/-R/-Sketch ``root/<wnid>/*``. The model's 1000 outputs are mapped to a dataset's classes
by WordNet id, using the class order of the ImageNet-1K training folders (sorted wnids); A and R
keep only their 200 classes' logits.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader

# AlexNet's top-1 error per corruption, averaged over the 5 severities (Hendrycks & Dietterich, ICLR 2019);
# the mCE normaliser. The first 15 are the benchmark's corruptions, the last 4 its "extra" set.
ALEXNET_ERROR = {
    'gaussian_noise': 0.886428, 'shot_noise': 0.894468, 'impulse_noise': 0.922640, 'defocus_blur': 0.819880,
    'glass_blur': 0.826268, 'motion_blur': 0.785948, 'zoom_blur': 0.798360, 'snow': 0.866816, 'frost': 0.826572,
    'fog': 0.819324, 'brightness': 0.564592, 'contrast': 0.853204, 'elastic_transform': 0.646056,
    'pixelate': 0.717840, 'jpeg_compression': 0.606500,
    'speckle_noise': 0.845388, 'gaussian_blur': 0.787108, 'spatter': 0.717512, 'saturate': 0.658248,
}
MAIN_CORRUPTIONS = tuple(list(ALEXNET_ERROR)[:15])


def corruption_errors(errors: dict[str, Sequence[float]]) -> dict[str, float]:
    """CE per corruption: sum of the model's errors over severities / AlexNet's, in percent."""
    result = {}
    for corruption, per_severity in errors.items():
        if corruption not in ALEXNET_ERROR:
            raise ValueError(f'unknown ImageNet-C corruption {corruption!r}; known: {sorted(ALEXNET_ERROR)}')
        result[corruption] = 100.0 * sum(per_severity) / (ALEXNET_ERROR[corruption] * len(per_severity))
    return result


def mean_corruption_error(errors: dict[str, Sequence[float]]) -> float:
    """mCE over the 15 main corruptions present in ``errors`` (all present ones if none are main)."""
    ces = corruption_errors(errors)
    main = [ces[c] for c in MAIN_CORRUPTIONS if c in ces] or list(ces.values())
    return sum(main) / len(main)


@torch.no_grad()
def top1_error(model: torch.nn.Module, root: str, class_index: dict[str, int], transform: dict,
               batch_size: int = 64, num_workers: int = 2, restrict: bool = False,
               device: str = 'cpu') -> float:
    """Top-1 error on class folders named by wnid. ``restrict``: arg-max over these classes only."""
    from .classification import ImageFolderDataset
    wnids = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
    missing = [w for w in wnids if w not in class_index]
    if missing:
        raise ValueError(f'{root}: class folders {missing[:5]} are not among the model\'s classes')
    dataset = ImageFolderDataset(osp.dirname(root.rstrip('/')), osp.basename(root.rstrip('/')), classes=wnids,
                                 transform=transform)
    targets = torch.tensor([class_index[w] for w in wnids])
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=torch.utils.data.default_collate)
    wrong = total = 0
    for batch in loader:
        logits = model(batch['inputs'].to(device)).float().cpu()
        if restrict:
            predicted = targets[logits[:, targets].argmax(dim=1)]
        else:
            predicted = logits.argmax(dim=1)
        wrong += int((predicted != targets[batch['data_samples']]).sum())
        total += len(predicted)
    return wrong / total


def evaluate_robustness(model: torch.nn.Module, class_names: Sequence[str], transform: dict,
                        imagenet_c: Optional[str] = None, imagenet_a: Optional[str] = None,
                        imagenet_r: Optional[str] = None, sketch: Optional[str] = None,
                        log: Callable[[str], None] = print, **loader_args) -> dict:
    class_index = {name: i for i, name in enumerate(class_names)}
    results = {}
    if imagenet_c:
        errors = {}
        for corruption in sorted(os.listdir(imagenet_c)):
            folder = osp.join(imagenet_c, corruption)
            if not osp.isdir(folder):
                continue
            severities = sorted(s for s in os.listdir(folder) if s.isdigit())
            errors[corruption] = [top1_error(model, osp.join(folder, s), class_index, transform, **loader_args)
                                  for s in severities]
            log(f'ImageNet-C {corruption}: errors {[round(100 * e, 2) for e in errors[corruption]]}')
        results['imagenet_c/mCE'] = mean_corruption_error(errors)
        results.update({f'imagenet_c/CE_{k}': v for k, v in corruption_errors(errors).items()})
    for name, root, restrict in (('imagenet_a', imagenet_a, True), ('imagenet_r', imagenet_r, True),
                                 ('imagenet_sketch', sketch, False)):
        if root:
            results[f'{name}/top1'] = 100.0 * (1 - top1_error(model, root, class_index, transform, restrict=restrict,
                                                              **loader_args))
            log(f'{name}: top-1 {results[f"{name}/top1"]:.2f}')
    return results
