"""The classifier MMEngine trains: a timm classifier (ours, LSNet or VAN, or any other timm model) with
timm's Mixup/CutMix and losses, and optional hard distillation from a timm teacher."""
from __future__ import annotations

import os.path as osp
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import MODELS
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from ..checkpoint import load_state_dict_checked, read_checkpoint, unwrap_state_dict


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Moves stacked, already normalised images (timm transforms) and labels to the device."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        labels = data['data_samples']
        if not torch.is_tensor(labels):
            labels = torch.as_tensor(labels, device=self.device)
        return dict(inputs=data['inputs'], data_samples=labels)


@MODELS.register_module()
class TimmClassifier(BaseModel):
    """A timm classifier trained by MMEngine.

    Args:
        backbone (dict): ``timm.create_model`` arguments: ``model_name`` and its keyword arguments, e.g.
            ``dict(model_name='lsnet_t_distill', num_classes=1000, drop_path_rate=0.1)``. The network
            is ``self.backbone`` (checkpoint keys ``backbone.*``; ``tools/export_backbone.py`` writes
            them in the timm model's own names).
        mixup (dict | None): ``timm.data.Mixup`` arguments (Mixup/CutMix with label smoothing).
        label_smoothing (float): Used when ``mixup`` is None. Default: 0.1.
        teacher (dict | None): Hard distillation (DeiT) through the backbone's ``head_dist``:
            ``dict(model='regnety_160', checkpoint=PATH or None, alpha=0.5)``; any timm model name.
    """

    def __init__(self, backbone: dict, mixup: Optional[dict] = None, label_smoothing: float = 0.1,
                 teacher: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ClsDataPreprocessor'), init_cfg=init_cfg)
        import timm
        backbone = dict(backbone)
        if 'type' in backbone or 'model_name' not in backbone:
            raise ValueError(f'TimmClassifier: backbone={backbone} must name a timm model (model_name=\'lsnet_t\', '
                             '\'van_b0\', ...) and its keyword arguments; type=\'LSNet\'/\'VAN\' are the '
                             'OpenMMLab backbones (stage maps), not classifiers')
        self.backbone = timm.create_model(backbone.pop('model_name'), **backbone)
        num_classes = self.backbone.num_classes
        if num_classes <= 0:
            raise ValueError('TimmClassifier: the backbone needs num_classes > 0')
        self.mixup = Mixup(**dict(mixup, num_classes=num_classes)) if mixup else None
        self.train_loss = SoftTargetCrossEntropy() if self.mixup else LabelSmoothingCrossEntropy(label_smoothing)
        self.teacher = None
        if teacher:
            if getattr(self.backbone, 'head_dist', None) is None:
                raise ValueError('TimmClassifier: a teacher needs a backbone with a distillation head (a _distill model, '
                                 'e.g. lsnet_t_distill)')
            import timm
            unknown = set(teacher) - {'model', 'checkpoint', 'alpha', 'kwargs'}
            if unknown or 'model' not in teacher:
                raise ValueError(f'TimmClassifier: teacher {teacher} needs "model" and accepts checkpoint, alpha, kwargs')
            checkpoint = teacher.get('checkpoint')
            if checkpoint and not osp.isfile(checkpoint):
                raise FileNotFoundError(f'teacher checkpoint not found: {checkpoint}')
            model = timm.create_model(teacher['model'], num_classes=num_classes, **teacher.get('kwargs', {}))
            if checkpoint:  # through the safe reader: a teacher file is never unpickled with code
                source = f'teacher checkpoint {checkpoint}'
                load_state_dict_checked(model, unwrap_state_dict(read_checkpoint(checkpoint), source), source)
            self.teacher = [model.eval().requires_grad_(False)]  # a list: not a submodule, not saved
            self.distill_alpha = teacher.get('alpha', 0.5)
            self.backbone.set_distilled_training(True)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None, mode: str = 'tensor'):
        if mode == 'tensor':
            return self.backbone(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            scores = self.backbone(inputs).float().softmax(dim=-1)
            return [dict(pred_score=s, gt_label=l) for s, l in zip(scores, data_samples)]
        raise ValueError(f'TimmClassifier: unknown mode {mode!r}; valid: tensor, loss, predict')

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
        targets = labels
        if self.mixup is not None:
            if inputs.shape[0] % 2:
                raise ValueError(f'Mixup/CutMix need an even batch size, got {inputs.shape[0]}')
            inputs, targets = self.mixup(inputs, labels)
        outputs = self.backbone(inputs)
        if self.teacher is None:
            logits = outputs[0] if isinstance(outputs, tuple) else outputs
            return dict(loss_cls=self.train_loss(logits, targets))
        teacher = self.teacher[0].to(inputs.device)
        with torch.no_grad():
            teacher_labels = teacher(inputs).argmax(dim=-1)
        logits, logits_dist = outputs
        return dict(loss_cls=(1 - self.distill_alpha) * self.train_loss(logits, targets),
                    loss_distill=self.distill_alpha * F.cross_entropy(logits_dist, teacher_labels))
