"""Plugging the project's checkpoint reading and writing into MMEngine, explicitly.

``import lsnet`` leaves MMEngine as it is. ``install_safe_io()`` (called by our tools, or by importing
``lsnet.mm.install_safety`` from a config's ``custom_imports``) makes two process-wide changes:

* MMEngine's loader for plain paths reads through ``lsnet.checkpoint.read_checkpoint``. Since torch
  2.6 ``torch.load`` defaults to ``weights_only=True`` and MMEngine's own checkpoints (numpy scalars,
  ``HistoryBuffer``, ``ConfigDict``) fail to resume; we keep the safety check and allowlist exactly
  those plain-data types, and name unreadable files.
* MMEngine's local file backend writes atomically (``AtomicLocalBackend``): a crash never leaves a
  truncated checkpoint under its final name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner.checkpoint import CheckpointLoader

from mmengine.config import ConfigDict
from mmengine.logging.history_buffer import HistoryBuffer

from ..checkpoint import allow_metadata_types, atomic_write, read_checkpoint

# MMEngine writes these plain-data objects into every checkpoint's metadata (message hub, config).
allow_metadata_types(HistoryBuffer, ConfigDict)


def load_from_local(filename: str, map_location=None):
    """MMEngine's ``CheckpointLoader`` entry for plain paths."""
    return read_checkpoint(filename, map_location=map_location)


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with atomic ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, encoding)


def safe_io_installed() -> bool:
    from mmengine.fileio.backends import backends
    return (CheckpointLoader._schemes.get('') is load_from_local
            and backends.get('local') is AtomicLocalBackend)


def install_safe_io() -> None:
    """Make MMEngine read checkpoints with ``read_checkpoint`` and write files atomically. Idempotent."""
    if safe_io_installed():
        return
    # '' is the scheme of plain paths; force replaces MMEngine's own loader for them.
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    try:  # drop a LocalBackend instance MMEngine may have cached before
        from mmengine.fileio import io as _io
        _io.backend_instances.clear()
    except (ImportError, AttributeError):  # pragma: no cover - MMEngine layout changed
        pass
