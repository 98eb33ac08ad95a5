"""Backbones (registered with timm on import)."""
from ..checkpoint import CheckpointError, load_pretrained_file, read_checkpoint
from .backbone_base import fuse_model
from .lsnet import LSNet
from .van import VAN

__all__ = ['LSNet', 'VAN', 'CheckpointError', 'fuse_model', 'load_pretrained_file', 'read_checkpoint']
