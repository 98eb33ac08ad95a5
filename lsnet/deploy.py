"""Deployment forms of the models: the fastest PyTorch inference form (:func:`deploy_model`), ONNX
export of the fused classifiers and backbones (dynamic input sizes, :func:`export_onnx`) and INT8
static quantization of an exported graph (:func:`quantize_int8`), and the onnxruntime session they run in
(:func:`inference_session`)."""
from __future__ import annotations

import copy
import os
from typing import Optional

import torch

from .checkpoint import atomic_output
from .models.backbone_base import fuse_model
from .ops import ska_backend


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

    The SKA operator exports as standard ONNX operators (one pad, nine slices, multiply-adds:
    :func:`lsnet.ops.ska.ska_flat`), which every ONNX runtime runs. With ``dynamic`` the batch and
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
    SKA through its plain PyTorch form (standard ONNX operators), no autograd."""
    with ska_backend('torch'), torch.no_grad(), atomic_output(path) as tmp:
        torch.onnx.export(module, tuple(inputs.values()), tmp, dynamo=False, input_names=list(inputs),
                          output_names=output_names, opset_version=opset, dynamic_axes=dynamic_axes)
    return os.fspath(path)


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
