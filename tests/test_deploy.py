import copy
import importlib

import numpy as np
import pytest
import timm
import torch

import lsnet
from lsnet.deploy import export_onnx
from lsnet.models.lsnet import LSConv


@pytest.fixture
def ort():
    return pytest.importorskip('onnxruntime')


def randomise_batch_norms(model: torch.nn.Module) -> None:
    """Statistics and affine terms far from a fresh model's, so fusing them has something to fold
    and no residual branch is zero (LSNet initialises some BN weights to 0)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                          (module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)


@pytest.mark.slow
def test_deploy_model_is_a_frozen_graph_and_matches_the_unfused_model():
    torch.manual_seed(0)
    model = timm.create_model('lsnet_t', num_classes=10, img_size=64).eval()
    randomise_batch_norms(model)
    original = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        want = model(x)
    deployed = lsnet.deploy_model(model)
    assert isinstance(deployed.compiled, torch._dynamo.eval_frame.OptimizedModule)
    assert not any(hasattr(m, 'fuse') for m in deployed.model.modules())  # everything fused
    with torch.inference_mode():
        got = deployed(x)  # compiles
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            deployed(x)
    ran = {event.name for event in profile.events()}
    # frozen: the convolutions run oneDNN kernels on weights packed at compile time, none takes its
    # weight as an input (which is what an unfrozen graph calls)
    assert 'mkldnn::_convolution_pointwise' in ran, sorted(ran)
    assert not ran & {'aten::convolution', 'aten::mkldnn_convolution'}, sorted(ran)
    assert not torch._inductor.config.freezing  # scoped to the calls
    error = ((got - want).abs().max() / want.abs().max()).item()
    assert error < 1e-4, error
    # the user's model is untouched: same modules, same weights
    assert model.state_dict().keys() == original.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in original.items())


@pytest.mark.parametrize('name', ['lsnet_t', 'van_b0'])
def test_classifier_onnx_matches_pytorch(name, tmp_path, ort, monkeypatch):
    ska_module = importlib.import_module('lsnet.ops.ska')  # the module, not the function it exports
    exported_ska = []
    flat = ska_module.ska_flat
    monkeypatch.setattr(ska_module, 'ska_flat', lambda x, w: exported_ska.append(x.shape) or flat(x, w))
    model = timm.create_model(name, num_classes=10).eval()
    path = export_onnx(model, tmp_path / f'{name}.onnx', (224, 224))
    # every LS convolution (one per odd block of stages 1-3) exports its SKA in the flat form
    ls_convs = sum(isinstance(m, LSConv) for m in model.modules())
    assert len(exported_ska) == ls_convs == (5 if name == 'lsnet_t' else 0)
    session = ort.InferenceSession(path)
    x = torch.randn(3, 3, 224, 224)  # another batch size than exported
    with torch.no_grad():
        want = lsnet.fuse_model(model)(x).numpy()
    got = session.run(None, {'images': x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cls,arch', [(lsnet.LSNetBackbone, 't'), (lsnet.VANBackbone, 'b0')])
def test_backbone_onnx_dynamic_sizes(cls, arch, tmp_path, ort):
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


def test_deploy_model_keeps_the_models_dtype_and_device_through_timm_fusion():
    # timm's EfficientViT fuse() builds fp32 CPU layers; the deploy form must stay in the model's dtype
    model = timm.create_model('efficientvit_m0', num_classes=10).double().eval()
    deployed = lsnet.deploy_model(model, compile=False)
    assert {p.dtype for p in deployed.parameters()} == {torch.float64}
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)  # the size its attention grids are built for
    with torch.inference_mode():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-9, atol=1e-9)
