"""Everything the project does with checkpoint files, in one place.

* Reading: ``read_checkpoint`` (``torch.load`` with ``weights_only`` kept on and an allowlist of
  plain-data metadata; safetensors files through ``safetensors``), ``unwrap_state_dict``, ``select_prefix``.
* Loading into a model strictly, with errors that list the keys: ``load_state_dict_checked``,
  ``load_pretrained_file`` (backbones: timm's ``pretrained_cfg_overlay=dict(file=...)`` and
  OpenMMLab's ``init_cfg=dict(type='Pretrained')``), ``load_model_checkpoint`` (whole detectors,
  segmentors and classifiers, released mmdet 2.x / mmseg 0.x files included).
* Writing: ``atomic_output`` / ``atomic_write`` / ``save_checkpoint`` (temporary file, fsync, rename,
  folder fsync; a full disk named with the file and the space) and ``remove_interrupted_writes``.
* Finding: ``find_resumable_checkpoint`` (the latest readable training checkpoint of a work dir),
  ``newest_finite_checkpoint``, ``existing_checkpoints``.

Torch only; ``lsnet.mm.safe_io`` plugs the reading and writing into MMEngine.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import io
import logging
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Union

import torch

logger = logging.getLogger('lsnet')

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


def unwrap_state_dict(checkpoint: Any, source: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """Return the state dict inside a checkpoint: under 'state_dict', 'model' or 'module', or itself.

    A leading ``module.`` (DataParallel/DDP) is stripped.
    """
    state = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f'{source} does not contain a state dict (found {type(state).__name__})')
    tensors = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                          for k, v in state.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise CheckpointError(f'{source} contains no tensors')
    return tensors


def unwrap_if_wrapped(state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """A checkpoint's state dict when ``state_dict`` is a wrapped checkpoint (timm hands filters
    whatever the file held), else ``state_dict`` itself."""
    if any(isinstance(state_dict.get(key), Mapping) for key in ('state_dict', 'model', 'module')):
        return unwrap_state_dict(state_dict)
    return state_dict


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str,
                  source: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """Keys under ``prefix`` with the prefix removed; an error if none are."""
    if not prefix:
        return OrderedDict(state_dict)
    selected = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not selected:
        heads = sorted({k.split('.')[0] + '.' for k in state_dict})
        raise CheckpointError(f'{source} has no keys under prefix {prefix!r}; its top-level prefixes '
                              f'are {heads[:12]}')
    return selected


def _summarise(keys: Iterable[str], limit: int = 12) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return f'{shown}, ... ({len(keys)} in all)' if len(keys) > limit else shown


def state_dict_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str,
                        optional: Callable[[str], bool] = lambda key: False) -> Optional[str]:
    """The report of what in ``state`` does not match ``model`` (missing keys, unexpected keys, shape
    mismatches, each named with both shapes), or None when everything matches."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    if not (missing or unexpected or mismatched):
        return None
    parts = [f'{source} does not match {type(model).__name__}'
             f'{" (" + model.arch_name + ")" if getattr(model, "arch_name", None) else ""}:']
    if missing:
        parts.append(f'  missing keys: {_summarise(missing)}')
    if unexpected:
        parts.append(f'  unexpected keys: {_summarise(unexpected)}')
    if mismatched:
        parts.append(f'  shape mismatches: {_summarise(mismatched)}')
    return '\n'.join(parts)


def load_state_dict_checked(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                            source: str = '<checkpoint>',
                            optional_prefixes: tuple[str, ...] = ()) -> None:
    """Load strictly, except that keys under ``optional_prefixes`` (classifier heads) are dropped
    from the file when the model lacks them or their shapes differ, and left at their init when the
    file lacks them. Anything else that does not match raises :class:`CheckpointError` listing
    missing keys, unexpected keys and shape mismatches."""
    own = model.state_dict()
    state = OrderedDict(state_dict)

    def optional(key: str) -> bool:
        return any(key.startswith(p) for p in optional_prefixes)

    dropped = [k for k in state if optional(k) and (k not in own or own[k].shape != state[k].shape)]
    for key in dropped:
        del state[key]
    report = state_dict_mismatch(model, state, source, optional)
    if report:
        raise CheckpointError(report + '\n  Is the checkpoint for another variant, or wrapped under a prefix '
                              "(try prefix='backbone.')?")
    if dropped:
        logger.info('%s: not loading %s (absent from the model or of another shape)', source,
                    _summarise(dropped))
    model.load_state_dict(state, strict=False)
    left_at_init = [k for k in own if k not in state]
    if left_at_init:
        logger.info('%s: left at initialisation: %s', source, _summarise(left_at_init))


def check_resume_checkpoint(model: torch.nn.Module, checkpoint: Any, path: str | os.PathLike) -> None:
    """A training checkpoint to resume from must match the model exactly (MMEngine's resume loads
    non-strictly and fails later on a shape, or trains on with weights left at init)."""
    model = getattr(model, 'module', model)
    source = f'--resume checkpoint {os.fspath(path)}'
    report = state_dict_mismatch(model, unwrap_state_dict(checkpoint, source), source)
    if report:
        raise CheckpointError(report + '\n  Was the config changed (classes, variant) since that run? Resume '
                              'with the config of the run, or start a new one with load_from.')


def adapt_first_conv(state_dict: dict, model: torch.nn.Module, first_conv: Optional[str],
                     source: str) -> dict:
    """A first convolution trained on 3 channels, adapted to the model's input channels by timm's
    rule (``adapt_input_conv``: summed for 1 channel, repeated and rescaled for more)."""
    key = f'{first_conv}.weight' if first_conv else None
    own = model.state_dict()
    if key is None or key not in state_dict or key not in own:
        return state_dict
    have, want = state_dict[key].shape[1], own[key].shape[1]
    if have == want:
        return state_dict
    if have != 3:
        raise CheckpointError(f'{source}: {key} takes {have} input channels; only 3-channel weights '
                              f'can be adapted to the model\'s {want}')
    from timm.models import adapt_input_conv
    state_dict = dict(state_dict)
    state_dict[key] = adapt_input_conv(want, state_dict[key])
    logger.info('%s: adapted %s from 3 to %d input channels', source, key, want)
    return state_dict


def load_pretrained_file(model: torch.nn.Module, path: str | os.PathLike, prefix: str = '',
                         filter_fn: Optional[Callable] = None,
                         optional_prefixes: tuple[str, ...] = (), first_conv: Optional[str] = None) -> None:
    """Read ``path``, unwrap it, pick ``prefix``, map names with ``filter_fn``, adapt the first
    convolution to the model's input channels, load checked.

    Without a prefix, a file wrapped by a detector or segmentor (keys under ``backbone.``) is
    recognised and unwrapped automatically.
    """
    source = f'checkpoint {os.fspath(path)}'
    state = unwrap_state_dict(read_checkpoint(path), source)
    if not prefix and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    state = select_prefix(state, prefix, source)
    if filter_fn is not None:
        state = filter_fn(state, model)
    state = adapt_first_conv(state, model, first_conv, source)
    load_state_dict_checked(model, state, source, optional_prefixes)


def _whole_model_state(model: torch.nn.Module, path: str | os.PathLike):
    """(unwrapped model, the file's state dict in the model's names, source) for a whole-model file."""
    model = getattr(model, 'module', model)  # DataParallel / DDP / MMEngine wrappers
    source = f'checkpoint {os.fspath(path)}'
    state = dict(unwrap_state_dict(read_checkpoint(path), source))
    backbone = getattr(model, 'backbone', None)
    if backbone is not None and not any(k.startswith('backbone.') for k in state) \
            and all(k.startswith('backbone.') for k in model.state_dict()):
        state = {f'backbone.{k}': v for k, v in state.items()}  # a released classifier file
    filter_fn = getattr(type(backbone), 'checkpoint_filter_fn', None) if backbone is not None else None
    if filter_fn is not None:
        inner = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        inner = filter_fn(inner, backbone)
        state = {k: v for k, v in state.items() if not k.startswith('backbone.')}
        state.update({f'backbone.{k}': v for k, v in inner.items()})
    return model, state, source


def load_model_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a whole-model checkpoint (detector, segmentor, classifier) strictly.

    The papers' downstream checkpoints were written by mmdet 2.x / mmseg 0.x. For RetinaNet, Mask
    R-CNN and Semantic FPN the parameter names did not change in mmdet 3.x / mmseg 1.x; what differs
    is inside the backbone (LSNet's 14x14 attention-bias tables, mmpretrain's VAN names), which the
    backbone's own ``checkpoint_filter_fn`` adapts. A released classifier file (backbone names only)
    loads into the backbone. Anything left unmatched raises :class:`CheckpointError` listing the keys.
    """
    model, state, source = _whole_model_state(model, path)
    load_state_dict_checked(model, state, source)


def check_model_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Raise as :func:`load_model_checkpoint` would, without loading anything into ``model``."""
    model, state, source = _whole_model_state(model, path)
    report = state_dict_mismatch(model, state, source)
    if report:
        raise CheckpointError(report)


# The suffix of atomic_write's temporary files, which remove_interrupted_writes looks for.
TEMP_SUFFIX = '.tmp'


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class DiskFullError(OSError):
    """A write that ran out of space (ENOSPC, EDQUOT), naming the file, the space it needed and the
    space left; the file it would have replaced is untouched."""


def _format_bytes(count: int) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if count < 1024 or unit == 'GiB':
            return f'{count:.0f} {unit}' if unit == 'B' else f'{count:.1f} {unit}'
        count /= 1024
    return ''


def _disk_full(err: OSError, filepath: str, needed: Optional[int], existed: bool) -> DiskFullError:
    import shutil
    folder = osp.dirname(osp.abspath(filepath))
    free = shutil.disk_usage(folder).free
    need = f'{_format_bytes(needed)} needed, ' if needed else ''
    kept = f'the previous {filepath} is intact' if existed else f'{filepath} was not written'
    return DiskFullError(err.errno, f'No space left on device writing {filepath}: {need}{_format_bytes(free)} '
                                    f'free in {folder}; {kept}')


@contextlib.contextmanager
def atomic_output(filepath: Union[str, Path], size_hint: Optional[int] = None):
    """Yield a temporary path beside ``filepath`` for a writer that takes a path (``torch.onnx.export``,
    onnxruntime's quantizer); on success it is fsynced and renamed over ``filepath`` and the folder
    fsynced, so a crash leaves the old file or the new one, never a truncated one. On failure the
    temporary file is removed; running out of space raises ``DiskFullError`` naming the file. The file
    gets the permissions a plain ``open`` would give under the user's umask."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    existed = osp.exists(filepath)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix=TEMP_SUFFIX, dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
    except OSError as err:
        if osp.exists(tmp):
            os.remove(tmp)
        if err.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(err, DiskFullError):
            raise _disk_full(err, filepath, size_hint, existed) from None
        raise
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(data: Union[bytes, str], filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``filepath`` through :func:`atomic_output`."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_output(filepath, size_hint=len(payload)) as tmp:
        with open(tmp, 'wb') as f:
            f.write(payload)
            f.flush()


def save_checkpoint(obj: Any, filepath: Union[str, Path]) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), filepath)


def remove_interrupted_writes(work_dir: str, logger=print) -> list:
    """Delete the temporary files a killed process left behind mid-write (``.<name>.<random>.tmp``)."""
    removed = []
    for path in Path(work_dir).glob(f'.*.*{TEMP_SUFFIX}') if osp.isdir(work_dir) else []:
        path.unlink()
        removed.append(str(path))
        logger(f'[lsnet] removed {path}: an interrupted checkpoint write')
    return removed


def existing_checkpoints(work_dir: str) -> list[str]:
    """The ``*.pth`` files of a work dir, by name."""
    return sorted(str(p) for p in Path(work_dir).glob('*.pth'))


def non_finite_tensors(state_dict: dict) -> list:
    """Names of floating-point tensors holding NaN or Inf."""
    return [name for name, value in state_dict.items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def newest_finite_checkpoint(work_dir: str, logger=print) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that reads and whose weights and buffers are all finite."""
    for path in sorted(Path(work_dir).glob('*.pth'), key=os.path.getmtime, reverse=True):
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            logger(f'[lsnet] skipping unreadable checkpoint: {err}')
            continue
        state = checkpoint.get('state_dict', {}) if isinstance(checkpoint, dict) else {}
        if state and not non_finite_tensors(state):
            return str(path)
    return None


def find_resumable_checkpoint(work_dir: str, logger=print) -> Optional[str]:
    """The newest readable checkpoint in ``work_dir``: the one ``last_checkpoint`` names when it is
    intact, else the newest ``*.pth`` that loads. Unreadable files are reported, never deleted."""
    candidates = []
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        named = Path(marker).read_text().strip()
        if named and not osp.isfile(named):
            logger(f'[lsnet] {marker} names {named}, which does not exist; looking for the newest readable '
                   'checkpoint instead')
        elif named:
            candidates.append(named)
    candidates += sorted((str(p) for p in Path(work_dir).glob('*.pth')), key=os.path.getmtime, reverse=True)
    seen = set()
    for path in candidates:
        if path in seen or not osp.isfile(path):
            continue
        seen.add(path)
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            logger(f'[lsnet] skipping unreadable checkpoint: {err}')
            continue
        if isinstance(checkpoint, dict) and 'state_dict' in checkpoint and 'meta' in checkpoint:
            return path
        logger(f'[lsnet] skipping {path}: not a training checkpoint (no state_dict/meta)')
    return None
