"""Whole trained models (classifier, detector, segmentor) out of PyTorch as ONNX, and back into the
toolboxes' evaluators through onnxruntime.

Each task registers, with :func:`register_task_export`, how its models leave PyTorch:

* ``network(model)``: the ``nn.Module`` that is exported, images in, the task's raw outputs out
  (logits; per-level class and box maps; a label map at the input's size);
* ``runtime(model, session)``: an :class:`OnnxRuntimeModel` that runs the exported graph in
  onnxruntime and turns its outputs into the toolbox's result structures with the toolbox's own code
  (mmdet's box decoding and NMS, mmseg's ``SegDataSample``), so ``runner.test()`` evaluates it with
  the config's own metric.

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
from ..models.backbone_base import fuse_model


@dataclass(frozen=True)
class TaskExport:
    """How a task's models leave PyTorch. ``metric`` is the key of the config's evaluator that judges an
    INT8 form, ``int8_max_drop`` how far below the fp32 form's value (in that metric's units) it may be."""
    name: str
    matches: Callable[[torch.nn.Module], bool]
    network: Callable[[torch.nn.Module], torch.nn.Module]
    runtime: Callable[[torch.nn.Module, object], 'OnnxRuntimeModel']
    output_names: Callable[[torch.nn.Module], list]
    dynamic_output_axes: Callable[[str], dict]
    metric: str
    int8_max_drop: float


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
    """Export ``model`` (eval mode, backbone fused) with its task's network to ``path``.

    ``dynamic``: batch, height and width are free; otherwise the graph is fixed to batch 1 and
    ``input_size``, which lets onnxruntime fold the shape arithmetic.
    """
    export = task_export_for(model)
    network = copy.deepcopy(export.network(model)).eval()  # fusing below leaves ``model`` as it was
    backbone = getattr(network, 'backbone', None)
    if backbone is not None:
        network.backbone = fuse_model(backbone)
    output_names = export.output_names(model)
    example = torch.randn(1, 3, *input_size)
    axes = None
    if dynamic:
        axes = {'images': {0: 'batch', 2: 'height', 3: 'width'}}
        axes.update({name: export.dynamic_output_axes(name) for name in output_names})
    return export_graph(network, path, example, output_names, axes, opset)


class OnnxRuntimeModel(BaseModel):
    """A model whose network runs in onnxruntime; MMEngine's test loop calls ``test_step``.

    ``model`` is the PyTorch model the graph was exported from: its data preprocessor prepares the
    batch, and the task's ``postprocess`` may call its heads' post-processing (which use no weights).
    """

    def __init__(self, model: torch.nn.Module, session):
        super().__init__(data_preprocessor=model.data_preprocessor)
        self.model = [model.eval()]  # a list: not a submodule, so nothing of it runs but what is called
        self.session = session
        self.input_name = session.get_inputs()[0].name
        fixed = session.get_inputs()[0].shape
        self.fixed_shape = tuple(fixed) if all(isinstance(d, int) for d in fixed) else None

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


def evaluate_onnx(cfg, onnx_path: str | os.PathLike, work_dir: str) -> dict:
    """The config's test loop and evaluator (CocoMetric, IoUMetric, top-k) run on an exported model in
    onnxruntime; returns the metrics. ``cfg`` is not changed."""
    from mmengine.runner import Runner

    from ..deploy import inference_session
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from, cfg.resume = work_dir, None, False
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None  # the exported graph holds every weight
    # MMEngine's EMAHook would swap weights the session does not use, and cannot copy a session
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook.get('type') != 'EMAHook']
    runner = Runner.from_cfg(cfg)
    model = getattr(runner.model, 'module', runner.model)
    runner.model = task_export_for(model).runtime(model, inference_session(onnx_path))
    return {key: float(value) for key, value in runner.test().items()}


def calibration_images(dataloader, data_preprocessor, count: int):
    """The first ``count`` preprocessed images of ``dataloader``, one array of batch 1 each."""
    images = []
    for data in dataloader:
        batch = data_preprocessor(data, False)['inputs']
        for image in batch:
            images.append(np.ascontiguousarray(image[None].float().cpu().numpy()))
            if len(images) == count:
                return images
    if not images:
        raise ValueError('the calibration dataloader yielded no images')
    return images
