"""What a click on a figure picked: Streamlit's selection events back to channels and units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explorer.figures.channels import GRID_CURVE, UNIT_CURVE, ChannelGrid
from explorer.figures.maps import OVERLAY_CURVE
from explorer.figures.tiling import Tiling


def field(obj: object, key: str) -> Any:
    """``obj[key]`` for a mapping, else ``obj.key``; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    try:
        return getattr(obj, key, None)
    except Exception:  # a DeltaGenerator (on_select="ignore") raises its own error
        return None


def _as_numbers(customdata: object) -> list[float] | None:
    """Customdata as a list: plotly.js hands typed-array rows over as ``{"0": …, "1": …}``."""
    if isinstance(customdata, Mapping):
        try:
            return [float(customdata[str(i)]) for i in range(len(customdata))]
        except (KeyError, TypeError, ValueError):
            return None
    if isinstance(customdata, Sequence | np.ndarray) and not isinstance(customdata, str):
        try:
            return [float(v) for v in customdata]
        except (TypeError, ValueError):
            return None
    return None


def _valid_unit(tiling: Tiling, channel: int, row: int, col: int) -> tuple[int, int, int] | None:
    h, w = tiling.tile
    if not (0 <= row < h and 0 <= col < w and 0 <= channel < tiling.rows * tiling.cols):
        return None
    y, x = tiling.origin(channel)
    return tiling.locate(y + row, x + col)


def _unit_from_point(point: object, tiling: Tiling) -> tuple[int, int, int] | None:
    curve = field(point, "curve_number")
    if curve is not None and curve != OVERLAY_CURVE:
        return None
    numbers = _as_numbers(field(point, "customdata"))
    if numbers is not None and len(numbers) >= 3 and all(np.isfinite(numbers[:3])):
        return _valid_unit(tiling, *(round(v) for v in numbers[:3]))
    x, y = field(point, "x"), field(point, "y")
    if isinstance(x, int | float) and isinstance(y, int | float):
        return tiling.locate(round(y), round(x))
    index = field(point, "point_index")
    if isinstance(index, int) and curve == OVERLAY_CURVE:
        h, w = tiling.tile
        channel, rest = divmod(index, h * w)
        return _valid_unit(tiling, channel, *divmod(rest, w))
    return None


def unit_from_selection(
    event: Mapping[str, Any] | object, tiling: Tiling
) -> tuple[int, int, int] | None:
    """The ``(channel, row, col)`` a Streamlit selection event on a :class:`MapFigure` picked.

    Reads ``event["selection"]["points"]`` (a dict or Streamlit's ``PlotlyState``) and
    returns the first point of the unit overlay that maps to a unit, from its
    ``customdata``, else its ``x``/``y``, else its ``point_index``.

    Args:
        event: What ``st.plotly_chart(..., on_select="rerun")`` returned (or ``None``).
        tiling: ``MapFigure.tiling`` of the figure that was shown.

    Returns:
        ``(channel, row, col)``, or ``None`` when nothing (or nothing valid) is selected.
    """
    points = field(field(event, "selection"), "points")
    if not isinstance(points, Sequence):
        return None
    for point in points:
        unit = _unit_from_point(point, tiling)
        if unit is not None:
            return unit
    return None


def channel_from_selection(event: object, grid: ChannelGrid) -> int | None:
    """The channel a click on a :func:`channel_grid_figure` picked, or ``None``."""
    points = field(field(event, "selection"), "points")
    if not isinstance(points, Sequence):
        return None
    for point in points:
        if field(point, "curve_number") not in (None, GRID_CURVE):
            continue
        index = field(point, "point_index")
        if isinstance(index, int) and 0 <= index < len(grid.channels):
            return grid.channels[index]
    return None


def unit_from_channel_selection(event: object, shape: tuple[int, int]) -> tuple[int, int] | None:
    """The ``(row, col)`` of the unit a click on a :func:`channel_figure` picked, or ``None``."""
    points = field(field(event, "selection"), "points")
    if not isinstance(points, Sequence):
        return None
    h, w = shape
    for point in points:
        if field(point, "curve_number") not in (None, UNIT_CURVE):
            continue
        index = field(point, "point_index")
        if isinstance(index, int) and 0 <= index < h * w:
            return divmod(index, w)
    return None
