"""The Convolution lab's view-model: its settings, and the 1-D view's alignment and tables.

``pages/lab.py`` lays these out; the numbers all come from :mod:`explorer.lab.maths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from explorer.lab import figures as lf
from explorer.lab import maths


@dataclass(frozen=True)
class ConvSettings:
    """The sidebar's convolution settings: bias, stride, padding and what the padding holds."""

    bias: float = 0.0
    stride: int = 1
    padding: maths.Padding = "valid"
    boundary: str = "zero"

    def correlate(self, image: np.ndarray, kernel: np.ndarray) -> maths.Conv2dResult:
        """Cross-correlation with these settings, as a CNN layer computes it."""
        return maths.correlate2d(image, kernel, self.bias, self.stride, self.padding, self.boundary)

    def convolve(self, image: np.ndarray, kernel: np.ndarray) -> maths.Conv2dResult:
        """True convolution with these settings: the kernel flipped, as ``scipy.ndimage``.

        The result's ``kernel`` is the flipped one, the one the products use.
        """
        return self.correlate(image, maths.flip(kernel))


def input_kind(image: np.ndarray) -> lf.Kind:
    """How an input is drawn: gray pixels when it lies in 0…1, else signed values."""
    return "pixels" if image.min() >= 0 and image.max() <= 1 else "signed"


def pooled_value_text(window: maths.PoolWindow, mode: str) -> str:
    """How one pooled value was made, in words and numbers (markdown).

    Args:
        window: The window behind the value (:meth:`maths.Pool2dResult.window`).
        mode: The pooling mode, one of :data:`maths.POOL_MODES`.
    """
    n = maths.number_text
    where = f"**pooled[{window.row}, {window.col}]**"
    if window.winner is not None:
        wy, wx = window.winner
        return (
            f"{where} = max of the window = **{n(window.value)}**, "
            f"won by input row {wy}, column {wx}"
        )
    what = "mean" if mode == "average" else "sum"
    return f"{where} = {what} of the {window.values.size} values = **{n(window.value)}**"


@dataclass(frozen=True)
class ValueTable:
    """Numbers written for a table: one row per series, blank where a series has no value.

    Attributes:
        columns: The column headers: positions in the signal, or output indices.
        rows: Each series' cells, in column order, written by :func:`maths.number_text`.
    """

    columns: list[str]
    rows: dict[str, list[str]]


def value_table(
    rows: Mapping[str, np.ndarray], positions: Mapping[str, np.ndarray] | None = None
) -> ValueTable:
    """One row per series, rounded to the lab's decimals; blank where a series has no value.

    With ``positions`` (one array per series) the columns are positions in the signal, so
    outputs line up with the input values they are centred on; else output indices.
    """
    if positions is None:
        positions = {name: np.arange(len(v)) for name, v in rows.items()}
    columns = sorted({float(p) for name in rows for p in positions[name]})
    headers = [f"{c:g}" for c in columns]
    cells: dict[str, list[str]] = {}
    for name, values in rows.items():
        written = {
            f"{float(p):g}": maths.number_text(float(v))
            for p, v in zip(positions[name], values, strict=True)
        }
        cells[name] = [written.get(header, "") for header in headers]
    return ValueTable(headers, cells)


@dataclass(frozen=True)
class OneDView:
    """The 1-D view: a signal through ``np.convolve``'s modes and ``scipy.ndimage``'s boundaries.

    Attributes:
        signal: The signal's values.
        kernel: The kernel's values.
        modes: ``np.convolve``'s output for each of ``full``, ``same`` and ``valid``.
        positions: Where each mode's outputs sit on the signal's axis: the kernel's centre
            (for an even kernel, between two samples).
        aligned: Whether tables line outputs up with the signal (an odd kernel has a centre
            sample; an even one does not, and its tables use output indices).
        bounded: ``scipy.ndimage.convolve``'s output for each boundary mode, by scipy's
            name; ``None`` for an even kernel (scipy centres the kernel).
        padded: The signal padded by each boundary mode, by scipy's name (odd kernels).
        padded_positions: The positions of ``padded``'s values.
    """

    signal: np.ndarray
    kernel: np.ndarray
    modes: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    aligned: bool
    bounded: dict[str, np.ndarray] | None
    padded: dict[str, np.ndarray] | None
    padded_positions: np.ndarray

    @property
    def half(self) -> int:
        """How many values each boundary mode adds on each side."""
        return len(self.kernel) // 2

    def numpy_table(self) -> ValueTable:
        """The signal and every ``np.convolve`` mode, aligned where the kernel is odd."""
        rows = {"signal": self.signal, **self.modes}
        if not self.aligned:
            return value_table(rows)
        return value_table(rows, {"signal": np.arange(len(self.signal)), **self.positions})

    def scipy_table(self) -> ValueTable:
        """The signal and every boundary mode's output (as many values as the signal)."""
        return value_table({"signal": self.signal} | (self.bounded or {}))

    def padded_table(self) -> ValueTable:
        """What each boundary mode pads the signal with."""
        padded = self.padded or {}
        return value_table(padded, dict.fromkeys(padded, self.padded_positions))


def mode_positions(modes: Mapping[str, np.ndarray], kernel_length: int) -> dict[str, np.ndarray]:
    """Where ``np.convolve``'s outputs sit on the signal's axis, mode by mode.

    Each output is placed at the centre of the kernel that made it: ``full`` starts
    ``(N − 1) / 2`` before the signal, ``same`` keeps the outputs of ``full`` from index
    ``(N − 1) // 2``, ``valid`` starts where the kernel first fits.
    """
    centre = (kernel_length - 1) / 2
    first = {"full": -centre, "same": (kernel_length - 1) // 2 - centre, "valid": centre}
    return {mode: np.arange(len(values)) + first[mode] for mode, values in modes.items()}


def one_d_view(signal_text: str, kernel_text: str) -> OneDView:
    """The 1-D view of a signal and a kernel typed as numbers (fractions allowed).

    Raises:
        ValueError: The text is not numbers, or the kernel cannot slide over the signal.
    """
    signal, kernel = maths.parse_numbers(signal_text), maths.parse_numbers(kernel_text)
    modes = {mode: maths.convolve1d(signal, kernel, mode) for mode in maths.NUMPY_CONVOLVE_MODES}
    positions = mode_positions(modes, len(kernel))
    half = len(kernel) // 2
    bounded = padded = None
    if len(kernel) % 2 == 1:
        names = {b: maths.SCIPY_MODES[b] for b in maths.BOUNDARIES}
        bounded = {names[b]: maths.convolve1d_boundary(signal, kernel, b) for b in maths.BOUNDARIES}
        padded = {
            names[b]: maths.pad(signal[None], (0, 0), (half, half), b)[0] for b in maths.BOUNDARIES
        }
    return OneDView(
        signal=signal,
        kernel=kernel,
        modes=modes,
        positions=positions,
        aligned=len(kernel) % 2 == 1,
        bounded=bounded,
        padded=padded,
        padded_positions=np.arange(-half, len(signal) + half),
    )
