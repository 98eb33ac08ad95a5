"""Every shipped detection/segmentation config builds, and its pyramid strides match its heads."""
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(str(p.relative_to(ROOT)) for folder in ('retinanet', 'mask_rcnn', 'sem_fpn')
                 for p in (ROOT / 'configs' / folder).glob('*.py'))


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_with_consistent_strides(path):
    from mmengine.config import Config
    from lsnet.mm.build import build_model_from_config
    model, cfg = build_model_from_config(ROOT / path, pretrained=False)
    model.eval()
    scope = cfg.default_scope
    height, width = 256, 320
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, height, width))
    strides = [height // f.shape[2] for f in feats]
    if scope == 'mmdet':
        head = model.bbox_head if hasattr(model, 'bbox_head') else model.rpn_head
        assert strides == [s[0] for s in head.prior_generator.strides], (path, strides)
        if hasattr(model, 'roi_head'):
            assert model.roi_head.bbox_roi_extractor.featmap_strides == strides[:4]
    else:
        assert strides == list(model.decode_head.feature_strides), (path, strides)
    assert 'init_cfg' in Config.fromfile(str(ROOT / path)).model.backbone or path.endswith('_shapes.py')


def test_shapes_scenes_are_seen_at_the_pretraining_size(tmp_path):
    """The demo's hand-over works because the dense shapes configs feed LSNet the image size its shapes
    classifier was trained at (the same 8x8 .. 1x1 stage maps): the generated data, the classification
    input size and the detection/segmentation resize must agree."""
    from mmengine.config import Config
    from PIL import Image

    from lsnet.datasets import generate_shapes
    generate_shapes(tmp_path, num_train=2, num_val=1)
    scene = Image.open(next((tmp_path / 'coco' / 'train2017').glob('*.jpg'))).size
    class_image = Image.open(next((tmp_path / 'imagenet' / 'train').glob('*/*.jpg'))).size
    classifier = Config.fromfile(str(ROOT / 'configs/classification/lsnet-t_shapes.py'))
    size = classifier.train_dataloader.dataset.transform.input_size
    assert scene == class_image == (size, size)
    for path in ('retinanet/retinanet_lsnet-t_fpn_shapes.py', 'mask_rcnn/mask-rcnn_lsnet-t_fpn_shapes.py',
                 'sem_fpn/fpn_lsnet-t_shapes.py'):
        cfg = Config.fromfile(str(ROOT / 'configs' / path))
        resizes = [step['scale'] for step in cfg.train_dataloader.dataset.pipeline + cfg.test_dataloader.dataset.pipeline
                   if step['type'] in ('Resize', 'RandomResize', 'AlignResize')]
        assert resizes and all(tuple(scale) == scene for scale in resizes), (path, resizes)
