"""What only detection uses, for mmdet 3.x (imported by the detection configs' ``custom_imports``).

* ``detection.datacheck``: COCO annotation checks, run by ``lsnet.mm.datacheck.CheckedDataset``;
* ``detection.viz``: the demo's detection pictures.
* ``detection.export``: the ONNX export of its models and their onnxruntime runner.

The backbones and the ``LSNetFPN`` neck (its transposed-conv stride-4 level serves Mask R-CNN) are
shared with segmentation and registered by ``import lsnet``.
"""
import lsnet  # noqa: F401  (registers LSNet, VAN, LSNetFPN)
from . import export  # noqa: E402,F401  (registers the detection ONNX export)
