"""What MMEngine 0.10 / mmdet 3.3 / mmseg 1.2 lack for current PyTorch, numpy and Pillow, fixed here."""
import numpy as np
import pytest
import torch

pytest.importorskip('mmengine')

import lsnet  # noqa: E402,F401
import lsnet.mm.install_safety  # noqa: E402,F401  (what the configs' custom_imports do)


def test_mmengine_checkpoint_loads_under_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import CheckpointLoader
    buffer = HistoryBuffer()
    buffer.update(0.5)
    state = {'state_dict': {'w': torch.ones(2)},
             'meta': {'seed': np.int64(3), 'rng': np.random.get_state(), 'best': np.float64(0.9)},
             'message_hub': {'log_scalars': {'loss': buffer}}}
    path = tmp_path / 'iter_1.pth'
    torch.save(state, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)  # what MMEngine itself calls under torch >= 2.6
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert loaded['message_hub']['log_scalars']['loss'].current() == 0.5
    assert loaded['meta']['rng'][1].dtype == np.uint32


def test_untrusted_code_is_still_refused(tmp_path):
    import os
    from lsnet import CheckpointError
    from mmengine.runner import CheckpointLoader

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Evil()}, path)
    with pytest.raises(CheckpointError, match='not safe to unpickle'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_randaugment_inc1_runs_with_pinned_pillow():
    # timm's "inc1" RandAugment asks Pillow to posterize to 0 bits, which Pillow 13 rejects.
    from PIL import Image
    from timm.data import create_transform
    transform = create_transform(32, is_training=True, auto_augment='rand-m9-mstd0.5-inc1')
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    for _ in range(300):
        assert transform(image).shape == (3, 32, 32)


def test_coco_metric_on_numpy2_and_current_pycocotools(tmp_path):
    # pycocotools >= 2.0.9 needs an 'info' entry in the ground truth; our data has it like COCO's.
    import json
    from lsnet.datasets import generate_shapes
    generate_shapes(tmp_path, ('coco',), num_train=1, num_val=2, image_size=(64, 64))
    content = json.loads((tmp_path / 'coco' / 'annotations' / 'instances_val2017.json').read_text())
    assert 'info' in content and 'licenses' in content
    from mmdet.evaluation import CocoMetric
    metric = CocoMetric(ann_file=str(tmp_path / 'coco' / 'annotations' / 'instances_val2017.json'), metric='bbox')
    metric.dataset_meta = dict(classes=('circle', 'square', 'triangle', 'star'))
    for image in content['images']:
        anns = [a for a in content['annotations'] if a['image_id'] == image['id']]
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                              for a in anns], dtype=torch.float32)
        metric.process({}, [dict(img_id=image['id'], ori_shape=(64, 64), pred_instances=dict(
            bboxes=boxes, scores=torch.ones(len(anns)), labels=torch.tensor([a['category_id'] - 1 for a in anns])))])
    assert metric.evaluate(size=2)['coco/bbox_mAP'] == pytest.approx(1.0)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_registry_builds_from_toolbox_scopes(scope, tmp_path):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    from reference_weights import write_released_checkpoint
    path = write_released_checkpoint('lsnet_t', tmp_path / 'lsnet_t.pth')
    backbone = registry.build(dict(type='LSNet', arch='t', out_indices=(0, 1, 2, 3), attention_resolution=14,
                                   init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    backbone.init_weights()
    van = registry.build(dict(type='VAN', arch='b0', out_indices=(1, 3)))
    neck = registry.build(dict(type='LSNetFPN', in_channels=[64, 128, 256, 384], out_channels=32, num_outs=5,
                               num_extra_trans_convs=1))
    feats = backbone.eval()(torch.randn(1, 3, 96, 128))
    outs = neck(feats)
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2] and all(o.shape[1] == 32 for o in outs)
    assert len(van.eval()(torch.randn(1, 3, 64, 64))) == 2


def test_declared_torch_floor_covers_the_apis_used():
    """pyproject's torch floor is the newest of the versions that introduced the APIs we call."""
    import inspect
    import re
    from mm_helpers import ROOT
    text = (ROOT / 'pyproject.toml').read_text()
    floor = tuple(int(p) for p in re.search(r'"torch>=(\d+\.\d+)"', text).group(1).split('.'))
    introduced = {  # API -> the torch release that added it
        'torch.library.custom_op': ((2, 4), hasattr(torch.library, 'custom_op')),
        'torch.serialization.safe_globals': ((2, 5), hasattr(torch.serialization, 'safe_globals')),
        'torch.onnx.export(dynamo=...)': ((2, 5), 'dynamo' in inspect.signature(torch.onnx.export).parameters),
    }
    for name, (version, present) in introduced.items():
        assert present, f'{name} is missing from this torch'
        assert floor >= version, f'pyproject declares torch>={floor} but {name} needs {version}'
