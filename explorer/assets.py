"""Where the shipped files live: weights, sample digits and photos, the MNIST subset."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
"""The repository's ``assets/`` folder."""
MODELS_DIR = ASSETS_DIR / "models"
"""Shipped weights and their cards (``lenet5.pth``, ``lenet5.json`` …)."""
OWN_MODELS_DIR = MODELS_DIR / "own"
"""Shipped example files of "your own model" (``.pt2``, ``.onnx``)."""
DIGITS_DIR = ASSETS_DIR / "digits"
"""Real MNIST test digits, ``<digit>_<index>.png``."""
PHOTOS_DIR = ASSETS_DIR / "photos"
"""Sample photos (public domain / CC0)."""
