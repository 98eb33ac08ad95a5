import copy
import importlib
import os

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


def test_openvino_export_writes_the_padded_ska_and_matches_pytorch_at_other_sizes(tmp_path, monkeypatch):
    """A ``.xml`` path: OpenVINO's IR of the backbone's graph, SKA in its padded form (the flat one is never
    called), fp32 weights, dynamic sizes; run through ``runtime_session`` (fp32 even on bf16 CPUs) it gives
    PyTorch's maps at sizes other than the traced one."""
    pytest.importorskip('openvino')
    from lsnet.deploy import model_files, runtime_session
    ska_module = importlib.import_module('lsnet.ops.ska')
    calls = []
    monkeypatch.setattr(ska_module, 'ska_flat', lambda x, w: calls.append('flat') or None)
    padded = ska_module.ska_torch
    monkeypatch.setattr(ska_module, 'ska_torch', lambda x, w: calls.append('padded') or padded(x, w))
    # the dense configs' attention bias: the trained matrix resized to each grid by two matrix products
    model = lsnet.LSNetBackbone('t', out_indices=(0, 1, 2, 3), attention_bias_resize='matrix').eval()
    randomise_batch_norms(model)
    path = export_onnx(model, tmp_path / 'backbone.xml', (256, 320))
    assert calls == ['padded'] * 5
    assert [os.path.basename(f) for f in model_files(path) if os.path.isfile(f)] == ['backbone.xml', 'backbone.bin']
    session = runtime_session(path)
    assert [i.name for i in session.get_inputs()] == ['images']
    assert [o.name for o in session.get_outputs()] == ['stage1', 'stage2', 'stage3', 'stage4']
    for shape in [(2, 3, 200, 312), (1, 3, 97, 131)]:
        x = torch.randn(shape)
        with torch.no_grad():
            want = [t.numpy() for t in lsnet.fuse_model(model)(x)]
        for g, w in zip(session.run(None, {'images': x.numpy()}), want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def test_openvino_and_nncf_load_without_telemetry(tmp_path):
    """In a user's process (no pytest, no CI variable), OpenVINO's converter and NNCF imported through
    lsnet take their telemetry stubs and write no client id under the home directory, where a plain
    ``import nncf`` writes one (``~/intel``)."""
    pytest.importorskip('nncf')
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ('CI', 'NNCF_CI', 'NNCF_DEV')}
    env['PYTHONPATH'] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(code: str, home) -> str:
        home.mkdir()
        return subprocess.run([sys.executable, '-c', code], env=dict(env, HOME=str(home)), capture_output=True,
                              text=True, check=True).stdout

    out = run('from lsnet.deploy import openvino_modules; ov, nncf = openvino_modules(with_nncf=True); '
              'import nncf.telemetry.wrapper as w, openvino.tools.ovc.convert_impl as c, sys; '
              'print(isinstance(w.telemetry, w.NNCFTelemetry), c.tm.__name__, sys.modules.get("openvino_telemetry"))',
              tmp_path / 'lsnet')
    assert out.split() == ['False', 'openvino.tools.ovc.telemetry_stub', 'None'], out
    assert not (tmp_path / 'lsnet' / 'intel').exists()
    run('import nncf', tmp_path / 'plain')
    assert (tmp_path / 'plain' / 'intel').is_dir()


def test_exported_model_files_name_their_runtime(tmp_path):
    from lsnet.deploy import quantize_int8, runtime_of
    assert runtime_of('a/model.onnx') == 'onnxruntime' and runtime_of('model.int8.xml') == 'openvino'
    with pytest.raises(ValueError, match=r'model\.pt: an exported model is a \.onnx or \.xml file'):
        runtime_of('model.pt')
    with pytest.raises(ValueError, match='goes to a file of its runtime'):
        quantize_int8(tmp_path / 'model.onnx', tmp_path / 'model.int8.xml', [])


def test_deploy_model_keeps_the_models_dtype_and_device_through_timm_fusion():
    # timm's EfficientViT fuse() builds fp32 CPU layers; the deploy form must stay in the model's dtype
    model = timm.create_model('efficientvit_m0', num_classes=10).double().eval()
    deployed = lsnet.deploy_model(model, compile=False)
    assert {p.dtype for p in deployed.parameters()} == {torch.float64}
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)  # the size its attention grids are built for
    with torch.inference_mode():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-9, atol=1e-9)
