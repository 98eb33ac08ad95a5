"""Classification data: image-folder datasets with timm's transforms, and timm's repeated-augmentation
sampler under MMEngine."""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from timm.data.distributed_sampler import RepeatAugSampler as _TimmRepeatAugSampler
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class ImageFolderDataset(Dataset):
    """``data_root/split/<class>/<image>`` folders, or a file list of ``relative/path label`` lines.

    Args:
        data_root (str): Dataset root.
        split (str): Sub-folder holding the class folders ('train', 'val'). Default: 'train'.
        ann_file (str | None): Optional list file (relative to ``data_root``) instead of folders.
        classes (Sequence[str] | None): Class names in label order; default: sorted folder names.
        transform (dict): Arguments of ``timm.data.create_transform``.

    An unreadable image raises, naming its file; to drop bad samples instead, wrap the dataset in
    ``CheckedDataset(on_error='skip')``, which owns that policy for every task.
    """

    def __init__(self, data_root: str, split: str = 'train', ann_file: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None, transform: Optional[dict] = None):
        self.data_root = data_root
        self.folder = None  # the class-folder root, when the dataset is read from folders
        if ann_file:
            list_path = osp.join(data_root, ann_file)
            if not osp.isfile(list_path):
                raise FileNotFoundError(f'ImageFolderDataset: annotation list not found: {list_path}')
            self.samples = []
            with open(list_path) as f:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    parts = line.rsplit(maxsplit=1)
                    if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                        raise ValueError(f'{list_path}:{line_no}: expected "path label", got {line.strip()!r}')
                    self.samples.append((osp.join(data_root, parts[0]), int(parts[1])))
            self.classes = tuple(classes) if classes else tuple(str(i) for i in range(
                max((s[1] for s in self.samples), default=-1) + 1))
        else:
            folder = self.folder = osp.join(data_root, split)
            if not osp.isdir(folder):
                raise FileNotFoundError(f'ImageFolderDataset: folder not found: {folder}')
            found = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
            self.classes = tuple(classes) if classes else tuple(found)
            unknown = sorted(set(found) - set(self.classes))
            if unknown:
                raise ValueError(f'ImageFolderDataset: {folder} has class folders {unknown} not in classes '
                                 f'{list(self.classes)}')
            self.samples = [(osp.join(folder, name, file), label)
                            for label, name in enumerate(self.classes) if osp.isdir(osp.join(folder, name))
                            for file in sorted(os.listdir(osp.join(folder, name)))
                            if file.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.samples:
            raise ValueError(f'ImageFolderDataset: no images found under {data_root} '
                             f'({"list " + ann_file if ann_file else "split " + split})')
        bad = [(p, l) for p, l in self.samples if not 0 <= l < len(self.classes)]
        if bad:
            raise ValueError(f'ImageFolderDataset: label {bad[0][1]} of {bad[0][0]} is outside 0..{len(self.classes) - 1}')
        self.metainfo = dict(classes=self.classes)
        self.transform = create_transform(**(transform or {}))

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: str) -> Image.Image:
        try:
            with Image.open(path) as image:
                if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                    # 16/32-bit grayscale: convert('RGB') would clip it to a constant image
                    values = np.asarray(image).astype(np.float64)
                    top = 65535.0 if image.mode.startswith('I;16') else max(values.max(), 1.0)
                    image = Image.fromarray((values * (255.0 / top)).round().clip(0, 255).astype(np.uint8))
                return image.convert('RGB')
        except FileNotFoundError as err:
            raise FileNotFoundError(f'image listed in the dataset is missing: {path}') from err
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f'corrupt, truncated or oversized image: {path} ({err})') from err

    def __getitem__(self, index: int) -> dict:
        path, label = self.samples[index]
        return dict(inputs=self.transform(self._load(path)), data_samples=label)


@DATA_SAMPLERS.register_module()
class RepeatAugSampler(_TimmRepeatAugSampler):
    """timm's repeated-augmentation sampler, with world size and rank taken from MMEngine.

    Args:
        seed (int | None): Offset of the per-epoch shuffling seed (timm seeds each epoch's order with
            the epoch number). None: one random seed, the same on every rank, as MMEngine's
            ``DefaultSampler`` does.
    """

    def __init__(self, dataset: Dataset, shuffle: bool = True, num_repeats: int = 3, seed: Optional[int] = None,
                 selected_round: int = 256):
        rank, world_size = get_dist_info()
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, num_repeats=num_repeats,
                         selected_round=selected_round)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        # timm's __iter__ seeds its generator with self.epoch
        self.epoch = self.seed + epoch
