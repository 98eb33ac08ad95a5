"""Compatibility of MMEngine 0.10 with current PyTorch, fixed from our side.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. MMEngine's checkpoints hold
numpy scalars, ``HistoryBuffer`` objects of its message hub and ``ConfigDict`` metadata, so resuming
a run, testing a checkpoint or ``load_from`` fail with an UnpicklingError. Instead of turning the
safety check off, we re-register MMEngine's local-file loader with one that keeps
``weights_only=True`` and allowlists exactly those plain-data types, and reports unreadable files
by name.
"""
from __future__ import annotations

from mmengine.runner.checkpoint import CheckpointLoader

from ..models.checkpoint import read_checkpoint


def load_from_local(filename: str, map_location=None):
    return read_checkpoint(filename, map_location=map_location)


# '' is the scheme of plain paths; force replaces MMEngine's own loader for them.
CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
