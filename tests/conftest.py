import os
import random

import pytest
import torch

from mm_helpers import THREADS, SharedRuns

# Each pytest-xdist worker computes on its share of the cores; the tools the tests start inherit it.
torch.set_num_threads(THREADS)
os.environ['OMP_NUM_THREADS'] = str(THREADS)


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs a CUDA device (skipped elsewhere)')
    config.addinivalue_line('markers', "slow: runs the project's tools (train, test, deploy, export, demo, "
                                       "benchmark) or trains beyond a few iterations; `make test-fast` leaves it out")
    config.addinivalue_line('markers', 'serial: starts several processes or measures time; `make test` runs '
                                       'these alone, after the parallel part')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def noise_file(tmp_path):
    """4 KiB of random bytes that start like no checkpoint format (no pickle protocol byte, no zip or
    safetensors header), so every reader must call them "not a checkpoint". Seeded: the same bytes each run."""
    data = bytearray(random.Random(0).randbytes(4096))
    data[0] = 0x13  # os.urandom's first byte is 0x80 once in 256 runs: a pickle's start, read as a damaged one
    path = tmp_path / 'noise.pth'
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope='session')
def shared_runs(tmp_path_factory) -> SharedRuns:
    """The shapes runs trained once per pytest run; pytest-xdist's workers share one folder."""
    base = tmp_path_factory.getbasetemp()
    return SharedRuns((base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base) / 'shared_runs')
