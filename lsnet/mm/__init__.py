"""OpenMMLab integration, imported by ``import lsnet`` when MMEngine is installed.

Registers the backbones (``LSNet`` / ``VAN`` name :class:`~lsnet.LSNetBackbone` / :class:`~lsnet.VANBackbone`,
which return stage maps; the classifiers are timm's) and the neck in MMEngine's root ``MODELS`` registry (which mmdet's and
mmseg's registries search as their parent) and the project's datasets, hooks, loops, metrics and
optimizer wrappers in theirs. Registering is all it does: the checkpoint safety is installed
explicitly (``lsnet.mm.safe_io.install_safe_io``, or ``lsnet.mm.install_safety`` in a config's
``custom_imports``).
"""
from mmengine.registry import MODELS

from ..models import LSNetBackbone, VANBackbone
from . import datacheck, hooks, nonfinite, optim, preemption, resume, safe_io  # noqa: F401  (registrations)
from .timm_backbone import AnySizeTIMMBackbone

MODELS.register_module('LSNet', module=LSNetBackbone, force=True)
MODELS.register_module('VAN', module=VANBackbone, force=True)
MODELS.register_module('AnySizeTIMMBackbone', module=AnySizeTIMMBackbone, force=True)

try:
    import mmcv.cnn  # noqa: F401
except ImportError:  # mmcv absent: backbones only
    pass
else:
    from .necks import LSNetFPN

    MODELS.register_module('LSNetFPN', module=LSNetFPN, force=True)
