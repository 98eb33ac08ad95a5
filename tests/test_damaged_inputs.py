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

pytestmark = pytest.mark.slow  # every test here runs the project's tools
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
def test_damaged_checkpoints_through_tools(content, tmp_path, noise_file):
    path = tmp_path / 'model.pth'
    if content == 'random':
        path.write_bytes(noise_file.read_bytes())
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


def _huge_header(path):
    """Rewrite ``path`` as a PNG whose header claims 65500x65500 pixels (its data is a 4x4 image)."""
    import io
    import struct
    import zlib
    buffer = io.BytesIO()
    Image.new('RGB', (4, 4)).save(buffer, format='PNG')
    data = bytearray(buffer.getvalue())
    ihdr = data[12:29]  # chunk type and data of the IHDR chunk
    ihdr[4:12] = struct.pack('>II', 65500, 65500)
    data[12:29] = ihdr
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


def _first(folder, pattern='*'):
    return sorted(folder.glob(pattern))[0]


def _label_values(path, value):
    label = np.asarray(Image.open(path)).copy()
    label[:4, :4] = value
    Image.fromarray(label).save(path)


LOAD_TIME = {  # name: (task, damage returning the damaged file, --check-data, words besides the file's name)
    'label_map_in_rgb': ('seg', lambda r: _rgb(_first(r / 'ade' / 'annotations' / 'training')), 'off',
                         ['failed on the batch of']),
    'label_map_in_rgb_checked': ('seg', lambda r: _rgb(_first(r / 'ade' / 'annotations' / 'training')), 'raise',
                                 ['is a RGB image with 3 channels']),
    'label_value_beyond_classes': ('seg', lambda r: _label_values(_first(r / 'ade' / 'annotations' / 'training'), 99),
                                   'off', ['failed on the batch of', 'out of bounds']),
    'image_header_65500x65500': ('det', lambda r: _huge_header(_first(r / 'coco' / 'train2017')), 'off',
                                 ['train sample', 'failed to load']),
    'boxes_as_strings': ('det', lambda r: edit_json(coco_json(r), lambda c: damage_box(c, bbox=['1', '2', '30', '20'])),
                         'raise', ["has bbox ['1', '2', '30', '20']", 'four numbers']),
    'boxes_as_strings_unchecked': ('det', lambda r: edit_json(coco_json(r), lambda c: damage_box(c, bbox=['1', '2', '30', '20'])),
                                   'off', ['instances_train2017.json', 'train set', 'failed to load']),
    'duplicate_image_id': ('det', lambda r: edit_json(coco_json(r), lambda c: c['images'][1].__setitem__(
                               'id', c['images'][0]['id'])), 'raise', ['is given twice']),
}


def _rgb(path):
    Image.open(path).convert('RGB').save(path)
    return path


@pytest.mark.parametrize('case', sorted(LOAD_TIME))
def test_damage_that_loading_or_the_first_step_reveals_names_the_file(case, pristine, tmp_path):
    """Damage the data checks' header pass cannot see (or is told not to look for) fails with the file
    named, in the pipeline or at its first use in a training step, never as a bare library error."""
    task, damage, check, words = LOAD_TIME[case]
    root = tmp_path / 'data'
    folder = 'ade' if task == 'seg' else 'coco'
    shutil.copytree(pristine / folder, root / folder)
    damaged = damage(root)
    if task == 'seg':
        cfg = write_override(tmp_path, 'sem_fpn/fpn_lsnet-t_shapes.py', f'''
            train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{root}/ade'))
            val_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}/ade'))
            test_dataloader = val_dataloader
            train_cfg = dict(max_iters=3, val_interval=3)
        ''')
    else:
        cfg = write_override(tmp_path, 'retinanet/retinanet_lsnet-t_fpn_shapes.py', f'''
            train_dataloader = dict(batch_size=6, num_workers=0, dataset=dict(data_root='{root}/coco/'))
            val_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}/coco/'))
            test_dataloader = val_dataloader
            val_evaluator = dict(ann_file='{root}/coco/annotations/instances_val2017.json')
            test_evaluator = val_evaluator
            train_cfg = dict(max_iters=3, val_interval=3)
        ''')
    result = run(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w'), '--check-data', check], ROOT)
    named = [damaged.name] if damaged is not None else []
    assert_named_failure(result, named + words)
    assert not list((tmp_path / 'w').glob('*.pth'))


def test_validation_set_is_checked_before_training(pristine, tmp_path):
    """A validation label map of another size fails before the first iteration (not at the first
    evaluation), named like a training one."""
    root = tmp_path / 'ade'
    shutil.copytree(pristine / 'ade', root)
    label = _first(root / 'annotations' / 'validation')
    Image.fromarray(np.asarray(Image.open(label))[:, :50]).save(label)
    cfg = write_override(tmp_path, 'sem_fpn/fpn_lsnet-t_shapes.py', f'''
        train_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}'))
        val_dataloader = dict(num_workers=0, dataset=dict(data_root='{root}'))
        test_dataloader = val_dataloader
    ''')
    result = run(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], ROOT)
    assert_named_failure(result, [label.name, 'but its image'])
    assert 'Iter(train)' not in result.stdout


def test_config_with_a_syntax_error_names_the_file(tmp_path):
    cfg = tmp_path / 'broken.py'
    cfg.write_text("_base_ = ['x.py']\nmodel = dict(backbone=dict(type='LSNet'\n")
    assert_named_failure(run(['tools/train.py', str(cfg)], ROOT), [f'config {cfg}', 'line 2'])


def test_export_refuses_non_finite_weights_by_name(tmp_path):
    state = {'patch_embed.0.c.weight': torch.ones(2, 2), 'blocks.3.mixer.bn.running_var': torch.tensor([1.0, float('nan')])}
    source = tmp_path / 'epoch_9.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}, 'meta': {}}, source)
    result = run(['tools/export_backbone.py', str(source), str(tmp_path / 'out.pth')], ROOT)
    assert_named_failure(result, [str(source), 'blocks.3.mixer.bn.running_var', 'NaN or Inf'])
    assert not (tmp_path / 'out.pth').exists()


def test_safetensors_weights_are_read_through_the_safe_path(tmp_path):
    """A .safetensors backbone file (the hub's format) exports and initialises a detector's backbone."""
    import timm
    from safetensors.torch import save_file
    import lsnet  # noqa: F401
    from lsnet.checkpoint import load_pretrained_file
    model = timm.create_model('lsnet_t', num_classes=10)
    source = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(source))
    result = run(['tools/export_backbone.py', str(source), str(tmp_path / 'out.pth')], ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    exported = torch.load(tmp_path / 'out.pth', weights_only=True)['model']
    assert all(torch.equal(exported[k], v) for k, v in model.state_dict().items())
    other = timm.create_model('lsnet_t', num_classes=10)
    load_pretrained_file(other, source)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())
