"""OpenMMLab integration, imported by ``import lsnet`` when MMEngine is installed.

Registers the backbones and the neck in MMEngine's root ``MODELS`` registry, which mmdet's and
mmseg's registries search as their parent, and makes MMEngine read checkpoints safely under
current PyTorch (see ``compat``).
"""
from mmengine.registry import MODELS

from ..models import VAN, LSNet
from . import classification, compat, datacheck, hooks, optim, reliability  # noqa: F401

MODELS.register_module('LSNet', module=LSNet, force=True)
MODELS.register_module('VAN', module=VAN, force=True)

try:
    import mmcv.cnn  # noqa: F401
except ImportError:  # mmcv absent: backbones only
    pass
else:
    from .necks import LSNetFPN

    MODELS.register_module('LSNetFPN', module=LSNetFPN, force=True)
