"""The shipped samples, each under one name everywhere: real MNIST digits and photos."""

from __future__ import annotations

from pathlib import Path

from explorer.assets import DIGITS_DIR, PHOTOS_DIR


def digit_label(path: Path) -> str:
    """``3_0.png`` → ``"3 (sample 1)"``: the digit, then which of its samples (from 1)."""
    digit, index = path.stem.split("_")
    return f"{digit} (sample {int(index) + 1})"


def digit_samples() -> dict[str, Path]:
    """The 30 real MNIST validation digits in ``assets/digits`` (never trained on), by label."""
    return {digit_label(p): p for p in sorted(DIGITS_DIR.glob("*.png"))}


def photo_samples() -> dict[str, Path]:
    """The sample photos in ``assets/photos`` (public domain / CC0), by readable name."""
    return {p.stem.replace("_", " "): p for p in sorted(PHOTOS_DIR.glob("*.jpg"))}


def samples_for(family: str) -> dict[str, Path]:
    """Digits for the digit nets (``family == "digit"``), photos for the others."""
    return digit_samples() if family == "digit" else photo_samples()
