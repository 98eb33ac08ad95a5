"""A corpus of damaged datasets, checkpoints and configs, run through the real command lines
(``tools/train.py``, ``tools/test.py``, ``tools/export_backbone.py``): each must end before any
training with exit code 1 and one paragraph naming the culprit, no traceback."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip('mmdet')

from lsnet.datasets import generate_shapes  # noqa: E402

from mm_helpers import ROOT, write_override  # noqa: E402


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp('corpus')
    generate_shapes(root, ('coco', 'imagenet', 'ade'), num_train=6, num_val=2, image_size=(96, 128), cls_size=32,
                    max_objects=2)
    return root


def coco_json(root):
    return root / 'coco' / 'annotations' / 'instances_train2017.json'


def edit_json(path, change):
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


def damage_box(content, **fields):
    content['annotations'][0].update(fields)


DETECTION = {  # name: (damage, words the message must hold)
    'zero_width_box': (lambda r: edit_json(coco_json(r), lambda c: c['annotations'][0]['bbox'].__setitem__(2, 0)),
                       ['instances_train2017.json', 'width 0']),
    'negative_height_box': (lambda r: edit_json(coco_json(r), lambda c: c['annotations'][1]['bbox'].__setitem__(3, -4)),
                            ['instances_train2017.json', 'height -4']),
    'box_outside_image': (lambda r: edit_json(coco_json(r), lambda c: damage_box(c, bbox=[120, 10, 50, 20])),
                          ['outside the image']),
    'unknown_image_id': (lambda r: edit_json(coco_json(r), lambda c: damage_box(c, image_id=4242)),
                         ['points at image_id 4242']),
    'truncated_json': (lambda r: coco_json(r).write_text(coco_json(r).read_text()[:200]),
                       ['instances_train2017.json', 'not valid JSON']),
    'json_without_images': (lambda r: edit_json(coco_json(r), lambda c: c.pop('images')),
                            ['instances_train2017.json', 'no "images" list']),
    'json_without_annotations': (lambda r: edit_json(coco_json(r), lambda c: c.pop('annotations')),
                                 ['no "annotations" list']),
    'empty_annotation_list': (lambda r: edit_json(coco_json(r), lambda c: c.__setitem__('annotations', [])),
                              ['has no annotations']),
    'zero_byte_image': (lambda r: next(iter(sorted((r / 'coco' / 'train2017').glob('*.jpg')))).write_bytes(b''),
                        ['empty image file', '(0 bytes)']),
    'missing_image': (lambda r: next(iter(sorted((r / 'coco' / 'train2017').glob('*.jpg')))).unlink(),
                      ['missing image']),
    'unknown_category': (lambda r: edit_json(coco_json(r), lambda c: damage_box(c, category_id=77)),
                         ['category ids', '77']),
}


def run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def assert_named_failure(result, words):
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    for word in words:
        assert word in result.stderr, (word, result.stderr[-2000:])


@pytest.mark.parametrize('case', sorted(DETECTION))
def test_damaged_coco_training_set(case, pristine, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(pristine / 'coco', root / 'coco')
    damage, words = DETECTION[case]
    damage(root)
    cfg = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', f'''
        train_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}/coco/'))
    ''')
    assert_named_failure(run(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], ROOT), words)
    assert not list((tmp_path / 'w').glob('*.pth'))


def test_label_map_of_another_size(pristine, tmp_path):
    root = tmp_path / 'ade'
    shutil.copytree(pristine / 'ade', root)
    label = sorted((root / 'annotations' / 'training').glob('*.png'))[0]
    Image.fromarray(np.asarray(Image.open(label))[:50]).save(label)
    cfg = write_override(tmp_path, 'sem_fpn/fpn_lsnet-t_shapes.py', f'''
        train_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}'))
    ''')
    assert_named_failure(run(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], ROOT),
                         [label.name, 'but its image'])


@pytest.mark.parametrize('case', ['empty_class_folder', 'extra_class_folder', 'sixteen_bit_png_is_trained_on'])
def test_class_folders(case, pristine, tmp_path):
    root = tmp_path / 'imagenet'
    shutil.copytree(pristine / 'imagenet', root)
    first = sorted((root / 'train').iterdir())[0]
    if case == 'empty_class_folder':
        for image in first.iterdir():
            image.unlink()
    elif case == 'extra_class_folder':  # a fifth class for a 4-class head
        (root / 'train' / 'hexagon').mkdir()
        for image in sorted(first.iterdir())[:2]:
            (root / 'train' / 'hexagon' / image.name).write_bytes(image.read_bytes())
    else:
        Image.fromarray(np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))).save(first / 'deep.png')
    cfg = write_override(tmp_path, 'classification/lsnet-t_shapes.py', f'''
        train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root='{root}',
                                transform=dict(input_size=32, auto_augment=None, re_prob=0.0)))
        val_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root='{root}', transform=dict(input_size=32)))
        test_dataloader = val_dataloader
        model = dict(backbone=dict(img_size=32), mixup=None)
        train_cfg = dict(max_epochs=1, val_interval=1)
        default_hooks = dict(checkpoint=dict(interval=1))
    ''')
    result = run(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], ROOT)
    if case == 'empty_class_folder':
        assert_named_failure(result, ['class folder(s) without images', first.name])
    elif case == 'extra_class_folder':
        assert_named_failure(result, ['has 5 classes', 'hexagon', 'predicts 4'])
    else:
        assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize('content', ['random', 'empty', 'truncated'])
def test_damaged_checkpoints_through_tools(content, tmp_path):
    path = tmp_path / 'model.pth'
    if content == 'random':
        path.write_bytes(os.urandom(3000))
    elif content == 'truncated':
        torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:700])
    else:
        path.write_bytes(b'')
    words = {'random': ['is not a checkpoint'], 'empty': ['is empty (0 bytes)'],
             'truncated': ['corrupt or truncated']}[content]
    assert_named_failure(run(['tools/export_backbone.py', str(path), str(tmp_path / 'out.pth')], ROOT),
                         [str(path)] + words)
    config = str(ROOT / 'configs' / 'retinanet' / 'retinanet_lsnet-t_fpn_shapes.py')
    assert_named_failure(run(['tools/test.py', config, str(path), '--work-dir', str(tmp_path / 'w')], ROOT),
                         [str(path)] + words)
