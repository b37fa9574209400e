"""Text alternatives: a map, a stack of maps, a filter bank or a prediction in one sentence.

A screen reader cannot read a heatmap; the pages print these sentences beneath the pictures
(and a figure can carry one as its accessible name). Each says the shape, the value range and
where the values peak, with rows and columns counted from 0 as the charts' hovers count them.
NaN and infinite values (a diverged model, a huge kernel) are counted and left out of the
range and the peak, so such a map is described, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MINUS = "\u2212"  # a real minus sign: screen readers say "minus", not "hyphen"


def number(value: float) -> str:
    """``value`` to three significant figures at most, with a real minus sign."""
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return text.replace("-", MINUS)


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
            return f"every {noun} {number(low)}"
        return f"{noun}s {number(low)} to {number(high)}"
    bad = values.size - finite.size
    shown = f"{number(low)}" if low == high else f"{number(low)} to {number(high)}"
    return f"{bad:,} non-finite {noun}{'' if bad == 1 else 's'}; finite {noun}s {shown}"


def varies(values: np.ndarray) -> bool:
    """Whether ``values`` has two different finite values (so a peak is worth naming)."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and float(np.min(finite)) != float(np.max(finite))


def peak(values: np.ndarray) -> tuple[int, ...]:
    """Where ``values``'s largest finite value is (the first such place in row-major order)."""
    flat = int(np.argmax(np.where(np.isfinite(values), values, -np.inf)))
    return tuple(int(i) for i in np.unravel_index(flat, values.shape))


def size_text(shape: Sequence[int]) -> str:
    """``(24, 24)`` → ``"24×24"``."""
    return "×".join(str(n) for n in shape)


def _checked(values: np.ndarray, dims: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != dims or array.size == 0:
        raise ValueError(f"{what} must be a non-empty {dims}-D array, not shape {array.shape}")
    return array


def describe_map(values: np.ndarray, name: str) -> str:
    """One 2-D map, its size, its range and where it peaks.

    ``"conv1 channel 3: 24×24 map, values −0.41 to 2.87, strongest at row 12, column 7"``.

    Args:
        values: The map, rows × columns.
        name: What it is, e.g. ``"conv1 channel 3"``.
    """
    array = _checked(values, 2, "a map")
    text = f"{name}: {size_text(array.shape)} map, {value_range(array)}"
    if not varies(array):
        return text
    row, col = peak(array)
    return f"{text}, strongest at row {row}, column {col}"


def describe_maps(values: np.ndarray, name: str) -> str:
    """A layer's maps, channels × rows × columns, and the channel and place of its peak.

    ``"conv1: 6 maps of 24×24, values −0.41 to 2.87, strongest in channel 3 at row 12,
    column 7"``.
    """
    array = _checked(values, 3, "maps")
    count = array.shape[0]
    noun = "map" if count == 1 else "maps"
    text = f"{name}: {count} {noun} of {size_text(array.shape[1:])}, {value_range(array)}"
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


def describe_filters(weights: np.ndarray, name: str) -> str:
    """A conv layer's kernels, filters × input channels × rows × columns.

    ``"conv1: 6 filters of 1×5×5, weights −0.52 to 0.61, largest in filter 2 at row 1,
    column 3"`` (the largest weight, in input channel ``c`` when there are several).
    """
    array = _checked(weights, 4, "filters")
    count = array.shape[0]
    noun = "filter" if count == 1 else "filters"
    text = f"{name}: {count} {noun} of {size_text(array.shape[1:])}, {value_range(array, 'weight')}"
    if not varies(array):
        return text
    index, channel, row, col = peak(array)
    where = f"input channel {channel}, " if array.shape[1] > 1 else ""
    return f"{text}, largest in filter {index} at {where}row {row}, column {col}"


def describe_prediction(categories: Sequence[str], probs: np.ndarray) -> str:
    """The top class and the runner-up: ``"Prediction 7 (94.1 %), next 1 (2.0 %)"``."""
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
    text = f"Prediction {categories[best]} ({array[best]:.1%})".replace("%", " %")
    if len(order) > 1:
        second = int(order[1])
        text += f", next {categories[second]} ({array[second]:.1%})".replace("%", " %")
    return text
