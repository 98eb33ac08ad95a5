"""Classifiers out of PyTorch: the exported graph is the fused classifier (``images`` in, ``logits``
out); :class:`OnnxClassifier` runs it in onnxruntime and returns what ``TimmClassifier`` predicts
(softmax scores with the label), evaluated by the config's TopKAccuracy."""
from __future__ import annotations

from torch import nn

from ..mm.onnx_model import OnnxRuntimeModel, TaskExport, register_task_export
from .model import TimmClassifier


class ClassifierNetwork(nn.Module):
    def __init__(self, classifier: TimmClassifier):
        super().__init__()
        self.backbone = classifier.backbone

    def forward(self, images):
        return self.backbone(images)


class OnnxClassifier(OnnxRuntimeModel):
    def postprocess(self, outputs, data_samples):
        scores = outputs[0].float().softmax(dim=-1)
        return [dict(pred_score=s, gt_label=label) for s, label in zip(scores, data_samples)]


register_task_export(TaskExport(
    name='classifier', matches=lambda model: isinstance(model, TimmClassifier), network=ClassifierNetwork,
    runtime=OnnxClassifier, output_names=lambda model: ['logits'],
    dynamic_output_axes=lambda name: {0: 'batch'}, metrics=('top1',), int8_max_drop=0.5))
