"""Operators of the LSNet family."""
from .ska import SKA_BACKENDS, ska, ska_backend, ska_torch, set_ska_backend

__all__ = ['SKA_BACKENDS', 'ska', 'ska_backend', 'ska_torch', 'set_ska_backend']
