"""Running tools/train.py and tools/test.py as a user does, on the synthetic data."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Threads per test process: the machine's cores (at most 2) shared among pytest-xdist's workers.
THREADS = max(1, min(2, os.cpu_count() or 1) // int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')))


def run_tool(args: list[str], timeout: int = 900, launcher: list[str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run a project tool as a user does; with ``check`` a non-zero exit fails the test with its output
    (to assert an expected failure, pass ``check=False`` and test ``returncode`` and the message)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS), PYTHONWARNINGS='ignore')
    command = (launcher or [sys.executable]) + args
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{" ".join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n'
                             f'{result.stderr[-6000:]}')
    return result


def expect_tool_failure(args: list[str], pattern: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a tool that must fail: it exits non-zero and its output matches ``pattern`` (a regex), so an
    expected tool failure is told apart from a broken assertion in the test."""
    result = run_tool(args, timeout=timeout, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f'{args[0]} exited 0, expected a failure matching {pattern!r}:\n{output[-3000:]}'
    assert re.search(pattern, output), f'{args[0]} failed ({result.returncode}) without {pattern!r}:\n{output[-3000:]}'
    return result


def write_override(tmp_path: Path, base_config: str, body: str) -> Path:
    """A config inheriting ``base_config`` (relative to configs/) with ``body`` appended."""
    path = tmp_path / f'{Path(base_config).stem}_test.py'
    path.write_text(f"_base_ = '{ROOT / 'configs' / base_config}'\n" + textwrap.dedent(body))
    return path


def logged_losses(work_dir: Path) -> list[float]:
    files = sorted(glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    losses = []
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record and 'step' in record and 'mode' not in record:
                losses.append(record['loss'])
    return losses
