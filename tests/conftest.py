import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs a CUDA device (skipped elsewhere)')
    config.addinivalue_line('markers', 'slow: long-running end-to-end test')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
