"""Reading checkpoint files without running code: ``torch.load`` with ``weights_only`` kept on and an
allowlist of plain-data metadata, safetensors files through ``safetensors``, errors that say what was
refused or why the file is unreadable."""
from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from typing import Any

import torch


# Objects that released and framework-written checkpoints carry beside their tensors (the training
# arguments of the LSNet/VAN releases, numpy scalars in mmengine metadata). All are plain data; we
# allow them under torch.load's weights_only mode instead of turning the safety check off.
# Plain-data classes of a training framework's checkpoint metadata, added by its integration
# (lsnet.mm: MMEngine's HistoryBuffer and ConfigDict) through allow_metadata_types.
_allowed_metadata_types: list = []


def allow_metadata_types(*types: type) -> None:
    """Let ``read_checkpoint`` unpickle these plain-data classes (a framework's checkpoint metadata)."""
    _allowed_metadata_types.extend(t for t in types if t not in _allowed_metadata_types)


def _safe_globals() -> list:
    import numpy as np
    allowed: list = [argparse.Namespace, np.dtype, np.ndarray, np.generic]
    # every numpy dtype class (numpy.dtypes.UInt32DType, ...: RNG states, metrics) and scalar type
    allowed += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    allowed += [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint32, np.uint8, np.bool_]
    try:
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy layout changed
        from numpy._core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    try:
        from numpy._core.multiarray import _reconstruct as _reconstruct2, scalar as scalar2
        allowed += [_reconstruct2, scalar2]
    except ImportError:  # pragma: no cover - numpy 1.x
        pass
    allowed += _allowed_metadata_types
    # MMEngine's HistoryBuffer pickles its statistics methods as getattr(buffer, 'min'). Under
    # weights_only, REDUCE may only call allowlisted functions, so what getattr returns can be
    # stored but never called: allowing it does not open code execution.
    import builtins
    import codecs
    allowed += [builtins.getattr, codecs.encode]
    return allowed


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read or does not match the model."""


def read_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with weights_only kept on, an allowlist for harmless metadata, clear errors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint file {path} is empty (0 bytes): was its writing interrupted?')
    with open(path, 'rb') as f:
        magic = f.read(9)
    if _is_safetensors(magic, path):
        return _read_safetensors(path, map_location)
    magic = magic[:4]
    # torch.save writes a zip archive (PK..); files of torch < 1.6 are a pickle (protocol 2+: 0x80).
    if not (magic.startswith(b'PK\x03\x04') or magic[:1] == b'\x80'):
        raise CheckpointError(f'{path} is not a checkpoint: it is neither a PyTorch zip archive, a pickle nor '
                              f'a safetensors file (first bytes {magic!r})')
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickling_reason(str(err))
        if 'global' not in reason.lower() and 'class' not in reason.lower():
            raise CheckpointError(f'{path} is not a readable checkpoint (corrupt or truncated): {reason}') from err
        raise CheckpointError(
            f'checkpoint file {path} holds objects that are not safe to unpickle ({reason}); it was not '
            'loaded. If you trust the file, load it with torch.load(..., weights_only=False) and save its '
            'state dict alone.') from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f'checkpoint file {path} is corrupt or truncated: {err}') from err
    except Exception as err:  # noqa: BLE001 - a damaged pickle stream fails inside the unpickler's
        # opcodes (an empty stack, a memo key never stored, a short length field): IndexError, KeyError,
        # struct.error and the like; the safety refusals are UnpicklingError, handled above
        raise CheckpointError(f'checkpoint file {path} is corrupt or truncated: the pickle stream breaks off '
                              f'({type(err).__name__}: {err})') from err


def _is_safetensors(head: bytes, path: str) -> bool:
    # safetensors: an 8-byte little-endian header length, then the JSON header ('{')
    return path.endswith('.safetensors') or (len(head) == 9 and head[8:9] == b'{'
                                             and int.from_bytes(head[:8], 'little') < os.path.getsize(path))


def _read_safetensors(path: str, map_location: Any) -> dict:
    """A safetensors file (tensors and a string map, nothing executable): its tensors as a state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f'safetensors file {path} is corrupt or truncated: {err}') from err


def _unpickling_reason(message: str) -> str:
    """The line of torch's weights-only error that says what was refused (its other lines are advice)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:  # the unpickler's own line, after torch's numbered advice when it gives some
        if line.startswith('WeightsUnpickler error:'):
            return line[len('WeightsUnpickler error:'):].strip()
    for line in lines:
        if not line.startswith(('Weights only load failed', 'Check the documentation')):
            return line
    return lines[0] if lines else message
