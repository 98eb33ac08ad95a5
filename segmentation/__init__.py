"""Segmentation-specific pieces for mmseg 1.x (imported by the configs' ``custom_imports``)."""
from .transforms import AlignResize

__all__ = ['AlignResize']
