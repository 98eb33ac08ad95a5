import os

import pytest
import torch

from mm_helpers import THREADS

# Each pytest-xdist worker computes on its share of the cores; the tools the tests start inherit it.
torch.set_num_threads(THREADS)
os.environ['OMP_NUM_THREADS'] = str(THREADS)


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs a CUDA device (skipped elsewhere)')
    config.addinivalue_line('markers', 'slow: a training or export run of more than a few iterations '
                                       '(deselected by `make test-fast`)')
    config.addinivalue_line('markers', 'serial: starts several processes or measures time; `make test` runs '
                                       'these alone, after the parallel part')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
