"""Writing files so that a crash, a kill or a full disk never leaves a half-written one in place:
temporary file, fsync, rename, folder fsync (``atomic_output`` / ``atomic_write`` / ``save_checkpoint``);
a full disk is named with the file and the space; ``remove_interrupted_writes`` deletes a killed
writer's temporary files."""
from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

logger = logging.getLogger('lsnet')


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


def remove_interrupted_writes(work_dir: str) -> list:
    """Delete the temporary files a killed process left behind mid-write (``.<name>.<random>.tmp``)."""
    removed = []
    for path in Path(work_dir).glob(f'.*.*{TEMP_SUFFIX}') if osp.isdir(work_dir) else []:
        path.unlink()
        removed.append(str(path))
        logger.warning('removed %s: an interrupted checkpoint write', path)
    return removed
