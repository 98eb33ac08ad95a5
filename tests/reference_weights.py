"""Seeded weights and inputs of the parity fixtures (the reference's documented generation rule).

Each float tensor is seeded from the SHA-256 of its key; integer buffers come from the fixture's
``overrides``. Loading such a file through our checkpoint path must reproduce the fixture outputs.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / 'fixtures' / 'reference'


def seeded_tensor(key: str, shape: list[int]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
    if key.endswith('running_var'):
        return torch.rand(shape, generator=gen) + 0.5
    if key.endswith('running_mean'):
        return torch.randn(shape, generator=gen) * 0.1
    if len(shape) == 1 and key.endswith('weight'):
        return 1.0 + 0.1 * torch.randn(shape, generator=gen)
    if len(shape) <= 1:
        return 0.05 * torch.randn(shape, generator=gen)
    fan_in = 1
    for size in shape[1:]:
        fan_in *= size
    return torch.randn(shape, generator=gen) / fan_in ** 0.5


def seeded_input(shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))


def layout(name: str) -> list:
    return json.loads((FIXTURES / 'layouts' / f'{name}.json').read_text())['layout']


def fixture(name: str) -> tuple[dict, dict]:
    meta = json.loads((FIXTURES / 'parity' / f'{name}.json').read_text())
    outs = torch.load(FIXTURES / 'parity' / f'{name}.pt', weights_only=True)
    return meta, outs


def released_state_dict(name: str, overrides: dict | None = None) -> dict:
    """A state dict laid out like the released ``name`` checkpoint, with seeded values."""
    state = {}
    for key, shape, dtype in layout(name):
        if dtype.startswith('torch.float'):
            state[key] = seeded_tensor(key, shape)
        elif overrides is None or key not in overrides:
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype.split('.')[-1]))
    if overrides:
        state.update(overrides)
    return state


def write_released_checkpoint(name: str, path: Path, overrides: dict | None = None) -> Path:
    """Write a file wrapped as the release wraps it ({'model': sd} for LSNet, {'state_dict': sd} for VAN)."""
    state = released_state_dict(name, overrides)
    torch.save({'model': state} if name.startswith('lsnet') else {'state_dict': state}, path)
    return path
