"""COCO annotation checks for ``lsnet.mm.datacheck.CheckedDataset`` (detection and instance segmentation).

The annotation file is read once: the checks see mmdet's own load of it. It must be valid JSON with
images, annotations and categories; its category ids must belong to the configured classes; its boxes
must have a positive size inside their image and point at an existing image. With
``on_error='skip'`` bad annotations are dropped (mmdet would keep boxes crossing the border).
"""
from __future__ import annotations

import json
import logging

from mmengine.logging import print_log

from ..mm.datacheck import DataError, register_task_check


def recording_coco_api(api: type, seen: list) -> type:
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
    return fatal or coco_type_problems(content, ann_file)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def coco_type_problems(content: dict, ann_file: str, limit: int = 5) -> list[str]:
    """Fields of the wrong type (a box given as strings, an image without a numeric size) and image ids
    given twice: mmdet would fail on them later with a bare TypeError, or merge the images silently."""
    problems, seen = [], {}
    for index, image in enumerate(content['images']):
        if not isinstance(image, dict):
            problems.append(f'{ann_file}: images[{index}] is not an object')
            continue
        wrong = [key for key in ('width', 'height') if not _is_number(image.get(key))]
        if not isinstance(image.get('id'), int) or not isinstance(image.get('file_name'), str):
            wrong.insert(0, 'id/file_name')
        if wrong:
            problems.append(f'{ann_file}: images[{index}] ({image.get("file_name")}) has no valid {", ".join(wrong)}: '
                            f'{ {k: image.get(k) for k in ("id", "file_name", "width", "height")} }')
        elif image['id'] in seen:
            problems.append(f'{ann_file}: image id {image["id"]} is given twice ({seen[image["id"]]} and '
                            f'{image["file_name"]})')
        else:
            seen[image['id']] = image['file_name']
    for index, ann in enumerate(content['annotations']):
        if not isinstance(ann, dict):
            problems.append(f'{ann_file}: annotations[{index}] is not an object')
            continue
        box = ann.get('bbox')
        if box is not None and not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
            problems.append(f'{ann_file}: annotation {ann.get("id")} (image_id {ann.get("image_id")}) has bbox '
                            f'{box!r}; a box is four numbers [x, y, width, height]')
        for key in ('image_id', 'category_id'):
            if not isinstance(ann.get(key), int):
                problems.append(f'{ann_file}: annotation {ann.get("id")} has {key} {ann.get(key)!r}, not an integer')
    if len(problems) > limit:
        problems = problems[:limit] + [f'{ann_file}: ... {len(problems) - limit} more such problem(s)']
    return problems


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


@register_task_check
class CocoAnnotationCheck:
    """The COCO part of ``CheckedDataset``: applies to datasets that load through a COCO API."""

    @staticmethod
    def applies(dataset) -> bool:
        return hasattr(dataset, 'COCOAPI')

    def before_load(self, dataset) -> None:
        self.loaded: list = []
        dataset.COCOAPI = recording_coco_api(type(dataset).COCOAPI, self.loaded)

    def after_load(self, dataset, on_error: str) -> None:
        classes = list((getattr(dataset, 'metainfo', None) or {}).get('classes', ()))
        skipped = []
        for api in self.loaded:
            messages, bad_annotations = coco_problems(api.dataset, api.source, classes)
            if messages and (on_error == 'raise' or not bad_annotations):
                listed = '\n  '.join(messages[:10])
                raise DataError(f'{len(messages)} problem(s) in {api.source}:\n  {listed}'
                                f'{chr(10) + "  ..." if len(messages) > 10 else ""}\nFix them, or skip the bad '
                                "annotations with tools/train.py --check-data skip.")
            skipped += messages
        if skipped:
            print_log(f'CheckedDataset: skipping {len(skipped)} bad COCO annotation(s) (mmdet ignores '
                      f'zero-size boxes and unknown image ids; boxes crossing the border are dropped here), '
                      f'e.g. {skipped[0]}', logger='current', level=logging.WARNING)
            drop_boxes_outside(dataset)

    @staticmethod
    def sample_problem(info: dict, dataset, decode: bool, num_classes, ignore_index: int):
        return None


def drop_boxes_outside(dataset) -> None:
    """--check-data skip: remove instances whose box leaves its image (mmdet would keep them)."""
    for info in getattr(dataset, 'data_list', []):
        width, height = info.get('width'), info.get('height')
        if width is None or 'instances' not in info:
            continue
        info['instances'] = [inst for inst in info['instances']
                             if inst['bbox'][0] >= -1 and inst['bbox'][1] >= -1
                             and inst['bbox'][2] <= width + 1 and inst['bbox'][3] <= height + 1]
