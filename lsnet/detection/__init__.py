"""What only detection uses, for mmdet 3.x (imported by the detection configs' ``custom_imports``).

* ``lsnet.detection.datacheck``: COCO annotation checks, registered for ``lsnet.mm.datacheck.CheckedDataset``;
* ``lsnet.detection.viz``: the demo's detection pictures.
* ``lsnet.detection.export``: the ONNX export of its models and their onnxruntime runner.

The backbones and the ``LSNetFPN`` neck (its transposed-conv stride-4 level serves Mask R-CNN) are
shared with segmentation and registered by ``import lsnet``.
"""
import lsnet  # noqa: F401  (registers LSNet, VAN, LSNetFPN)
from . import datacheck, export  # noqa: E402,F401  (register the COCO checks and the detection ONNX export)
