"""Operators of the LSNet family."""
from .ska import ONNX_SKA_FORMS, SKA_BACKENDS, onnx_ska_form, ska, ska_backend, ska_torch, set_ska_backend

__all__ = ['ONNX_SKA_FORMS', 'SKA_BACKENDS', 'onnx_ska_form', 'ska', 'ska_backend', 'ska_torch', 'set_ska_backend']
