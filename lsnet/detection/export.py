"""Single-stage detectors (RetinaNet) out of PyTorch: the exported graph and its onnxruntime runner.

The graph is backbone + neck + head: images (B, 3, H, W) in, per FPN level the class-score maps
``cls_<i>`` (B, anchors * classes, H_i, W_i) and box-delta maps ``box_<i>`` (B, anchors * 4, H_i, W_i)
out. :class:`OnnxDetector` runs it and hands the maps to the detector's own
``bbox_head.predict_by_feat``: mmdet's anchors, box decoding, score threshold and NMS with the
config's ``test_cfg``, so its results are mmdet ``DetDataSample`` s, evaluated by the config's
CocoMetric. Two-stage detectors (Mask R-CNN) are not exported: their RoI heads need RoIAlign between
two graphs.
"""
from __future__ import annotations

import torch
from torch import nn

from ..mm.onnx_model import OnnxRuntimeModel, TaskExport, register_task_export


def is_single_stage_detector(model: nn.Module) -> bool:
    from mmdet.models.detectors import SingleStageDetector
    return isinstance(model, SingleStageDetector)


def num_levels(detector: nn.Module) -> int:
    return detector.bbox_head.prior_generator.num_levels


class DetectorNetwork(nn.Module):
    """backbone -> neck -> head of a single-stage detector, the maps flattened to one tuple."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.backbone, self.neck, self.bbox_head = detector.backbone, detector.neck, detector.bbox_head

    def forward(self, images: torch.Tensor) -> tuple:
        cls_scores, bbox_preds = self.bbox_head(self.neck(self.backbone(images)))
        return tuple(cls_scores) + tuple(bbox_preds)


class OnnxDetector(OnnxRuntimeModel):
    """The exported detector in onnxruntime, returning mmdet results (see the module docstring)."""

    def postprocess(self, outputs, data_samples):
        detector = self.model[0]
        levels = len(outputs) // 2
        metas = [sample.metainfo for sample in data_samples]
        with torch.no_grad():
            results = detector.bbox_head.predict_by_feat(outputs[:levels], outputs[levels:], batch_img_metas=metas,
                                                         rescale=True)
        return detector.add_pred_to_datasample(data_samples, results)


def output_names(detector: nn.Module) -> list:
    levels = num_levels(detector)
    return [f'cls_{i}' for i in range(levels)] + [f'box_{i}' for i in range(levels)]


register_task_export(TaskExport(
    name='single-stage detector', matches=is_single_stage_detector, network=DetectorNetwork,
    runtime=OnnxDetector, output_names=output_names,
    dynamic_output_axes=lambda name: {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'},
    metric='coco/bbox_mAP', int8_max_drop=0.01))
