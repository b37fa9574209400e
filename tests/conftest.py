"""Shared fixtures. Tests never touch the network: pretrained downloads are switched off."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

os.environ.setdefault("EXPLORER_OFFLINE", "1")
os.environ.setdefault("EXPLORER_DEVICE", "cpu")
# Plotly validates every figure the tests build (the app skips it for speed; the two give the
# same JSON: tests/test_figures_unvalidated.py). Browser tests' servers run as the app does.
os.environ.setdefault("EXPLORER_VALIDATE_FIGURES", "1")

REPO = Path(__file__).resolve().parents[1]
# The 8,000 real MNIST digits the repo ships (assets/data/README.md): never read from outside
# the checkout, so a fresh clone runs every test that needs them.
MNIST_NPZ = REPO / "assets" / "data" / "mnist-8k.npz"


@pytest.fixture(scope="session")
def mnist_npz() -> Path:
    """The shipped 8,000 real MNIST digits (``assets/data/mnist-8k.npz``)."""
    assert MNIST_NPZ.is_file(), f"{MNIST_NPZ} is part of the repo"
    return MNIST_NPZ


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then restore the count.

    A training run then gives the same numbers whatever the machine's cores, and the tests
    after it keep their own setting.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
