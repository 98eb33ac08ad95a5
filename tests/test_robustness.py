import shutil

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip('mmengine')

from lsnet import LSNet  # noqa: E402
from lsnet.datasets import SHAPE_CLASSES, generate_shapes  # noqa: E402
from lsnet.robustness import ALEXNET_ERROR, evaluate_robustness, mean_corruption_error  # noqa: E402


def test_mce_formula():
    errors = {'gaussian_noise': [0.5] * 5, 'brightness': [0.1, 0.2, 0.3, 0.4, 0.5], 'saturate': [0.9] * 5}
    expected = (100 * 2.5 / (5 * ALEXNET_ERROR['gaussian_noise']) + 100 * 1.5 / (5 * ALEXNET_ERROR['brightness'])) / 2
    assert mean_corruption_error(errors) == pytest.approx(expected)  # 'saturate' is an extra corruption
    with pytest.raises(ValueError, match='unknown ImageNet-C corruption'):
        mean_corruption_error({'rain': [0.1]})


def test_benchmarks_on_folder_layouts(tmp_path):
    generate_shapes(tmp_path / 'src', ('imagenet',), num_train=8, num_val=8, cls_size=48)
    val = tmp_path / 'src' / 'imagenet' / 'val'
    rng = np.random.default_rng(0)
    for corruption in ('gaussian_noise', 'brightness'):
        for severity in range(1, 6):
            for image in val.glob('*/*.jpg'):
                target = tmp_path / 'c' / corruption / str(severity) / image.parent.name / image.name
                target.parent.mkdir(parents=True, exist_ok=True)
                pixels = np.asarray(Image.open(image), dtype=np.float32)
                pixels = pixels + rng.normal(0, 10 * severity, pixels.shape) if corruption == 'gaussian_noise' \
                    else pixels * (1 + 0.1 * severity)
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(target)
    subset = tmp_path / 'a'
    for name in SHAPE_CLASSES[:2]:  # a 200-of-1000-style subset: 2 of the 4 classes
        shutil.copytree(val / name, subset / name)
    model = LSNet(dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
                  num_classes=4, img_size=48).eval()
    results = evaluate_robustness(model, SHAPE_CLASSES, dict(input_size=48), imagenet_c=str(tmp_path / 'c'),
                                  imagenet_a=str(subset), sketch=str(val), num_workers=0, log=lambda m: None)
    ces = [results['imagenet_c/CE_gaussian_noise'], results['imagenet_c/CE_brightness']]
    assert results['imagenet_c/mCE'] == pytest.approx(sum(ces) / 2)
    assert 0 <= results['imagenet_a/top1'] <= 100 and 0 <= results['imagenet_sketch/top1'] <= 100
    # restricted to its 2 classes, the subset's accuracy is at least chance among 2, and a model that
    # favours an absent class hurts Sketch (all 4 classes) but not the subset score
    with torch.no_grad():
        model.head.l.bias.fill_(0)
        model.head.l.bias[3] = 1e3
    biased = evaluate_robustness(model, SHAPE_CLASSES, dict(input_size=48), imagenet_a=str(subset), sketch=str(val),
                                 num_workers=0, log=lambda m: None)
    assert biased['imagenet_sketch/top1'] == pytest.approx(25.0)
    assert biased['imagenet_a/top1'] > 0
