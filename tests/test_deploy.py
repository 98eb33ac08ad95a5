import numpy as np
import pytest
import timm
import torch

import lsnet
from lsnet.deploy import export_onnx

ort = pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('name', ['lsnet_t', 'van_b0'])
def test_classifier_onnx_matches_pytorch(name, tmp_path):
    model = timm.create_model(name, num_classes=10).eval()
    path = export_onnx(model, tmp_path / f'{name}.onnx', (224, 224))
    session = ort.InferenceSession(path)
    x = torch.randn(3, 3, 224, 224)  # another batch size than exported
    with torch.no_grad():
        want = lsnet.fuse_model(model)(x).numpy()
    got = session.run(None, {'images': x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cls,arch', [(lsnet.LSNet, 't'), (lsnet.VAN, 'b0')])
def test_backbone_onnx_dynamic_sizes(cls, arch, tmp_path):
    model = cls(arch, out_indices=(0, 1, 2, 3)).eval()
    path = export_onnx(model, tmp_path / 'backbone.onnx', (256, 320))
    session = ort.InferenceSession(path)
    for shape in [(1, 3, 256, 320), (2, 3, 200, 312), (1, 3, 224, 224), (1, 3, 97, 131)]:
        x = torch.randn(shape)
        with torch.no_grad():
            want = [t.numpy() for t in lsnet.fuse_model(model)(x)]
        got = session.run(None, {'images': x.numpy()})
        assert len(got) == 4
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
