"""Checking a dataset before training, so bad files fail early with their names.

``CheckedDataset`` wraps any dataset config (mmdet/mmseg/our classification folders) and, when it is
built, checks every sample: the image exists (and, with ``decode=True``, decodes completely, which
catches truncated files and decompression bombs); class folders are not empty. The task-specific
checks live with their task, which registers them (``register_task_check``): COCO annotation files
in ``lsnet.detection.datacheck``, segmentation label maps in ``lsnet.segmentation.datacheck``. Problems raise one
error listing the first offenders with the count, or, with ``on_error='skip'``, drop those samples
and log how many. Empty datasets are refused. ``tools/train.py --check-data`` wraps the training
set with it; under another launcher, wrap ``train_dataloader.dataset`` in the config.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os.path as osp
from typing import Optional

from mmengine.logging import print_log
from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS
from PIL import Image
from torch.utils.data import Dataset


class DataError(ValueError):
    """A dataset holds samples that cannot be trained on."""


class BatchError(RuntimeError):
    """A step failed on a batch; the message names the batch's files."""


def batch_files(data_batch) -> list[str]:
    """The image and label-map files of an mmdet/mmseg batch (their data samples' metainfo)."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    files = []
    for sample in samples if isinstance(samples, (list, tuple)) else []:
        meta = getattr(sample, 'metainfo', None) or {}
        files += [str(meta[key]) for key in ('img_path', 'seg_map_path') if meta.get(key)]
    return files


@contextlib.contextmanager
def naming_batch_on_failure(data_batch, step: str):
    """Re-raise a failure of ``step`` (e.g. 'training iteration 12') naming the batch's files, so that
    damage only a loss reveals (a label value beyond the classes) points at the file."""
    try:
        yield
    except (DataError, BatchError):
        raise
    except Exception as err:
        files = batch_files(data_batch)
        if not files:
            raise
        raise BatchError(f'{step} failed on the batch of {", ".join(files)}: {type(err).__name__}: {err}') from err


# The task-specific checks, registered by their task packages (lsnet.detection: COCO annotations,
# lsnet.segmentation: label maps) when imported. A check has applies(dataset), before_load(dataset),
# after_load(dataset, on_error) and sample_problem(info, dataset, decode, num_classes, ignore_index).
_TASK_CHECKS: list = []


def register_task_check(check: type) -> type:
    """Class decorator: ``CheckedDataset`` runs ``check`` on every dataset it applies to."""
    if check not in _TASK_CHECKS:
        _TASK_CHECKS.append(check)
    return check


def task_checks(dataset) -> list:
    """Instances of the registered task checks that apply to ``dataset``."""
    return [check() for check in _TASK_CHECKS if check.applies(dataset)]


# PIL refuses twice its MAX_IMAGE_PIXELS (about 179M) as a decompression bomb, OpenCV 2**30 pixels.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 2 ** 28


def _image_problem(path: str, decode: bool) -> Optional[str]:
    if not osp.isfile(path):
        return f'missing image {path}'
    if osp.getsize(path) == 0:
        return f'empty image file {path} (0 bytes)'
    if decode:
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return (f'image {path}: its header claims {width}x{height} pixels, more than the decoders '
                            f'accept ({MAX_IMAGE_PIXELS} pixels)')
                image.load()
        except Image.DecompressionBombError as err:
            return f'image {path}: its header claims more pixels than the decoders accept ({err})'
        except Exception as err:  # PIL raises several types for corrupt/truncated files
            return f'corrupt or truncated image {path} ({err})'
    return None


def empty_class_folders(dataset) -> list[str]:
    """Class folders of an image-folder dataset that hold no image."""
    folder = getattr(dataset, 'folder', None)
    if not folder or not hasattr(dataset, 'samples'):
        return []
    counts = {name: 0 for name in dataset.classes}
    for _, label in dataset.samples:
        counts[dataset.classes[label]] += 1
    return [osp.join(folder, name) for name, count in counts.items() if count == 0]


def model_num_classes(model) -> Optional[int]:
    """The number of classes a classifier, detector or segmentor predicts (None: unknown)."""
    for path in ('backbone.num_classes', 'bbox_head.num_classes', 'roi_head.bbox_head.num_classes',
                 'decode_head.num_classes'):
        value = model
        for part in path.split('.'):
            value = getattr(value, part, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@HOOKS.register_module()
class ClassCountCheckHook(Hook):
    """Before training: the training set's classes must fit the model's head; otherwise the run
    stops naming the dataset and both counts, not with "index 4 is out of bounds" an epoch later."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        expected = model_num_classes(model)
        if classes is None or expected is None or len(classes) <= expected:
            return
        where = getattr(dataset, 'folder', None) or getattr(dataset, 'ann_file', None) or type(dataset).__name__
        raise DataError(f'the training set {where} has {len(classes)} classes {list(classes)[:12]} but the model '
                        f'predicts {expected}: set the head\'s num_classes to {len(classes)} or list the '
                        'classes to train on in the dataset config')


@DATASETS.register_module()
class CheckedDataset(Dataset):
    """Build ``dataset`` and check it (see module docstring). Whether checked or not, a sample whose
    loading fails later (in its pipeline) raises ``DataError`` naming the split, the index and the file.

    Args:
        dataset (dict): The dataset config to wrap.
        on_error (str): 'raise' (default) or 'skip' bad samples.
        decode (bool): Decode every image fully (slower; finds truncated files). Default: False.
        ignore_index (int): Allowed label-map value besides the classes. Default: 255.
        split (str): What the set is ('train', 'val', 'test'), for messages. Default: 'train'.
        check (bool): Run the checks when built; False only names samples that fail to load. Default: True.
    """

    def __init__(self, dataset: dict, on_error: str = 'raise', decode: bool = False, ignore_index: int = 255,
                 split: str = 'train', check: bool = True):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"CheckedDataset: on_error={on_error!r}; valid: 'raise', 'skip'")
        self.split = split
        if not check:
            try:
                self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
            except (DataError, FileNotFoundError):
                raise
            except Exception as err:  # e.g. mmdet parsing a COCO file with a box given as strings
                source = (osp.join(dataset.get('data_root') or '', dataset.get('ann_file') or '')
                          if isinstance(dataset, dict) else type(dataset).__name__)
                raise DataError(f'the {split} set ({source}) failed to load: {type(err).__name__}: {err}') from err
            self.metainfo = getattr(self.dataset, 'metainfo', {})
            self.indices, self.checks, self.num_skipped = range(len(self.dataset)), [], 0
            return
        if isinstance(dataset, dict) and 'ann_file' in dataset:
            dataset = dict(dataset, lazy_init=True)  # so the annotation load below can be watched
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.checks = task_checks(self.dataset)
        for check in self.checks:
            check.before_load(self.dataset)
        if hasattr(self.dataset, 'full_init'):
            try:
                self.dataset.full_init()
            except json.JSONDecodeError as err:
                raise DataError(f'{getattr(self.dataset, "ann_file", "annotation file")} is not valid JSON '
                                f'(truncated?): {err}') from None
        self.metainfo = getattr(self.dataset, 'metainfo', {})
        for check in self.checks:
            check.after_load(self.dataset, on_error)
        size = len(self.dataset)
        if size == 0:
            raise DataError(f'dataset {type(self.dataset).__name__} is empty (config: {dataset})')
        empty = empty_class_folders(self.dataset)
        if empty and on_error == 'raise':
            raise DataError(f'class folder(s) without images: {empty[:10]}; their classes would never be '
                            "seen in training. Remove them, list the classes, or use --check-data skip.")
        if empty:
            print_log(f'CheckedDataset: {len(empty)} class folder(s) without images, e.g. {empty[0]}',
                      logger='current', level=logging.WARNING)
        num_classes = len(self.metainfo.get('classes', ())) or None
        bad = {}
        for index in range(size):
            problem = self._sample_problem(index, decode, num_classes, ignore_index)
            if problem:
                bad[index] = problem
        if bad and on_error == 'raise':
            listed = '\n  '.join(list(bad.values())[:10])
            raise DataError(f'{len(bad)} of {size} samples of {type(self.dataset).__name__} are unusable:\n  {listed}'
                            f'{chr(10) + "  ..." if len(bad) > 10 else ""}\nFix them, or skip them with '
                            "CheckedDataset(on_error='skip') / tools/train.py --check-data skip.")
        self.indices = [i for i in range(size) if i not in bad]
        if not self.indices:
            raise DataError(f'every sample of {type(self.dataset).__name__} is unusable; first: {next(iter(bad.values()))}')
        self.num_skipped = len(bad)
        if bad:
            print_log(f'CheckedDataset: skipped {len(bad)} of {size} samples, e.g. {next(iter(bad.values()))}',
                      logger='current', level=logging.WARNING)

    def _sample_problem(self, index: int, decode: bool, num_classes: Optional[int], ignore_index: int):
        dataset = self.dataset
        if hasattr(dataset, 'get_data_info'):
            info = dataset.get_data_info(index)
            problem = _image_problem(info['img_path'], decode)
            for check in self.checks:
                problem = problem or check.sample_problem(info, dataset, decode, num_classes, ignore_index)
            return problem
        if hasattr(dataset, 'samples'):  # ImageFolderDataset
            return _image_problem(dataset.samples[index][0], decode)
        return None

    def __len__(self) -> int:
        return len(self.indices)

    def get_data_info(self, index: int) -> dict:
        return self.dataset.get_data_info(self.indices[index])

    def __getattr__(self, name: str):
        # samplers and hooks ask the dataset for attributes (e.g. get_data_info, cat_ids)
        if name in ('dataset', 'indices') or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def sample_name(self, index: int) -> str:
        """The file(s) behind sample ``index`` of the wrapped dataset."""
        dataset = self.dataset
        try:
            if hasattr(dataset, 'get_data_info'):
                info = dataset.get_data_info(index)
                return ', '.join(str(info[k]) for k in ('img_path', 'seg_map_path') if info.get(k))
            if hasattr(dataset, 'samples'):
                return str(dataset.samples[index][0])
        except Exception:  # the description must not hide the original failure
            pass
        return '?'

    def __getitem__(self, index: int):
        source = self.indices[index]
        try:
            return self.dataset[source]
        except DataError:
            raise
        except Exception as err:
            raise DataError(f'{self.split} sample {source} ({self.sample_name(source)}) of '
                            f'{type(self.dataset).__name__} failed to load: {type(err).__name__}: {err}') from err
