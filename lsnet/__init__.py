"""lsnet: LSNet and VAN backbones for classification, detection and segmentation.

Importing the package registers the models with timm (``timm.create_model('lsnet_t')``) and, when
MMEngine is installed, with OpenMMLab's registries: the backbones and the ``LSNetFPN`` neck, the
training core of ``lsnet.mm`` and the classification task (``lsnet.classification``). The detection
and segmentation tasks (``lsnet.detection``, ``lsnet.segmentation``) need mmdet / mmseg and register
when imported, as their configs' ``custom_imports`` do.
"""
from .deploy import deploy_model
from .models import VAN, CheckpointError, LSNet, LSNetBackbone, VANBackbone, fuse_model
from .ops import ska, set_ska_backend

__version__ = '0.1.0'
__all__ = ['LSNet', 'LSNetBackbone', 'VAN', 'VANBackbone', 'CheckpointError', 'deploy_model', 'fuse_model', 'ska', 'set_ska_backend']

try:
    import mmengine  # noqa: F401
except ImportError:  # the model code works with torch and timm alone
    pass
else:
    from . import mm  # noqa: F401  (registers with MMEngine)
    from . import classification  # noqa: F401  (its dataset, model, metric and export)
