"""The handwritten digits the digit nets train and validate on, and how they are split.

``assets/data/mnist-8k.npz`` holds 8,000 real MNIST digits; :func:`shipped_digits` splits off
the 1,000 validation digits the shipped models never trained on (the sample gallery comes from
them). :func:`load_digits` also reads any ``.npz`` of the same shape, or torchvision's MNIST.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explorer.assets import ASSETS_DIR

__all__ = [
    "DIGITS_FILE",
    "MNIST_ROOT",
    "VAL_SIZE",
    "Digits",
    "TrainingError",
    "limited",
    "load_digits",
    "sha256",
    "shipped_digits",
    "split_digits",
    "split_train_val",
]

DIGITS_FILE = ASSETS_DIR / "data" / "mnist-8k.npz"
VAL_SIZE = 1000
"""Validation digits held out of the shipped file (the gallery's digits come from them)."""
MNIST_ROOT = Path.home() / ".cache" / "cnn-explorer" / "mnist"


class TrainingError(RuntimeError):
    """Training cannot start or finish; the message is one line meant for the user."""


@dataclass(frozen=True)
class Digits:
    """Digits to train on and digits held out to validate: uint8 (N, 28, 28), white on black.

    Attributes:
        train_images: The digits trained on.
        train_labels: Their classes, 0–9.
        val_images: The digits held out.
        val_labels: Their classes.
        info: Where they come from (a model card's ``data`` entry).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def load_digits(
    data: str | os.PathLike[str], split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Load handwritten digits as uint8 images (N, 28, 28), white on black, and uint8 labels.

    Args:
        data: Path to an ``.npz`` file with ``images`` and ``labels``, or ``"mnist"`` for
            torchvision's MNIST (downloaded on first use).
        split: For ``"mnist"`` only: ``"train"`` (60,000 digits) or ``"test"`` (10,000).

    Raises:
        TrainingError: The file is missing or malformed, or MNIST cannot be downloaded.
    """
    if str(data) == "mnist":
        return _load_torchvision_mnist(split)
    path = Path(data)
    if not path.is_file():
        raise TrainingError(f"digit file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise TrainingError(f"cannot read {path.name} as an .npz file: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TrainingError(f"{path.name} is a single array, not an .npz with images and labels")
    with archive:
        if "images" not in archive or "labels" not in archive:
            raise TrainingError(
                f"{path.name} must hold arrays 'images' and 'labels', has {archive.files}"
            )
        try:
            images, labels = archive["images"], archive["labels"]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise TrainingError(f"cannot read the arrays in {path.name}: {exc}") from exc
    _check_digits(images, labels, path.name)
    return images, labels


def _check_digits(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise TrainingError(
            f"{source}: 'images' must be uint8 of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype.kind not in "ui":
        raise TrainingError(
            f"{source}: 'labels' must be integers of shape ({images.shape[0]},), "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise TrainingError(f"{source}: labels must lie in 0–9")


def _load_torchvision_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise TrainingError(f"unknown MNIST split {split!r}: use 'train' or 'test'")
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(str(MNIST_ROOT), train=split == "train", download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, …
        lines = str(exc).strip().splitlines()
        reason = lines[0].rstrip(":") if lines else type(exc).__name__
        raise TrainingError(
            f"cannot download MNIST with torchvision into {MNIST_ROOT} (offline?): {reason}; "
            "use --data PATH.npz instead"
        ) from exc
    return dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.uint8)


def split_train_val(
    labels: np.ndarray, val_size: int = VAL_SIZE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into training and validation, stratified by class and fixed by ``seed``.

    Each class gets a share of ``val_size`` proportional to its count (largest remainders
    round up), so the validation split always holds exactly ``val_size`` digits.

    Returns:
        ``(train_indices, val_indices)``, each sorted ascending.
    """
    labels = np.asarray(labels)
    if not 0 < val_size < labels.size:
        raise TrainingError(f"val_size must lie between 1 and {labels.size - 1}, got {val_size}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * val_size / labels.size
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: val_size - quota.sum()]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    val = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[:q]
            for c, q in zip(classes, quota, strict=True)
        ]
    )
    is_val = np.zeros(labels.size, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def split_digits(data: str | os.PathLike[str], val_size: int = VAL_SIZE, seed: int = 0) -> Digits:
    """MNIST's train and test splits, or an ``.npz`` split by :func:`split_train_val`.

    Raises:
        TrainingError: See :func:`load_digits` and :func:`split_train_val`.
    """
    if str(data) == "mnist":
        train_images, train_labels = load_digits("mnist", split="train")
        val_images, val_labels = load_digits("mnist", split="test")
        info: dict[str, Any] = {
            "source": "torchvision MNIST",
            "train_split": "train",
            "val": "test",
        }
        return Digits(train_images, train_labels, val_images, val_labels, info)
    images, labels = load_digits(data)
    train_idx, val_idx = split_train_val(labels, val_size, seed)
    info = {
        "source": Path(data).name,
        "sha256": sha256(Path(data).read_bytes()),
        "split": f"stratified, seed {seed}, {len(val_idx)} validation digits held out",
    }
    return Digits(images[train_idx], labels[train_idx], images[val_idx], labels[val_idx], info)


def limited(digits: Digits, limit: int | None, seed: int) -> Digits:
    """``digits`` with at most ``limit`` training digits (a seeded random subset, in order)."""
    if limit is None or limit >= len(digits.train_labels):
        return digits
    keep = np.sort(np.random.default_rng(seed).permutation(len(digits.train_labels))[:limit])
    return dataclasses.replace(
        digits, train_images=digits.train_images[keep], train_labels=digits.train_labels[keep]
    )


@functools.cache
def shipped_digits() -> Digits:
    """The shipped 8,000 digits, split as the shipped models were (1,000 validation)."""
    return split_digits(DIGITS_FILE, VAL_SIZE, seed=0)


def sha256(blob: bytes) -> str:
    """The hex sha256 of ``blob`` (how cards name their weights and data)."""
    return hashlib.sha256(blob).hexdigest()
