"""OpenMMLab integration: registers our backbones in MMEngine's MODELS (found by mmdet and mmseg)."""
from mmengine.registry import MODELS

from ..models import VAN, LSNet

MODELS.register_module('LSNet', module=LSNet, force=True)
MODELS.register_module('VAN', module=VAN, force=True)
