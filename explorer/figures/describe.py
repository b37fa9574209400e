"""Text alternatives: a map, a stack of maps, a filter bank or a prediction in one sentence.

A screen reader cannot read a heatmap; the pages print these sentences beneath the pictures
(and a figure can carry one as its accessible name). Each says the shape, the value range and
where the values peak, with rows and columns counted from 0 as the charts' hovers count them.
NaN and infinite values (a diverged model, a huge kernel) are counted and left out of the
range and the peak, so such a map is described, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from explorer.figures.style import shape_text

MINUS = "\u2212"  # a real minus sign: screen readers say "minus", not "hyphen"

PALETTE_WORDS = {
    "RdBu_r": "blue below 0, white at 0, red above",
    "Viridis": "dark purple lowest through green to yellow highest",
}
"""What a palette's colours mean, in words, by plotly's name for it."""


def number_text(value: float, decimals: int | None = None) -> str:
    """A value as the app writes it, never ``"-0"``.

    Args:
        value: The number.
        decimals: ``None`` for prose: three significant figures (whole numbers from 1,000,
            with thousands separators) and a real minus sign, read as "minus". A count for
            tables and written-out sums: that many decimals and an ASCII ``-``, so a student
            can paste the number into Python.
    """
    if decimals is not None:
        text = f"{value:.{decimals}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    rounded = float(f"{value:.3g}")  # 999.7 rounds to 1,000: written whole, not "1e+03"
    text = f"{value:.3g}" if abs(rounded) < 1000 else f"{value:,.0f}"
    return (text[1:] if text == "-0" else text).replace("-", MINUS)


def percent_text(fraction: float, decimals: int = 1) -> str:
    """``0.9412`` → ``"94.1%"``, as the pages' metrics and bars write it."""
    return f"{fraction:.{decimals}%}"


def value_range(values: np.ndarray, noun: str = "value") -> str:
    """``"values −0.41 to 2.87"``, or ``"every value 0"`` when all are equal.

    With NaN or infinite values: ``"3 non-finite values; finite values −0.41 to 2.87"``, or
    ``"every value non-finite (NaN or infinite)"``.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return f"every {noun} non-finite (NaN or infinite)"
    low, high = float(np.min(finite)), float(np.max(finite))
    if finite.size == values.size:
        if low == high:
            return f"every {noun} {number_text(low)}"
        return f"{noun}s {number_text(low)} to {number_text(high)}"
    bad = values.size - finite.size
    shown = number_text(low) if low == high else f"{number_text(low)} to {number_text(high)}"
    return f"{bad:,} non-finite {noun}{'' if bad == 1 else 's'}; finite {noun}s {shown}"


def varies(values: np.ndarray) -> bool:
    """Whether ``values`` has two different finite values (so a peak is worth naming)."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and float(np.min(finite)) != float(np.max(finite))


def peak(values: np.ndarray) -> tuple[int, ...]:
    """Where ``values``'s largest finite value is (the first such place in row-major order)."""
    flat = int(np.argmax(np.where(np.isfinite(values), values, -np.inf)))
    return tuple(int(i) for i in np.unravel_index(flat, values.shape))


def trough(values: np.ndarray) -> tuple[int, ...]:
    """Where ``values``'s smallest finite value is (the first such place in row-major order)."""
    flat = int(np.argmin(np.where(np.isfinite(values), values, np.inf)))
    return tuple(int(i) for i in np.unravel_index(flat, values.shape))


def _checked(values: np.ndarray, dims: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != dims or array.size == 0:
        raise ValueError(f"{what} must be a non-empty {dims}-D array, not shape {array.shape}")
    return array


def describe_map(values: np.ndarray, name: str, negative: bool = False) -> str:
    """One 2-D map, its size, its range and where it peaks.

    ``"conv1 channel 3: 24 × 24 map, values −0.41 to 2.87, strongest at row 12, column 7"``.

    Args:
        values: The map, rows × columns.
        name: What it is, e.g. ``"conv1 channel 3"``.
        negative: Also say where the map is most negative, when any finite value is below 0
            (a signed map: an attribution, a conv output).
    """
    array = _checked(values, 2, "a map")
    text = f"{name}: {shape_text(array.shape)} map, {value_range(array)}"
    if not varies(array):
        return text
    row, col = peak(array)
    text = f"{text}, strongest at row {row}, column {col}"
    low_row, low_col = trough(array)
    if negative and array[low_row, low_col] < 0:
        text += f", most negative at row {low_row}, column {low_col}"
    return text


def describe_maps(values: np.ndarray, name: str) -> str:
    """A layer's maps, channels × rows × columns, and the channel and place of its peak.

    ``"conv1: 6 maps of 24 × 24, values −0.41 to 2.87, strongest in channel 3 at row 12,
    column 7"``.
    """
    array = _checked(values, 3, "maps")
    count = array.shape[0]
    noun = "map" if count == 1 else "maps"
    text = f"{name}: {count} {noun} of {shape_text(array.shape[1:])}, {value_range(array)}"
    if not varies(array):
        return text
    channel, row, col = peak(array)
    return f"{text}, strongest in channel {channel} at row {row}, column {col}"


def describe_vector(values: np.ndarray, name: str) -> str:
    """A layer's flat output: ``"fc1: 120 values, −3.1 to 5.2, largest at unit 17"``."""
    array = _checked(values, 1, "a vector")
    text = f"{name}: {array.size} values, {value_range(array).removeprefix('values ')}"
    if not varies(array):
        return text
    return f"{text}, largest at unit {peak(array)[0]}"


def describe_signal(values: np.ndarray, name: str, positions: np.ndarray | None = None) -> str:
    """A 1-D signal as a line chart draws it: ``"same: 10 values, 0 to 1, largest at 5"``.

    Args:
        values: The signal's values.
        name: What it is, e.g. ``"np.convolve full"``.
        positions: Where each value sits on the chart's x axis (default ``0, 1, …``); the
            peak is named by its position (``−1``, ``2.5``), as the chart's axis reads.
    """
    array = _checked(values, 1, "a signal")
    where = np.arange(array.size) if positions is None else np.asarray(positions)
    if where.shape != array.shape:
        raise ValueError(f"{where.size} positions for {array.size} values")
    text = f"{name}: {array.size} values, {value_range(array).removeprefix('values ')}"
    if not varies(array):
        return text
    position = f"{float(where[peak(array)[0]]):g}".replace("-", MINUS)
    return f"{text}, largest at position {position}"


def describe_signals(
    signals: Mapping[str, np.ndarray], positions: Mapping[str, np.ndarray] | None = None
) -> str:
    """Every line of a chart, one :func:`describe_signal` each, joined by ``"; "``."""
    where = positions or {}
    return "; ".join(
        describe_signal(values, name, where.get(name)) for name, values in signals.items()
    )


def describe_filters(weights: np.ndarray, name: str) -> str:
    """A conv layer's kernels, filters × input channels × rows × columns.

    ``"conv1: 6 filters of 1 × 5 × 5, weights −0.52 to 0.61, largest in filter 2 at row 1,
    column 3"`` (the largest weight, in input channel ``c`` when there are several).
    """
    array = _checked(weights, 4, "filters")
    count = array.shape[0]
    noun = "filter" if count == 1 else "filters"
    size = shape_text(array.shape[1:])
    text = f"{name}: {count} {noun} of {size}, {value_range(array, 'weight')}"
    if not varies(array):
        return text
    index, channel, row, col = peak(array)
    where = f"input channel {channel}, " if array.shape[1] > 1 else ""
    return f"{text}, largest in filter {index} at {where}row {row}, column {col}"


def describe_colours(palette: str, low: float, high: float, opacity: float | None = None) -> str:
    """What a heatmap's colours mean, and its opacity over a picture.

    ``"Colours: blue below 0, white at 0, red above (−0.3 to 0.3), over the input at 60%
    opacity"``.

    Args:
        palette: Plotly's name of the colour scale (:data:`PALETTE_WORDS`; another is
            described as running from its first colour to its last).
        low: The colour scale's lowest value.
        high: Its highest.
        opacity: The map's opacity over a picture, or None for a map on its own.
    """
    words = PALETTE_WORDS.get(palette, f"{palette}, from its first colour (lowest) to its last")
    text = f"Colours: {words} ({number_text(low)} to {number_text(high)})"
    if opacity is not None:
        text += f", over the input at {percent_text(opacity, 0)} opacity"
    return text


def describe_prediction(categories: Sequence[str], probs: np.ndarray) -> str:
    """The top class and the runner-up: ``"Prediction 7 (94.1%), next 1 (2.0%)"``."""
    array = _checked(probs, 1, "probabilities")
    if len(categories) != len(array):
        raise ValueError(f"{len(categories)} categories for {len(array)} probabilities")
    finite = np.isfinite(array)
    if not finite.any():
        return "No prediction: every probability is non-finite (NaN or infinite)"
    # A NaN or infinite probability (a diverged model) is no class's: rank the finite ones.
    order = [int(i) for i in np.argsort(-np.where(finite, array, -np.inf), kind="stable")]
    order = [i for i in order if finite[i]]
    best = int(order[0])
    text = f"Prediction {categories[best]} ({percent_text(float(array[best]))})"
    if len(order) > 1:
        second = int(order[1])
        text += f", next {categories[second]} ({percent_text(float(array[second]))})"
    return text


class CurvePoint(Protocol):
    """One point of the learning curves (:class:`explorer.models.live.Point` is one)."""

    @property
    def step(self) -> int:
        """Training steps taken."""
        ...

    @property
    def epoch(self) -> float:
        """Epochs taken (fractional)."""
        ...

    @property
    def train_loss(self) -> float:
        """Mean training loss since the previous point."""
        ...

    @property
    def val_loss(self) -> float:
        """Loss on the held-out digits."""
        ...

    @property
    def val_accuracy(self) -> float:
        """Accuracy on the held-out digits, 0…1."""
        ...


def _loss_text(value: float) -> str:
    return number_text(value) if np.isfinite(value) else "non-finite (NaN or infinite)"


def describe_curves(points: Sequence[CurvePoint]) -> str:
    """The learning curves' last point and their best held-out accuracy.

    ``"Held-out accuracy 97.1% after epoch 3 (step 750; train loss 0.12, held-out loss
    0.09); best 97.4% at step 700"``. A NaN or infinite loss (a run that diverged) is said
    in words; a NaN accuracy is left out of the best.
    """
    if not points:
        return "No learning curves yet: the first point comes after the first steps."
    last = points[-1]
    accuracy = percent_text(last.val_accuracy) if np.isfinite(last.val_accuracy) else "non-finite"
    text = (
        f"Held-out accuracy {accuracy} after epoch {round(last.epoch, 2):g} (step {last.step}; "
        f"train loss {_loss_text(last.train_loss)}, held-out loss {_loss_text(last.val_loss)})"
    )
    scores = np.array([p.val_accuracy for p in points], dtype=np.float64)
    if len(points) > 1 and np.isfinite(scores).any():
        best = peak(scores)[0]
        text += f"; best {percent_text(float(scores[best]))} at step {points[best].step}"
    return text


def describe_confusion(matrix: np.ndarray, names: Sequence[str]) -> str:
    """A confusion matrix (rows the true class, columns the predicted) in one line.

    ``"Confusion matrix: 4,712 of 5,000 right (94.2%); most confused: true 4 read as 9
    (23 times)"``. NaN or infinite cells are counted and left out.

    Raises:
        ValueError: The matrix is not square, or ``names`` does not name each row.
    """
    array = _checked(matrix, 2, "a confusion matrix")
    if array.shape[0] != array.shape[1] or len(names) != array.shape[0]:
        raise ValueError(
            f"a confusion matrix must be square with a name per row: shape {array.shape}, "
            f"{len(names)} names"
        )
    finite = np.isfinite(array)
    counts = np.where(finite, array, 0.0)
    right, total = float(np.trace(counts)), float(counts.sum())
    share = f" ({percent_text(right / total)})" if total > 0 else ""
    text = f"Confusion matrix: {right:,.0f} of {total:,.0f} right{share}"
    bad = int((~finite).sum())
    if bad:
        text += f", {bad:,} non-finite cell{'' if bad == 1 else 's'} left out"
    wrong = counts.copy()
    np.fill_diagonal(wrong, -np.inf)
    true, predicted = peak(wrong)
    if wrong[true, predicted] <= 0:
        return f"{text}; no mistakes"
    times = f"{wrong[true, predicted]:,.0f} time{'' if wrong[true, predicted] == 1 else 's'}"
    return f"{text}; most confused: true {names[true]} read as {names[predicted]} ({times})"
