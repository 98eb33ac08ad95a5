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


def fast_tier(values, fast) -> list:
    """Parameters of which only ``fast`` run in `make test-fast`; the others are marked slow and run in
    `make test` (a representative per family while working, every variant in the whole suite)."""
    import pytest
    return [value if value in fast else pytest.param(value, marks=pytest.mark.slow) for value in values]


def expect_tool_failure(args: list[str], pattern: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a tool that must fail: it exits non-zero and its output matches ``pattern`` (a regex), so an
    expected tool failure is told apart from a broken assertion in the test."""
    result = run_tool(args, timeout=timeout, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f'{args[0]} exited 0, expected a failure matching {pattern!r}:\n{output[-3000:]}'
    assert re.search(pattern, output), f'{args[0]} failed ({result.returncode}) without {pattern!r}:\n{output[-3000:]}'
    return result


# Iterations of the shared shapes runs (tests/conftest.py: shared_runs)
ITERS = 8


def det_overrides(shapes_root, masks: bool) -> str:
    coco = f'{shapes_root}/coco/'
    # After a few iterations no score passes the usual 0.05 threshold: keep every detection.
    test_cfg = "dict(rcnn=dict(score_thr=0.0))" if masks else "dict(score_thr=0.0)"
    return f'''
        model = dict(test_cfg={test_cfg})
        train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        val_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{coco}'))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file='{coco}annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
        param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end={ITERS})]
        optim_wrapper = dict(optimizer=dict(lr=2e-4))
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={ITERS}),
                             visualization=dict(draw=False))
        log_processor = dict(window_size=1)
        randomness = dict(seed=0)
    '''


def seg_overrides(shapes_root) -> str:
    ade = f'{shapes_root}/ade'
    return f'''
        train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(data_root='{ade}'))
        val_dataloader = dict(num_workers=0, dataset=dict(data_root='{ade}'))
        test_dataloader = val_dataloader
        train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
        param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end={ITERS})]
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={ITERS}))
        log_processor = dict(window_size=1)
        randomness = dict(seed=0)
    '''


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


class SharedRuns:
    """Shapes models trained once per pytest run and shared by every test and every pytest-xdist worker
    (a file lock per run): ``data()`` generates the synthetic set, ``run(config, kind)`` trains ``config``
    for ``ITERS`` iterations through ``tools/train.py`` and evaluates it through ``tools/test.py``.
    Tests read the results; what they write goes to their own folders."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def data(self) -> Path:
        from filelock import FileLock
        from lsnet.datasets import generate_shapes
        folder = self.root / 'shapes'
        with FileLock(str(self.root / 'shapes.lock')):
            if not (folder / 'done').exists():
                generate_shapes(folder, ('coco', 'ade'), num_train=12, num_val=4, image_size=(128, 160),
                                max_objects=3, progress=lambda message: None)
                (folder / 'done').write_text('')
        return folder

    def run(self, config: str, kind: str) -> 'SharedRun':
        """``kind``: 'det' (RetinaNet), 'ins' (Mask R-CNN) or 'seg' (Semantic FPN)."""
        from filelock import FileLock
        shapes = self.data()
        folder = self.root / Path(config).stem
        with FileLock(str(folder) + '.lock'):
            if not (folder / 'metrics.json').exists():
                folder.mkdir(exist_ok=True)
                body = seg_overrides(shapes) if kind == 'seg' else det_overrides(shapes, kind == 'ins')
                cfg = write_override(folder, config, body)
                run_tool(['tools/train.py', str(cfg), '--work-dir', str(folder / 'work')])
                run_tool(['tools/test.py', str(cfg), str(folder / 'work' / f'iter_{ITERS}.pth'), '--work-dir',
                          str(folder / 'test'), '--out', str(folder / 'metrics.json')])
        return SharedRun(folder, config)


class SharedRun:
    def __init__(self, folder: Path, config: str):
        self.cfg = folder / f'{Path(config).stem}_test.py'
        self.work = folder / 'work'
        self.checkpoint = self.work / f'iter_{ITERS}.pth'
        self.metrics = json.loads((folder / 'metrics.json').read_text())
