"""Where the shipped files live: weights, sample digits and photos, example models.

The training digits' file is :data:`explorer.models.digits.DIGITS_FILE`.
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
"""The repository's ``assets/`` folder."""
MODELS_DIR = ASSETS_DIR / "models"
"""Shipped weights and their cards (``lenet5.pth``, ``lenet5.json`` …)."""
OWN_MODELS_DIR = MODELS_DIR / "own"
"""Shipped example files of "your own model" (``.pt2``, ``.onnx``)."""
DIGITS_DIR = ASSETS_DIR / "digits"
"""30 sample digits, ``<label>_<k>.png``: real MNIST digits from the validation split of
``assets/data/mnist-8k.npz``, never trained on (``assets/digits/README.md``)."""
PHOTOS_DIR = ASSETS_DIR / "photos"
"""Sample photos (public domain / CC0)."""
