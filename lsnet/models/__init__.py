"""The architectures, each as a classifier (``LSNet``, ``VAN``: the timm models, registered with timm on
import) and as an OpenMMLab backbone returning stage maps (``LSNetBackbone``, ``VANBackbone``)."""
from ..checkpoint import CheckpointError, load_pretrained_file, read_checkpoint
from .backbone_base import fuse_model
from .lsnet import LSNet, LSNetBackbone
from .van import VAN, VANBackbone

__all__ = ['LSNet', 'LSNetBackbone', 'VAN', 'VANBackbone', 'create_backbone', 'CheckpointError', 'fuse_model', 'load_pretrained_file', 'read_checkpoint']


def create_backbone(model_name: str, **kwargs):
    """The OpenMMLab backbone (``LSNetBackbone`` / ``VANBackbone``) of the variant a timm model name names
    ('lsnet_t', 'lsnet_s_distill', 'van_b0'), with ``kwargs`` (``out_indices``, ``init_cfg``, ...)."""
    family, _, rest = model_name.partition('_')
    classes = {'lsnet': LSNetBackbone, 'van': VANBackbone}
    if family not in classes or not rest:
        raise ValueError(f'{model_name!r} names no LSNet or VAN variant (e.g. lsnet_t, van_b0)')
    return classes[family](rest.split('_')[0], **kwargs)
