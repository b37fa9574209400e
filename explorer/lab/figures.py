"""Plotly figures of the Convolution lab: grids of numbers, highlighted patches, 1-D signals.

Same conventions as :mod:`explorer.figures`: pixels in gray, values that can be negative on
a diverging blue–white–red scale centred on 0, values that cannot on a sequential one; every
title carries the array's shape and every cell its exact value on hover. Small arrays
(up to :data:`MAX_WRITTEN` cells a side) have their numbers written in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.analysis.geometry import Box
from explorer.figures.colour import ColourScale, colour_scale
from explorer.figures.style import (
    BOX_COLOUR,
    MARGIN,
    SELECTED_COLOUR,
    TEXT_COLOUR,
    WINNER_COLOUR,
    base_layout,
    colour_bar,
    heatmap_colours,
    image_axes,
    make_figure,
    shape_text,
)

MAX_WRITTEN = 12  # beyond, numbers overlap in a half-width column at 1280 px
"""Arrays up to this many rows and columns get each number written in its cell."""
NUMBER_FORMAT = ".4g"
"""How numbers are written in cells (tables and sums use :data:`explorer.lab.maths.DECIMALS`)."""
PADDING_COLOUR = "#555555"
ROBUST_PERCENTILE = 99.5
ROBUST_FROM = 48
"""Maps with a side longer than this get a robust colour scale by default."""
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]

Kind = Literal["pixels", "signed", "nonnegative"]


@dataclass(frozen=True)
class Outline(Box):
    """A :class:`~explorer.analysis.geometry.Box` of cells to outline, with its style.

    Coordinates are the figure's own (see ``origin`` in :func:`grid_figure`).
    """

    colour: str = BOX_COLOUR
    dash: str = "solid"
    fill: bool = True


def cell_text(value: float) -> str:
    """A number as written in a cell (:data:`NUMBER_FORMAT`, never ``-0``)."""
    text = format(float(value), NUMBER_FORMAT)
    return "0" if text == "-0" else text


def _short(value: float) -> str:
    text = format(float(value), ".2g")
    return "0" if text == "-0" else text


def pad_text(pad: tuple[tuple[int, int], tuple[int, int]]) -> str:
    """``((1, 1), (1, 1))`` → ``"padded by 1 on each side"``; asymmetric pads in full."""
    (top, bottom), (left, right) = pad
    if top == bottom == left == right:
        return "no padding" if top == 0 else f"padded by {top} on each side"
    return f"padded top {top}, bottom {bottom}, left {left}, right {right}"


def scale_for(values: np.ndarray, kind: Kind, robust: bool = False) -> ColourScale:
    """The colour scale of ``kind``: pixels ``0…1`` (or wider), diverging or sequential.

    ``robust`` ends the scale at the :data:`ROBUST_PERCENTILE` th percentile (of ``|v|`` when
    diverging), so that a few strong responses do not wash out a big map; colours beyond
    it saturate, hover still shows the exact value.
    """
    finite = values[np.isfinite(values)]
    if kind == "pixels":
        lo = min(0.0, float(finite.min())) if finite.size else 0.0
        hi = max(1.0, float(finite.max())) if finite.size else 1.0
        return ColourScale(False, lo, hi)
    full = colour_scale(values, kind == "signed")
    if not robust or not finite.size:
        return full
    if full.diverging:
        bound = float(np.percentile(np.abs(finite), ROBUST_PERCENTILE)) or full.vmax
        return ColourScale(True, -bound, bound)
    top = float(np.percentile(finite, ROBUST_PERCENTILE))
    return ColourScale(False, full.vmin, top if top > full.vmin else full.vmax)


def _box_shape(box: Outline) -> dict[str, Any]:
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y",
        "x0": box.left - 0.5,
        "x1": box.right - 0.5,
        "y0": box.top - 0.5,
        "y1": box.bottom - 0.5,
        "line": {"color": box.colour, "width": 3, "dash": box.dash},
        "fillcolor": "rgba(255,127,14,0.15)" if box.fill else "rgba(0,0,0,0)",
    }


def grid_figure(
    values: np.ndarray,
    title: str,
    kind: Kind = "signed",
    scale: ColourScale | None = None,
    origin: tuple[int, int] = (0, 0),
    numbers: bool | None = None,
    boxes: Sequence[Outline] = (),
    height: int = 340,
    colour_title: str = "value",
    robust: bool | None = None,
    show_scale: bool = True,
) -> go.Figure:
    """A 2-D array as a heatmap, its shape in the title, exact values on hover.

    Args:
        values: ``(H, W)``.
        title: Figure title; `` · H × W`` is appended.
        kind: ``"pixels"`` (gray), ``"signed"`` (diverging around 0) or
            ``"nonnegative"`` (sequential).
        scale: A colour scale to share with another figure (``None``: from the data).
        origin: Coordinates of the top-left cell, e.g. ``(-1, -1)`` for an input padded by 1,
            so that hover and boxes speak in the input's rows and columns.
        numbers: Write each value in its cell (``None``: when at most
            :data:`MAX_WRITTEN` cells a side).
        boxes: Rectangles to outline.
        height: Figure height in pixels.
        colour_title: Title of the colour bar.
        robust: End the colour scale at a high percentile (see :func:`scale_for`);
            ``None``: for maps with a side over :data:`ROBUST_FROM`.
        show_scale: Draw the colour bar.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {array.shape}")
    rows, cols = array.shape
    clipped = robust if robust is not None else max(rows, cols) > ROBUST_FROM
    colours = scale or scale_for(array, kind, clipped)
    if scale is None and clipped and kind != "pixels":
        colour_title += f" (clipped at the {ROBUST_PERCENTILE:g}th pct)"
    if kind == "pixels":
        paint: dict[str, Any] = {"colorscale": "gray", "zmin": colours.vmin, "zmax": colours.vmax}
    else:
        paint = heatmap_colours(colours)
    write = numbers if numbers is not None else max(rows, cols) <= MAX_WRITTEN
    heatmap: dict[str, Any] = {
        "type": "heatmap",
        "z": array,
        "x": np.arange(cols) + origin[1],
        "y": np.arange(rows) + origin[0],
        "hovertemplate": "row %{y} · col %{x}<br>value <b>%{z:.6~g}</b><extra></extra>",
        "colorbar": colour_bar(colour_title),
        "showscale": show_scale,
        "xgap": 1 if write else 0,
        "ygap": 1 if write else 0,
        **paint,
    }
    if write:
        small = max(rows, cols) <= 9
        # Bigger grids get 2 significant digits so the numbers fit their cells; hover is exact.
        heatmap["text"] = [[cell_text(v) if small else _short(v) for v in row] for row in array]
        heatmap["texttemplate"] = "%{text}"
        heatmap["textfont"] = {"size": 12 if small else 9}
    layout = base_layout(f"{title} · {shape_text(array.shape)}", height, **image_axes())
    if write:
        # Row and column numbers help read the arithmetic off a small grid.
        for axis in ("xaxis", "yaxis"):
            layout[axis].update(
                showticklabels=True, tickfont={"size": 10, "color": TEXT_COLOUR}, dtick=1
            )
        layout["xaxis"]["side"] = "top"
        # The column numbers sit on top: the title goes to the very top so they never meet.
        layout["margin"] = {**layout["margin"], "t": layout["margin"]["t"] + 16}
        layout["title"].update(y=1.0, yref="container", yanchor="top", pad={"t": 6})
    layout["shapes"] = [_box_shape(box) for box in boxes]
    return make_figure([heatmap], layout)


def kernel_figure(kernel: np.ndarray, title: str = "kernel", height: int = 260) -> go.Figure:
    """A kernel with its numbers written in, diverging around 0."""
    return grid_figure(kernel, title, "signed", numbers=True, height=height, colour_title="weight")


def padded_input_figure(
    padded: np.ndarray,
    pad: tuple[tuple[int, int], tuple[int, int]],
    patch: Outline | None,
    title: str = "input (padded)",
    kind: Kind = "pixels",
    height: int = 380,
) -> go.Figure:
    """The padded input in the input's coordinates.

    The original input is outlined (dashed) and the patch under the kernel highlighted.
    """
    (top, bottom), (left, right) = pad
    rows, cols = padded.shape
    boxes: list[Outline] = []
    if top or bottom or left or right:
        boxes.append(
            Outline(0, 0, rows - top - bottom, cols - left - right, PADDING_COLOUR, "dash", False)
        )
    if patch is not None:
        boxes.append(patch)
    return grid_figure(
        padded, title, kind, origin=(-top, -left), boxes=boxes, height=height, colour_title="pixel"
    )


def output_figure(
    output: np.ndarray,
    selected: tuple[int, int] | None,
    title: str = "output (feature map)",
    kind: Kind = "signed",
    scale: ColourScale | None = None,
    height: int = 380,
) -> go.Figure:
    """A feature map with the selected output cell outlined."""
    boxes: list[Outline] = []
    if selected is not None:
        row, col = selected
        boxes.append(Outline(row, col, row + 1, col + 1, SELECTED_COLOUR, "solid", False))
    return grid_figure(output, title, kind, scale=scale, boxes=boxes, height=height)


def pool_input_figure(
    values: np.ndarray,
    window: Outline,
    winner: tuple[int, int] | None,
    title: str = "pooling input",
    scale: ColourScale | None = None,
    kind: Kind = "signed",
    height: int = 380,
) -> go.Figure:
    """The map being pooled, one window outlined and, for max pooling, its winner marked."""
    boxes: list[Outline] = [window]
    if winner is not None:
        boxes.append(
            Outline(winner[0], winner[1], winner[0] + 1, winner[1] + 1, WINNER_COLOUR, fill=False)
        )
    return grid_figure(values, title, kind, scale=scale, boxes=boxes, height=height)


def signal_figure(
    signal: tuple[np.ndarray, np.ndarray],
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    row_px: int = 130,
) -> go.Figure:
    """1-D results as small multiples, one row per ``name: (positions, values)``.

    The input ``signal`` is drawn in light gray behind each, on one shared x axis of signal
    positions.
    """
    names = list(series)
    figure = make_subplots(
        rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=names
    )
    sx, sy = (np.asarray(a, dtype=np.float64) for a in signal)
    for i, name in enumerate(names, start=1):
        x, y = (np.asarray(a, dtype=np.float64) for a in series[name])
        figure.add_trace(
            go.Scatter(
                x=sx,
                y=sy,
                mode="lines",
                line={"color": "#c8c8c8", "width": 2, "shape": "hvh"},
                hoverinfo="skip",
                name="signal",
            ),
            row=i,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers+text",
                text=[cell_text(v) for v in y] if len(y) <= 16 else None,
                textposition="top center",
                textfont={"size": 9, "color": TEXT_COLOUR},
                line={"color": SERIES_COLOURS[i % len(SERIES_COLOURS)]},
                marker={"size": 7},
                name=name,
                hovertemplate=(
                    f"<b>{name}</b><br>position %{{x}}<br>value %{{y:.4f}}<extra></extra>"
                ),
            ),
            row=i,
            col=1,
        )
    lo = float(min(sy.min(), *(np.min(v) for _, v in series.values())))
    hi = float(max(sy.max(), *(np.max(v) for _, v in series.values())))
    span = (hi - lo) or 1.0
    ink = {"color": TEXT_COLOUR}  # on the white card in either theme (figures.style)
    figure.update_yaxes(range=[lo - 0.15 * span, hi + 0.35 * span], nticks=3, tickfont=ink)
    figure.update_xaxes(dtick=1, showgrid=True, tickfont=ink)
    figure.update_xaxes(
        title={"text": "position in the signal", "font": {"size": 11, **ink}}, row=len(names)
    )
    figure.update_annotations(font={"size": 11, **ink}, x=0.0, xanchor="left")
    layout = base_layout(title, row_px * len(names) + MARGIN["t"] + MARGIN["b"] + 20)
    layout["margin"] = {**layout["margin"], "l": 40}
    figure.update_layout(layout)
    return figure
