"""Whole trained models (classifier, detector, segmentor) out of PyTorch as ONNX (or OpenVINO's IR of
the ONNX graph), and back into the toolboxes' evaluators through onnxruntime (or OpenVINO).

Each task registers, with :func:`register_task_export`, how its models leave PyTorch:

* ``network(model)``: the ``nn.Module`` that is exported, images in, the task's raw outputs out
  (logits; per-level class and box maps; a label map at the input's size);
* ``runtime(model, path)``: an :class:`OnnxRuntimeModel` that runs the exported graph in
  its runtime and turns its outputs into the toolbox's result structures with the toolbox's own code
  (mmdet's box decoding and NMS, mmseg's ``SegDataSample``), so ``runner.test()`` evaluates it with
  the config's own metric.
* ``extra_inputs(model)``: the graph's inputs besides ``images`` (name -> example tensor and its
  dynamic axes), for a graph that holds independent networks run one after another with the
  toolbox's code between them (a two-stage detector's RoI heads, fed RoI features that mmcv's
  RoIAlign extracts from the first network's maps). The runtime runs each network as its own part
  of the one file (:func:`graph_parts`).

Each task registers in its own package: ``lsnet.classification.export``, ``lsnet.detection.export``,
``lsnet.segmentation.export``.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel

from ..deploy import export_graph


@dataclass(frozen=True)
class TaskExport:
    """How a task's models leave PyTorch. ``metrics`` are the keys of the config's evaluator that judge an
    INT8 form (those the evaluator reports), ``int8_max_drop`` how far below the fp32 form's value (in
    each metric's units) it may be."""
    name: str
    matches: Callable[[torch.nn.Module], bool]
    network: Callable[[torch.nn.Module], torch.nn.Module]
    runtime: Callable[[torch.nn.Module, object], 'OnnxRuntimeModel']
    output_names: Callable[[torch.nn.Module], list]
    dynamic_output_axes: Callable[[str], dict]
    metrics: tuple
    int8_max_drop: float
    extra_inputs: Callable[[torch.nn.Module], dict] = lambda model: {}


_TASK_EXPORTS: list[TaskExport] = []


def register_task_export(export: TaskExport) -> None:
    _TASK_EXPORTS[:] = [e for e in _TASK_EXPORTS if e.name != export.name] + [export]


def task_export_for(model: torch.nn.Module) -> TaskExport:
    for export in _TASK_EXPORTS:
        if export.matches(model):
            return export
    known = ', '.join(e.name for e in _TASK_EXPORTS) or 'none registered'
    raise ValueError(f'no ONNX export for {type(model).__name__}; exportable: {known} (a detection or '
                     f'segmentation config imports its task through custom_imports)')


def export_whole_model(model: torch.nn.Module, path: str | os.PathLike, input_size: Sequence[int],
                       dynamic: bool = True, opset: int = 17) -> str:
    """Export ``model`` (eval mode, backbone fused) with its task's network to ``path`` (``.onnx``, or
    ``.xml`` for OpenVINO's IR of the same graph; :func:`lsnet.deploy.export_graph`).

    ``dynamic``: batch, height and width are free; otherwise the graph is fixed to batch 1 and
    ``input_size``, which lets onnxruntime fold the shape arithmetic. The axes of the task's other
    inputs (a number of RoIs) stay dynamic either way, and so do the outputs' axes named like them.
    """
    from ..deploy import runtime_of
    export = task_export_for(model)
    if export.extra_inputs(model) and runtime_of(path) != 'onnxruntime':
        raise ValueError(f'{os.fspath(path)}: a {export.name} exports to ONNX for onnxruntime only (.onnx): its '
                         'runtime runs the graph\'s parts as separate sessions cut from the ONNX file')
    network = deploy_network(model)
    output_names = export.output_names(model)
    inputs = network_inputs(export, model, torch.randn(1, 3, *input_size))
    axes = {name: example_axes for name, (_, example_axes) in export.extra_inputs(model).items()}
    always = {label for input_axes in axes.values() for label in input_axes.values()}
    if dynamic:
        axes['images'] = {0: 'batch', 2: 'height', 3: 'width'}
    for name in output_names:
        output_axes = export.dynamic_output_axes(name)
        if dynamic or set(output_axes.values()) <= always:
            axes[name] = output_axes
    return export_graph(network, path, inputs, output_names, axes or None, opset)


def deploy_network(model: torch.nn.Module) -> torch.nn.Module:
    """The task's network of ``model`` as it is exported: a copy in eval mode with the backbone in its
    deploy form (Conv-BN pairs and re-parameterisable branches fused, ours and timm's); ``model`` is
    left as it was."""
    from ..deploy import deploy_model
    network = copy.deepcopy(task_export_for(model).network(model)).eval()
    if getattr(network, 'backbone', None) is not None:
        network.backbone = deploy_model(network.backbone, compile=False)
    return network


def network_inputs(export: TaskExport, model: torch.nn.Module, images: torch.Tensor) -> dict:
    """Graph input name -> tensor: ``images`` and the task's other inputs (seeded examples)."""
    return {'images': images, **{name: example for name, (example, _) in export.extra_inputs(model).items()}}


def graph_parts(path: str | os.PathLike, parts: dict) -> dict:
    """One onnxruntime session per part (name -> (input names, output names)) of the graph in ``path``:
    each part is the subgraph between its inputs and outputs, so a part runs without the others' inputs."""
    import onnx
    from onnx.utils import Extractor

    from ..deploy import inference_session, runtime_of
    if runtime_of(path) != 'onnxruntime':
        raise ValueError(f'{os.fspath(path)}: a model of independent parts runs in onnxruntime only (an .onnx file)')
    extractor = Extractor(onnx.load(os.fspath(path)))
    return {name: inference_session(extractor.extract_model(list(inputs), list(outputs)).SerializeToString())
            for name, (inputs, outputs) in parts.items()}


class OnnxRuntimeModel(BaseModel):
    """A model whose exported network runs in onnxruntime (a ``.onnx`` file) or OpenVINO (its ``.xml``
    IR; :func:`lsnet.deploy.runtime_session`); MMEngine's test loop calls ``test_step``.

    ``model`` is the PyTorch model the graph was exported from: its data preprocessor prepares the
    batch, and the task's ``postprocess`` may call its heads' post-processing (which use no weights).
    ``path``: the exported file; :meth:`open_sessions` opens it (one session, or one per part).
    """

    def __init__(self, model: torch.nn.Module, path: str | os.PathLike):
        super().__init__(data_preprocessor=model.data_preprocessor)
        self.model = [model.eval()]  # a list: not a submodule, so nothing of it runs but what is called
        self.sessions = self.open_sessions(path)
        self.session = self.sessions['network']  # the part fed ``images``
        self.input_name = self.session.get_inputs()[0].name
        fixed = self.session.get_inputs()[0].shape
        self.fixed_shape = tuple(fixed) if all(isinstance(d, int) for d in fixed) else None

    def open_sessions(self, path: str | os.PathLike) -> dict:
        from ..deploy import runtime_session
        return {'network': runtime_session(path)}

    def calibration_feeds(self, data) -> list:
        """The graph's feeds (one dict per image) for INT8 calibration on one preprocessed batch."""
        return [{self.input_name: np.ascontiguousarray(image[None].float().cpu().numpy())}
                for image in data['inputs']]

    def run(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.fixed_shape is not None and tuple(images.shape) != self.fixed_shape:
            raise ValueError(f'the ONNX model was exported for inputs {self.fixed_shape}, got {tuple(images.shape)}: '
                             'export it with dynamic shapes, or test with batch size 1 and that image size')
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(images.float().cpu().numpy())})
        return [torch.from_numpy(o) for o in outputs]

    def forward(self, inputs, data_samples=None, mode: str = 'predict'):
        if mode != 'predict':
            raise ValueError(f'{type(self).__name__} only predicts (mode={mode!r})')
        return self.postprocess(self.run(inputs), data_samples)

    def test_step(self, data):
        data = self.data_preprocessor(data, False)
        return self.forward(data['inputs'], data.get('data_samples'), mode='predict')

    val_step = test_step

    def postprocess(self, outputs: list[torch.Tensor], data_samples):
        raise NotImplementedError


def evaluate_exported(cfg, onnx_path: str | os.PathLike, work_dir: str) -> dict:
    """The config's test loop and evaluator (CocoMetric, IoUMetric, top-k) run on an exported model in
    its runtime (onnxruntime or OpenVINO, by the file's suffix); returns the metrics. ``cfg`` is not changed."""
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from, cfg.resume = work_dir, None, False
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None  # the exported graph holds every weight
    # MMEngine's EMAHook would swap weights the session does not use, and cannot copy a session
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook.get('type') != 'EMAHook']
    runner = Runner.from_cfg(cfg)
    model = getattr(runner.model, 'module', runner.model)
    runner.model = task_export_for(model).runtime(model, onnx_path)
    return {key: float(value) for key, value in runner.test().items()}


def calibration_feeds(runtime: OnnxRuntimeModel, dataloader, count: int) -> list:
    """The graph's feeds for the first ``count`` images of ``dataloader`` (batch 1 each), prepared by the
    model's data preprocessor as in testing; ``runtime`` runs the fp32 graph where a task's later inputs
    come from its first part's outputs."""
    feeds = []
    for data in dataloader:
        feeds += runtime.calibration_feeds(runtime.data_preprocessor(data, False))
        if len(feeds) >= count:
            return feeds[:count]
    if not feeds:
        raise ValueError('the calibration dataloader yielded no images')
    return feeds
