"""Data helpers: the deterministic synthetic "shapes" datasets in real COCO/ADE20K/ImageNet layouts."""
from .synthetic import SHAPE_CLASSES, generate_shapes

__all__ = ['SHAPE_CLASSES', 'generate_shapes']
