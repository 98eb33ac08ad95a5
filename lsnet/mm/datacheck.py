"""Checking a dataset before training, so bad files fail early with their names.

``CheckedDataset`` wraps any dataset config (mmdet/mmseg/our classification folders) and, when it is
built, checks every sample: the image exists (and, with ``decode=True``, decodes completely, which
catches truncated files); a COCO annotation file (read once: the checks see mmdet's own load) is
valid JSON with images, annotations and categories, its category ids belong to the configured
classes, its boxes have a positive size inside their image and point at an existing image;
segmentation label maps have their image's size and (with ``decode=True``) hold only class indices
or the ignore index. Problems raise one error listing the first
offenders with the count, or, with ``on_error='skip'``, drop those samples and log how many.
Empty datasets are refused. ``tools/train.py --check-data`` wraps the training set with it.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.logging import print_log
from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS
from PIL import Image
from torch.utils.data import Dataset


class DataError(ValueError):
    """A dataset holds samples that cannot be trained on."""


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


def _recording_coco_api(api: type, seen: list) -> type:
    """A subclass of a dataset's COCO API that keeps the annotation file's content it parsed, so the
    checks read mmdet's own load of the file instead of loading it a second time."""

    class RecordingCOCO(api):
        def __init__(self, annotation_file=None):
            self.source = annotation_file
            try:
                super().__init__(annotation_file)
            except json.JSONDecodeError as err:
                raise DataError(f'{annotation_file} is not valid JSON (truncated?): {err}') from None
            fatal = coco_structure_problems(self.dataset, annotation_file)
            if fatal:  # mmdet would fail later without naming the file
                raise DataError('; '.join(fatal))
            seen.append(self)
    return RecordingCOCO


def coco_structure_problems(content: dict, ann_file: str) -> list[str]:
    """What makes a COCO annotation file unusable as a whole."""
    if not isinstance(content, dict):
        return [f'{ann_file} does not hold a JSON object']
    fatal = [f'{ann_file} has no "{key}" list' for key in ('images', 'annotations', 'categories')
             if not isinstance(content.get(key), list)]
    if not fatal and not content['annotations']:
        fatal.append(f'{ann_file} has no annotations: an empty "annotations" list')
    return fatal


def coco_problems(content: dict, ann_file: str, classes: list) -> tuple[list[str], set]:
    """Problems of a COCO annotation file: structure errors (fatal) and bad annotations, returned as
    (messages, ids of the bad annotations). Boxes are checked against their image's size."""
    fatal = coco_structure_problems(content, ann_file)
    if fatal:
        return fatal, set()
    images = {image['id']: image for image in content['images']}
    known = {c['id']: c['name'] for c in content['categories']}
    allowed = {cid for cid, name in known.items() if name in classes}
    messages, bad = [], set()
    foreign = sorted({a['category_id'] for a in content['annotations'] if a.get('category_id') not in allowed})
    if foreign:
        names = [f'{cid} ({known.get(cid, "not in categories")})' for cid in foreign]
        messages.append(f'{ann_file}: annotations use category ids {names[:10]} that are not among the '
                        f'configured classes {classes} (ids {sorted(allowed)}); mmdet would drop them silently')
    for ann in content['annotations']:
        image = images.get(ann.get('image_id'))
        if image is None:
            messages.append(f'{ann_file}: annotation {ann.get("id")} points at image_id {ann.get("image_id")}, '
                            'which is not in "images"')
            bad.add(ann.get('id'))
            continue
        if ann.get('iscrowd', 0) or 'bbox' not in ann:
            continue
        x, y, w, h = ann['bbox']
        if w <= 0 or h <= 0:
            messages.append(f'{ann_file}: annotation {ann.get("id")} (image {image.get("file_name")}) has a box '
                            f'of width {w} and height {h}')
            bad.add(ann.get('id'))
        elif x < -1 or y < -1 or x + w > image['width'] + 1 or y + h > image['height'] + 1:
            messages.append(f'{ann_file}: annotation {ann.get("id")} (image {image.get("file_name")}, '
                            f'{image["width"]}x{image["height"]}) has box {[x, y, w, h]} outside the image')
            bad.add(ann.get('id'))
    return messages, bad


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
    """Build ``dataset`` and check it (see module docstring).

    Args:
        dataset (dict): The dataset config to wrap.
        on_error (str): 'raise' (default) or 'skip' bad samples.
        decode (bool): Decode every image fully (slower; finds truncated files). Default: False.
        ignore_index (int): Allowed label-map value besides the classes. Default: 255.
    """

    def __init__(self, dataset: dict, on_error: str = 'raise', decode: bool = False, ignore_index: int = 255):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"CheckedDataset: on_error={on_error!r}; valid: 'raise', 'skip'")
        if isinstance(dataset, dict) and 'ann_file' in dataset:
            dataset = dict(dataset, lazy_init=True)  # so the COCO load below can be watched
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        loaded: list = []
        if hasattr(self.dataset, 'COCOAPI'):
            self.dataset.COCOAPI = _recording_coco_api(type(self.dataset).COCOAPI, loaded)
        if hasattr(self.dataset, 'full_init'):
            try:
                self.dataset.full_init()
            except json.JSONDecodeError as err:
                raise DataError(f'{getattr(self.dataset, "ann_file", "annotation file")} is not valid JSON '
                                f'(truncated?): {err}') from None
        self.metainfo = getattr(self.dataset, 'metainfo', {})
        coco_messages = []
        for api in loaded:
            messages, bad_annotations = coco_problems(api.dataset, api.source, list(self.metainfo.get('classes', ())))
            if messages and (on_error == 'raise' or not bad_annotations):
                listed = '\n  '.join(messages[:10])
                raise DataError(f'{len(messages)} problem(s) in {api.source}:\n  {listed}'
                                f'{chr(10) + "  ..." if len(messages) > 10 else ""}\nFix them, or skip the bad '
                                "annotations with tools/train.py --check-data skip.")
            coco_messages += messages
        if coco_messages:
            print_log(f'CheckedDataset: skipping {len(coco_messages)} bad COCO annotation(s) (mmdet ignores '
                      f'zero-size boxes and unknown image ids; boxes crossing the border are dropped here), '
                      f'e.g. {coco_messages[0]}', logger='current', level=30)
            self._drop_boxes_outside()
        size = len(self.dataset)
        if size == 0:
            raise DataError(f'dataset {type(self.dataset).__name__} is empty (config: {dataset})')
        empty = empty_class_folders(self.dataset)
        if empty and on_error == 'raise':
            raise DataError(f'class folder(s) without images: {empty[:10]}; their classes would never be '
                            "seen in training. Remove them, list the classes, or use --check-data skip.")
        if empty:
            print_log(f'CheckedDataset: {len(empty)} class folder(s) without images, e.g. {empty[0]}',
                      logger='current', level=30)
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
                      logger='current', level=30)

    def _drop_boxes_outside(self) -> None:
        """--check-data skip: remove instances whose box leaves its image (mmdet would keep them)."""
        for info in getattr(self.dataset, 'data_list', []):
            width, height = info.get('width'), info.get('height')
            if width is None or 'instances' not in info:
                continue
            info['instances'] = [inst for inst in info['instances']
                                 if inst['bbox'][0] >= -1 and inst['bbox'][1] >= -1
                                 and inst['bbox'][2] <= width + 1 and inst['bbox'][3] <= height + 1]

    def _sample_problem(self, index: int, decode: bool, num_classes: Optional[int], ignore_index: int):
        dataset = self.dataset
        if hasattr(dataset, 'get_data_info'):
            info = dataset.get_data_info(index)
            problem = _image_problem(info['img_path'], decode)
            if problem or not info.get('seg_map_path'):
                return problem
            seg_path = info['seg_map_path']
            if not osp.isfile(seg_path):
                return f'missing label map {seg_path}'
            with Image.open(info['img_path']) as image, Image.open(seg_path) as label:  # headers only
                if image.size != label.size:
                    return (f'label map {seg_path} is {label.size[0]}x{label.size[1]} but its image '
                            f'{info["img_path"]} is {image.size[0]}x{image.size[1]}')
            if num_classes and decode:
                values = np.unique(np.asarray(Image.open(seg_path)))
                if info.get('reduce_zero_label', getattr(dataset, 'reduce_zero_label', False)):
                    # mmseg: 0 becomes the ignore index, 1..n become 0..n-1, the ignore index stays
                    values = np.array([ignore_index if v in (0, ignore_index) else v - 1 for v in values.tolist()])
                bad = values[(values >= num_classes) & (values != ignore_index)]
                if bad.size:
                    return (f'label map {seg_path} has values {bad.tolist()[:8]} outside the {num_classes} classes '
                            f'(0..{num_classes - 1}, ignore {ignore_index})')
            return None
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

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]
