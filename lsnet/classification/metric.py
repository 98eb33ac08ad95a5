"""Top-k accuracy for MMEngine's evaluator."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy in percent (keys ``top1``, ``top5``, ...)."""

    default_prefix = ''

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        k = min(max(self.topk), data_samples[0]['pred_score'].numel())
        for sample in data_samples:
            top = sample['pred_score'].topk(k).indices.cpu().numpy()
            self.results.append((top, int(sample['gt_label'])))

    def compute_metrics(self, results: list) -> dict:
        metrics = {}
        for k in self.topk:
            hits = [label in top[:k] for top, label in results]
            metrics[f'top{k}'] = float(np.mean(hits) * 100.0)
        return metrics
