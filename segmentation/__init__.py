"""What only segmentation uses, for mmseg 1.x (imported by the segmentation configs' ``custom_imports``).

* ``segmentation.transforms``: ``AlignResize`` (registered with mmseg's ``TRANSFORMS``);
* ``segmentation.datacheck``: label-map checks, run by ``lsnet.mm.datacheck.CheckedDataset``;
* ``segmentation.viz``: the demo's segmentation pictures.
* ``segmentation.export``: the ONNX export of its models and their onnxruntime runner.
"""
import lsnet  # noqa: F401  (registers LSNet, VAN, LSNetFPN)

from . import export  # noqa: F401  (registers the segmentation ONNX export)
from .transforms import AlignResize

__all__ = ['AlignResize']
