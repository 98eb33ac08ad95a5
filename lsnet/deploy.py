"""Deployment forms of the models: the fastest PyTorch inference form (:func:`deploy_model`), ONNX
export of the fused classifiers and backbones (dynamic input sizes, :func:`export_onnx`), the two
runtimes an exported model runs in, told apart by the file's suffix (:data:`RUNTIMES`: onnxruntime for
``.onnx``, OpenVINO for its ``.xml`` IR; :func:`runtime_session`), and INT8 static quantization of an
exported model in its runtime's own quantizer (:func:`quantize_int8`)."""
from __future__ import annotations

import contextlib
import copy
import os
import sys
from typing import Optional

import torch

from .checkpoint import atomic_output
from .models.backbone_base import fuse_model
from .ops import onnx_ska_form, ska_backend

# The runtimes an exported model runs in, by the suffix of its file. OpenVINO's IR is an ``.xml`` graph
# beside a ``.bin`` file of weights (:func:`model_files`).
RUNTIMES = {'.onnx': 'onnxruntime', '.xml': 'openvino'}
# The SKA form each runtime runs fastest (``lsnet.ops.ska.ONNX_SKA_FORMS``)
SKA_FORM_FOR = {'onnxruntime': 'flat', 'openvino': 'padded'}


def deploy_model(model: torch.nn.Module, compile: bool = True) -> torch.nn.Module:
    """``model`` in its fastest inference form on this machine: eval mode, Conv-BN pairs and RepVGG
    branches fused (ours, then timm's re-parameterisable modules, so any timm model works too), and,
    with ``compile``, a :class:`FrozenGraph`: a ``torch.compile`` graph whose weights are constants
    (folded, oneDNN weight pre-packing on CPU) and in which the compiled SKA kernel stays one node.

    Call the result under ``torch.inference_mode()`` (freezing applies without autograd), without
    autocast: for fp16/bf16, cast the model first (``deploy_model(model.half())``). The first
    call compiles (about a minute for LSNet-T on a 2-core CPU), a new input shape compiles again.
    Outputs equal the unfused model's up to fp32 rounding (the tests bound it by 1e-4 relative).
    ``model`` itself is left as it was.
    """
    import timm.utils

    reference = next(model.parameters(), None)
    model = timm.utils.reparameterize_model(fuse_model(copy.deepcopy(model).eval()))
    if reference is not None:  # some timm fuse() methods build their new layers on the CPU in fp32
        model = model.to(device=reference.device, dtype=reference.dtype)
    return FrozenGraph(model) if compile else model


class FrozenGraph(torch.nn.Module):
    """``torch.compile(model)`` with inductor's weight freezing on for every call.

    Whether parameters become graph constants is decided while dynamo traces, i.e. inside the call
    that compiles (the first one, and each recompile for a new shape), not when ``torch.compile`` is
    called: passed as ``torch.compile(..., options={'freezing': True})`` it reaches inductor only
    after the weights have been made graph inputs, and nothing is frozen. So the setting is scoped
    to each call here, and the process-wide inductor configuration is left as it was.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.compiled = torch.compile(model)

    @property
    def model(self) -> torch.nn.Module:
        """The fused eager module the graph was compiled from."""
        return self.compiled._orig_mod

    def forward(self, *args, **kwargs):
        import torch._inductor.config

        with torch._inductor.config.patch(freezing=True):
            return self.compiled(*args, **kwargs)


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, input_size: tuple[int, int] = (224, 224),
                dynamic: bool = True, opset: int = 17, fuse: bool = True) -> str:
    """Export ``model`` (a classifier, or a backbone: ``LSNetBackbone`` / ``VANBackbone``) to ONNX.

    The SKA operator exports as standard ONNX operators (one pad, nine slices, multiply-adds, in the form
    ``path``'s runtime runs fastest: :data:`SKA_FORM_FOR`); a ``.xml`` path writes OpenVINO's IR of that
    graph. With ``dynamic`` the batch and
    spatial sizes are free; the attention bias is exported in its resizable form, so any input size
    gives the PyTorch result.
    """
    model = model.eval()
    if fuse:
        model = fuse_model(model)
    dense = getattr(model, 'out_indices', None) is not None
    outputs = [f'stage{i + 1}' for i in model.out_indices] if dense else ['logits']
    # trace at a size other than the attention grid's, so the graph holds the general bias path
    height, width = input_size
    example = torch.randn(1, 3, height, width)
    axes: Optional[dict] = None
    if dynamic:
        axes = {'images': {0: 'batch', 2: 'height', 3: 'width'} if dense else {0: 'batch'}}
        for name in outputs:
            axes[name] = {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'} if dense else {0: 'batch'}
    return export_graph(model, path, {'images': example}, outputs, axes, opset)


def export_graph(module: torch.nn.Module, path: str | os.PathLike, inputs: dict, output_names: list,
                 dynamic_axes: Optional[dict], opset: int = 17) -> str:
    """``torch.onnx.export`` of ``module`` called with ``inputs`` (graph input name -> example tensor, in
    the order of ``module.forward``'s arguments) as every export here does it: the TorchScript exporter,
    SKA through its plain PyTorch form (standard ONNX operators) in the form ``path``'s runtime runs
    fastest, no autograd. A ``.xml`` path gets the ONNX graph converted to OpenVINO's IR (fp32 weights)."""
    runtime = runtime_of(path)
    with ska_backend('torch'), onnx_ska_form(SKA_FORM_FOR[runtime]), torch.no_grad():
        if runtime == 'onnxruntime':
            with atomic_output(path) as tmp:
                _torch_onnx_export(module, inputs, tmp, output_names, dynamic_axes, opset)
        else:
            import tempfile

            ov = openvino_modules()
            with tempfile.TemporaryDirectory() as folder:
                onnx_path = os.path.join(folder, 'graph.onnx')
                _torch_onnx_export(module, inputs, onnx_path, output_names, dynamic_axes, opset)
                save_openvino(ov.convert_model(onnx_path), path)
    return os.fspath(path)


def _torch_onnx_export(module, inputs: dict, path: str, output_names: list, dynamic_axes, opset: int) -> None:
    torch.onnx.export(module, tuple(inputs.values()), path, dynamo=False, input_names=list(inputs),
                      output_names=output_names, opset_version=opset, dynamic_axes=dynamic_axes)


def runtime_of(path: str | os.PathLike) -> str:
    """The runtime a model file is for, by its suffix (:data:`RUNTIMES`)."""
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix not in RUNTIMES:
        raise ValueError(f'{os.fspath(path)}: an exported model is a {" or ".join(RUNTIMES)} file '
                         f'({", ".join(f"{s}: {r}" for s, r in RUNTIMES.items())})')
    return RUNTIMES[suffix]


def model_files(path: str | os.PathLike) -> list:
    """The files a model at ``path`` consists of: the ONNX file, or OpenVINO's ``.xml`` and its ``.bin``."""
    path = os.fspath(path)
    return [path] if runtime_of(path) == 'onnxruntime' else [path, path[:-len('.xml')] + '.bin']


def int8_path(path: str | os.PathLike, infix: str = '.int8') -> str:
    """The name of a model's INT8 form: model.onnx -> model.int8.onnx, model.xml -> model.int8.xml."""
    stem, suffix = os.path.splitext(os.fspath(path))
    return stem + infix + suffix


def move_model(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a model's files (:func:`model_files`) to ``target``'s names, each replaced atomically."""
    if runtime_of(source) != runtime_of(target):
        raise ValueError(f'cannot move a {runtime_of(source)} model to {os.fspath(target)}')
    for src, dst in zip(model_files(source), model_files(target)):
        os.replace(src, dst)


def save_openvino(model, path: str | os.PathLike) -> None:
    """Write an OpenVINO model as ``path`` (.xml) and its .bin with fp32 weights (``openvino.save_model``
    would compress them to fp16), both in place only once both are written."""
    import tempfile

    ov = openvino_modules()
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        tmp = os.path.join(scratch, 'model.xml')
        ov.save_model(model, tmp, compress_to_fp16=False)
        move_model(tmp, path)


def openvino_modules(with_nncf: bool = False):
    """``openvino`` (and ``nncf``), imported without their usage telemetry where this process has not
    imported them before. Both load ``openvino_telemetry`` when it is installed (a dependency of both);
    NNCF then by default writes a client id under the home directory when imported and sends usage
    events to Google Analytics from ``nncf.quantize``. Imported while that package is hidden, they take
    their own stubs, which write and send nothing."""
    with _hidden_module('openvino_telemetry'):
        import openvino
        if not with_nncf:
            return openvino
        import nncf
    return openvino, nncf


@contextlib.contextmanager
def _hidden_module(name: str):
    """Inside the block, importing ``name`` (or a submodule) raises ImportError; afterwards ``sys.modules``
    holds what it held before."""
    held = {key: sys.modules.pop(key) for key in list(sys.modules) if key == name or key.startswith(name + '.')}
    sys.modules[name] = None
    try:
        yield
    finally:
        for key in [key for key in sys.modules if key == name or key.startswith(name + '.')]:
            del sys.modules[key]
        sys.modules.update(held)


def runtime_session(path: str | os.PathLike, threads: Optional[int] = None):
    """A CPU session of an exported model in its runtime (:func:`runtime_of`): onnxruntime's
    ``InferenceSession`` or an :class:`OpenVinoSession`, which offers the same ``get_inputs``,
    ``get_outputs`` and ``run``."""
    if runtime_of(path) == 'openvino':
        return OpenVinoSession(path, threads)
    return inference_session(path, threads)


def inference_session(model: str | os.PathLike | bytes, threads: Optional[int] = None):
    """An onnxruntime CPU session with every graph optimisation, of an ONNX file or a serialized model.
    Idle worker threads block instead of spinning: a spinning pool would take the cores from whatever
    runs next (the benchmark's other rows)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=['CPUExecutionProvider'])


class OpenVinoSession:
    """An OpenVINO model compiled for the CPU, run as an onnxruntime session is: ``get_inputs()`` and
    ``get_outputs()`` (each with ``name`` and ``shape``, a dimension that is not fixed given as a
    name, as onnxruntime gives it) and ``run(output_names or None, feeds)`` returning numpy arrays.

    fp32 throughout: on CPUs with bf16 units (AMX, AVX512-BF16) OpenVINO would otherwise compute fp32
    models in bf16. One stream on ``threads`` threads (default: torch's), latency-oriented, as the
    onnxruntime sessions here run."""

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None):
        ov = openvino_modules()
        from openvino import properties
        from openvino.properties import hint

        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(os.fspath(path)), 'CPU', {
            hint.inference_precision: ov.Type.f32, hint.performance_mode: hint.PerformanceMode.LATENCY,
            properties.inference_num_threads: threads or torch.get_num_threads(), properties.num_streams: 1})
        self.request = self.compiled.create_infer_request()

    @staticmethod
    def _port(port):
        from types import SimpleNamespace
        shape = [d.get_length() if d.is_static else f'dim{i}' for i, d in enumerate(port.get_partial_shape())]
        return SimpleNamespace(name=port.get_any_name(), shape=shape)

    def get_inputs(self) -> list:
        return [self._port(port) for port in self.compiled.inputs]

    def get_outputs(self) -> list:
        return [self._port(port) for port in self.compiled.outputs]

    def run(self, output_names, feeds: dict) -> list:
        results = self.request.infer(feeds)
        ports = self.compiled.outputs if output_names is None else [self.compiled.output(n) for n in output_names]
        return [results[port].copy() for port in ports]


# What INT8 quantizes: the convolutions and matrix products on the data, which hold nearly all the
# arithmetic. The element-wise SKA taps, the softmax and the resizes stay fp32 between them, and so do the
# products that compute from weights and shapes alone (LSNet's attention-bias resize).
INT8_OP_TYPES = ('Conv', 'MatMul', 'Gemm')


def nodes_off_the_data(path: str | os.PathLike) -> list:
    """Names of the ``INT8_OP_TYPES`` nodes of the graph in ``path`` none of whose inputs depends on the
    graph inputs' values (only on weights and on shapes, through ``Shape``)."""
    import onnx
    graph = onnx.load(os.fspath(path)).graph
    data = {i.name for i in graph.input} - {init.name for init in graph.initializer}
    off = []
    for node in graph.node:  # topologically sorted
        on_data = any(name in data for name in node.input)
        if on_data and node.op_type not in ('Shape', 'Size'):
            data.update(node.output)
        elif node.op_type in INT8_OP_TYPES and not on_data:
            off.append(node.name)
    return off


def quantize_int8(fp32_path: str | os.PathLike, out: str | os.PathLike, feeds: list) -> str:
    """Static post-training INT8 quantization of an exported model into ``out`` (a file for the same
    runtime) by its runtime's own quantizer, ranges calibrated on ``feeds`` (one dict of graph input
    name -> array per run): :func:`quantize_onnxruntime` for ONNX files, :func:`quantize_openvino` (NNCF)
    for OpenVINO's IR."""
    if runtime_of(fp32_path) != runtime_of(out):
        raise ValueError(f'INT8 of {os.fspath(fp32_path)} goes to a file of its runtime, not {os.fspath(out)}')
    quantize = quantize_openvino if runtime_of(fp32_path) == 'openvino' else quantize_onnxruntime
    return quantize(fp32_path, out, feeds)


def quantize_openvino(fp32_path: str | os.PathLike, out: str | os.PathLike, feeds: list) -> str:
    """NNCF's post-training quantization of an OpenVINO model into ``out`` (IR): int8 weights per
    channel and int8 activations of the convolutions and matrix products (NNCF's default 'performance'
    preset: symmetric ranges), ranges from ``feeds`` (every one of them), NNCF's fast bias correction."""
    ov, nncf = openvino_modules(with_nncf=True)
    model = ov.Core().read_model(os.fspath(fp32_path))
    quantized = nncf.quantize(model, nncf.Dataset(feeds), subset_size=len(feeds))
    save_openvino(quantized, out)
    return os.fspath(out)


def quantize_onnxruntime(fp32_path: str | os.PathLike, out: str | os.PathLike, feeds: list) -> str:
    """onnxruntime static quantization of an exported graph into ``out``: QDQ format, per-channel
    symmetric int8 weights, uint8 activations, ``INT8_OP_TYPES`` only, ranges from MinMax
    calibration on ``feeds`` (one dict of graph input name -> array per run). The calibrator holds every
    run's intermediate tensors until the end (onnxruntime 1.23's ``CalibMaxIntermediateOutputs``, which
    would bound that, drops the runs of each full chunk instead of merging their ranges)."""
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as folder:
        prepared = os.path.join(folder, 'prepared.onnx')
        quant_pre_process(os.fspath(fp32_path), prepared, skip_symbolic_shape=True)
        with atomic_output(out) as tmp:
            quantize_static(prepared, tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(INT8_OP_TYPES), nodes_to_exclude=nodes_off_the_data(prepared))
    return os.fspath(out)
