"""Segmentors (Semantic FPN) out of PyTorch: the exported graph and its onnxruntime runner.

The graph is backbone + neck + decode head, the logits resized bilinearly to the input's size and
their argmax: images (B, 3, H, W) in, ``labels`` (B, H, W) int64 out. :class:`OnnxSegmenter` runs it,
crops the batch padding away and returns mmseg ``SegDataSample`` s, evaluated by the config's IoUMetric.
PyTorch's mmseg resizes the logits to an original size that differs from the network's input and
then takes the argmax; here, where the two sizes differ, the label map is resized (nearest).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..mm.onnx_model import OnnxRuntimeModel, TaskExport, register_task_export


def is_segmentor(model: nn.Module) -> bool:
    from mmseg.models.segmentors import EncoderDecoder
    return isinstance(model, EncoderDecoder)


class SegmenterNetwork(nn.Module):
    """backbone -> neck -> decode head -> bilinear resize to the input -> argmax over classes."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.backbone, self.neck, self.decode_head = segmentor.backbone, segmentor.neck, segmentor.decode_head
        self.align_corners = segmentor.align_corners

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.decode_head(self.neck(self.backbone(images)))
        logits = F.interpolate(logits, size=images.shape[2:], mode='bilinear', align_corners=self.align_corners)
        return logits.argmax(dim=1)


class OnnxSegmenter(OnnxRuntimeModel):
    """The exported segmentor in onnxruntime, returning mmseg results (see the module docstring)."""

    def postprocess(self, outputs, data_samples):
        from mmengine.structures import PixelData
        labels = outputs[0]
        for label, sample in zip(labels, data_samples):
            meta = sample.metainfo
            padding = meta.get('padding_size', [0, 0, 0, 0])  # left, right, top, bottom
            height, width = label.shape
            label = label[padding[2]:height - padding[3], padding[0]:width - padding[1]]
            if meta.get('flip'):
                label = label.flip(-1 if meta['flip_direction'] == 'horizontal' else -2)
            if tuple(label.shape) != tuple(meta['ori_shape'][:2]):
                label = F.interpolate(label[None, None].float(), size=meta['ori_shape'][:2], mode='nearest')[0, 0]
            sample.set_data(dict(pred_sem_seg=PixelData(data=label[None].long())))
        return data_samples


register_task_export(TaskExport(
    name='segmentor', matches=is_segmentor, network=SegmenterNetwork, runtime=OnnxSegmenter,
    output_names=lambda model: ['labels'],
    dynamic_output_axes=lambda name: {0: 'batch', 1: 'height', 2: 'width'}, metrics=('mIoU',), int8_max_drop=0.5))
