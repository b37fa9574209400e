"""Shared fixtures. Tests never touch the network: pretrained downloads are switched off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("EXPLORER_OFFLINE", "1")
os.environ.setdefault("EXPLORER_DEVICE", "cpu")
# Plotly validates every figure the tests build (the app skips it for speed; the two give the
# same JSON: tests/test_figures_unvalidated.py). Browser tests' servers run as the app does.
os.environ.setdefault("EXPLORER_VALIDATE_FIGURES", "1")

REPO = Path(__file__).resolve().parents[1]
MNIST_NPZ = REPO.parent / "shared" / "data" / "mnist-8k.npz"


@pytest.fixture(scope="session")
def mnist_npz() -> Path:
    """The 8,000 real MNIST digits beside the repo (skips where ../shared is absent)."""
    if not MNIST_NPZ.is_file():
        pytest.skip(f"{MNIST_NPZ} not found")
    return MNIST_NPZ
