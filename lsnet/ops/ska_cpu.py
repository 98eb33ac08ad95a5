"""The compiled CPU SKA kernels (``lsnet/ops/csrc/ska_cpu.cpp``) as the custom op ``lsnet::ska_cpu``
(float32/float64, x and w of one dtype). Importing raises ImportError when the extension was not
built (no compiler at install time)."""
from __future__ import annotations

from .. import _ska_cpu  # noqa: F401  (ImportError when not built)
from .custom_op import define_ska_op

ska_cpu = define_ska_op('ska_cpu', _ska_cpu.forward, _ska_cpu.backward)
forward_kernel = _ska_cpu.forward  # the forward without the op, where nothing traces or records the call
