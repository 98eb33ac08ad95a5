"""What only segmentation uses, for mmseg 1.x (imported by the segmentation configs' ``custom_imports``).

* ``lsnet.segmentation.transforms``: ``AlignResize`` (registered with mmseg's ``TRANSFORMS``);
* ``lsnet.segmentation.datacheck``: label-map checks, registered for ``lsnet.mm.datacheck.CheckedDataset``;
* ``lsnet.segmentation.viz``: the demo's segmentation pictures.
* ``lsnet.segmentation.export``: the ONNX export of its models and their onnxruntime runner.
"""
import lsnet  # noqa: F401  (registers LSNet, VAN, LSNetFPN)

from . import datacheck, export  # noqa: F401  (register the label-map checks and the segmentation ONNX export)
from .transforms import AlignResize

__all__ = ['AlignResize']
