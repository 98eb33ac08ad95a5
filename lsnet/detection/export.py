"""Detectors out of PyTorch: the exported graphs and their onnxruntime runners.

Single-stage (RetinaNet): the graph is backbone + neck + head: images (B, 3, H, W) in, per FPN level
the class-score maps ``cls_<i>`` (B, anchors * classes, H_i, W_i) and box-delta maps ``box_<i>``
(B, anchors * 4, H_i, W_i) out. :class:`OnnxDetector` runs it and hands the maps to the detector's own
``bbox_head.predict_by_feat``: mmdet's anchors, box decoding, score threshold and NMS with the
config's ``test_cfg``, so its results are mmdet ``DetDataSample`` s, evaluated by the config's
CocoMetric.

Two-stage (Faster/Mask R-CNN): one file holds three independent networks, each run as its own part:
backbone + neck + RPN head (``images`` in; the FPN maps ``feat_<i>`` and the RPN's ``rpn_cls_<i>`` /
``rpn_box_<i>`` out), the box head (``bbox_roi_feats`` (K, C, 7, 7) in; ``cls_score``, ``bbox_pred``
out) and the mask head (``mask_roi_feats`` (K, C, 14, 14) in; ``mask_pred`` out). Between them
:class:`OnnxTwoStageDetector` runs mmdet's own code: the RPN's proposals (``rpn_head.predict_by_feat``),
then the RoI head's ``predict``, whose RoIAlign (mmcv's op) feeds the box and mask parts in place of
the PyTorch heads, and its box decoding, NMS and mask pasting. The number of RoIs is dynamic in every
export, also with fixed image shapes.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..mm.onnx_model import OnnxRuntimeModel, TaskExport, graph_parts, register_task_export


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
    metrics=('coco/bbox_mAP',), int8_max_drop=0.01))


def is_two_stage_detector(model: nn.Module) -> bool:
    from mmdet.models.detectors import TwoStageDetector
    return isinstance(model, TwoStageDetector)


def roi_heads(detector: nn.Module) -> dict:
    """Graph input name -> (head, its RoI extractor) of a two-stage detector's RoI head."""
    roi_head = detector.roi_head
    if getattr(roi_head, 'with_shared_head', False):
        raise ValueError(f'{type(roi_head).__name__} has a shared head (a C4 model): its export is not supported')
    if not hasattr(roi_head, 'bbox_head') or isinstance(roi_head.bbox_head, nn.ModuleList):
        raise ValueError(f'{type(roi_head).__name__}: only one box stage (StandardRoIHead) is exported')
    heads = {'bbox_roi_feats': (roi_head.bbox_head, roi_head.bbox_roi_extractor)}
    if roi_head.with_mask:
        if getattr(roi_head, 'share_roi_extractor', False):
            raise ValueError('a mask head that shares the box RoI features is not exported')
        heads['mask_roi_feats'] = (roi_head.mask_head, roi_head.mask_roi_extractor)
    return heads


HEAD_OUTPUTS = {'bbox_roi_feats': ('cls_score', 'bbox_pred'), 'mask_roi_feats': ('mask_pred',)}
ROI_AXIS = {'bbox_roi_feats': 'rois', 'mask_roi_feats': 'mask_rois'}


def first_stage_outputs(detector: nn.Module) -> list:
    levels = detector.rpn_head.prior_generator.num_levels
    return ([f'feat_{i}' for i in range(levels)] + [f'rpn_cls_{i}' for i in range(levels)]
            + [f'rpn_box_{i}' for i in range(levels)])


def two_stage_output_names(detector: nn.Module) -> list:
    return first_stage_outputs(detector) + [name for key in roi_heads(detector) for name in HEAD_OUTPUTS[key]]


def roi_feature_examples(detector: nn.Module) -> dict:
    """Seeded RoI features of the shape each RoI extractor gives, the RoI count dynamic."""
    generator = torch.Generator().manual_seed(0)
    examples = {}
    for name, (_, extractor) in roi_heads(detector).items():
        size = extractor.roi_layers[0].output_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        examples[name] = (torch.randn(8, extractor.out_channels, *size, generator=generator), {0: ROI_AXIS[name]})
    return examples


class TwoStageNetwork(nn.Module):
    """backbone -> neck -> RPN head, and beside it the box and mask heads on RoI features."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.backbone, self.neck, self.rpn_head = detector.backbone, detector.neck, detector.rpn_head
        self.heads = nn.ModuleList(head for head, _ in roi_heads(detector).values())

    def forward(self, images: torch.Tensor, *roi_feats: torch.Tensor) -> tuple:
        feats = tuple(self.neck(self.backbone(images)))
        rpn_cls, rpn_box = self.rpn_head(feats)
        outputs = feats + tuple(rpn_cls) + tuple(rpn_box)
        for head, roi_feat in zip(self.heads, roi_feats):
            result = head(roi_feat)
            outputs += tuple(result) if isinstance(result, (tuple, list)) else (result,)
        return outputs


class OnnxTwoStageDetector(OnnxRuntimeModel):
    """The exported two-stage detector in onnxruntime, returning mmdet results (see the module docstring).
    A copy of the detector's RoI head runs mmdet's prediction with each head's forward replaced by its
    part of the graph."""

    def __init__(self, model: nn.Module, path):
        super().__init__(model, path)
        roi_head = copy.deepcopy(model.roi_head)
        for name, head in zip(roi_heads(model), (roi_head.bbox_head, getattr(roi_head, 'mask_head', None))):
            head.forward = self._graph_head(self.sessions[name], name)
        self.roi_head = [roi_head]  # a list, like ``model``: not a submodule
        self.recorded = None  # a dict while calibration feeds are recorded

    def open_sessions(self, path):
        detector = self.model[0]
        parts = {'network': (['images'], first_stage_outputs(detector))}
        parts.update({name: ([name], HEAD_OUTPUTS[name]) for name in roi_heads(detector)})
        return graph_parts(path, parts)

    def _graph_head(self, session, input_name: str):
        def forward(roi_feats: torch.Tensor):
            feed = np.ascontiguousarray(roi_feats.float().cpu().numpy())
            if self.recorded is not None:
                self.recorded[input_name] = feed
            outputs = [torch.from_numpy(o) for o in session.run(None, {input_name: feed})]
            return tuple(outputs) if len(outputs) > 1 else outputs[0]
        return forward

    def postprocess(self, outputs, data_samples):
        detector = self.model[0]
        levels = detector.rpn_head.prior_generator.num_levels
        feats, rpn_cls, rpn_box = outputs[:levels], outputs[levels:2 * levels], outputs[2 * levels:3 * levels]
        metas = [sample.metainfo for sample in data_samples]
        with torch.no_grad():
            proposals = detector.rpn_head.predict_by_feat(rpn_cls, rpn_box, batch_img_metas=metas, rescale=False)
            results = self.roi_head[0].predict(tuple(feats), proposals, data_samples, rescale=True)
        return detector.add_pred_to_datasample(data_samples, results)

    def calibration_feeds(self, data):
        """Per image: the image and the RoI features its fp32 run fed each head. An image on which a
        head did not run (no proposal, no detection) calibrates nothing."""
        feeds = []
        names = list(roi_heads(self.model[0]))
        for image, sample in zip(data['inputs'], data['data_samples']):
            self.recorded = {}
            try:
                self.forward(image[None], [sample])
                record = self.recorded
            finally:
                self.recorded = None
            if all(name in record for name in names):
                feeds.append({'images': np.ascontiguousarray(image[None].float().cpu().numpy()), **record})
        return feeds


# Each head output's RoI axis is named after its input's.
HEAD_OUTPUT_AXES = {output: {0: ROI_AXIS[name]} for name, outputs in HEAD_OUTPUTS.items() for output in outputs}


def two_stage_output_axes(name: str) -> dict:
    return HEAD_OUTPUT_AXES.get(name) or {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'}


register_task_export(TaskExport(
    name='two-stage detector', matches=is_two_stage_detector, network=TwoStageNetwork,
    runtime=OnnxTwoStageDetector, output_names=two_stage_output_names, dynamic_output_axes=two_stage_output_axes,
    metrics=('coco/bbox_mAP', 'coco/segm_mAP'), int8_max_drop=0.01, extra_inputs=roi_feature_examples))
