"""Figures of the layer browser: a page of a layer's channels, and one channel over the input.

Big layers (64 channels of 112×112 is 800,000 values) are too heavy to send as heatmap
numbers, so :func:`channel_grid_figure` sends the tiled channels as **one PNG** coloured
with the same colour scale a heatmap would use, plus one invisible marker per tile that
carries the channel's statistics on hover and makes a click pick the channel. The exact
values of a channel are in :func:`channel_figure`, which draws it large, optionally over
the input image, with one selectable marker per unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from explorer.analysis.capture import CaptureResult
from explorer.figures.colour import (
    ColourScale,
    colour_indices,
    colour_scale,
    layer_can_be_negative,
    palette,
    png_data_uri,
)
from explorer.figures.maps import box_shape, channel_label_trace, normalise_per_map, unit_hover
from explorer.figures.style import (
    SELECTED_COLOUR,
    VALUE_FORMAT,
    base_layout,
    colour_bar,
    heatmap_colours,
    image_axes,
    make_figure,
)
from explorer.figures.tiling import Tiling, tile_channels

SORTS = ("index", "mean", "max")
"""Channel orders of the grid: by number, or by mean or max activation (largest first)."""
GRID_CURVE = 1
"""Trace index of the per-tile markers in a :class:`ChannelGrid` figure."""
UNIT_CURVE = 2
"""Trace index of the per-unit markers in a :func:`channel_figure`."""
_PAGE_VALUES = 64 * 112 * 112  # values per grid page: all of ResNet conv1, PNG ~1-2 MB


def layer_label(result: CaptureResult, name: str) -> str:
    """How the layer browser lists a layer: ``"12 · layer1.0.relu · relu · 64×56×56"``."""
    layer = result[name]
    shape = "×".join(str(s) for s in layer.shape)
    return f"{result.names.index(name)} · {name} · {layer.kind} · {shape}"


def layer_of_label(label: str) -> str:
    """The layer name in a :func:`layer_label` (a bare name is its own)."""
    parts = [part.strip() for part in label.split(" · ")]
    return parts[1] if len(parts) > 1 else parts[0]


def channel_order(values: np.ndarray, sort: str = "index") -> np.ndarray:
    """Channel indices of a ``(C, H, W)`` array: in order, or by mean or max, largest first."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    if sort == "index":
        return np.arange(len(values))
    flat = values.reshape(len(values), -1)
    key = flat.mean(axis=1) if sort == "mean" else flat.max(axis=1)
    return np.argsort(-key, kind="stable")


def page_size(height: int, width: int, limit: int = 256) -> int:
    """Channels per grid page for maps of ``height × width`` (a square number, 4 … ``limit``)."""
    fits = max(_PAGE_VALUES // max(height * width, 1), 1)
    side = max(int(np.sqrt(min(fits, limit))), 2)
    return side * side


@dataclass(frozen=True)
class ChannelGrid:
    """A page of a layer's channels and which channel each tile shows.

    Attributes:
        figure: Trace 0 is the PNG of the tiles, trace :data:`GRID_CURVE` one marker per tile.
        channels: The channel in each tile, in tile order.
        tiling: Where each tile sits.
        scale: The colour scale of the tiles (per-map scales are shown as ``-1…1``/``0…1``).
    """

    figure: go.Figure
    channels: tuple[int, ...]
    tiling: Tiling
    scale: ColourScale


def channel_grid_figure(
    values: np.ndarray,
    name: str,
    kind: str,
    channels: Sequence[int],
    scale: str = "layer",
    tile_px: int = 72,
) -> ChannelGrid:
    """Some channels of a ``(C, H, W)`` layer as one tiled image with a hover per tile.

    Args:
        values: The layer's values on the host.
        name: Layer name (titles and hover).
        kind: Layer kind (decides diverging or sequential colours).
        channels: Which channels to draw, in this order.
        scale: ``"layer"``: one scale for the whole layer (all channels, not just this
            page); ``"map"``: each tile stretched to its own range.
        tile_px: Height of a tile row in pixels.
    """
    if values.ndim != 3:
        raise ValueError(f"{name} is not a map layer: shape {values.shape}")
    if scale not in ("layer", "map"):
        raise ValueError(f"scale must be 'layer' or 'map', got {scale!r}")
    chosen = np.asarray(channels, dtype=np.int64)
    if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= len(values):
        raise ValueError(f"channels must be in 0…{len(values) - 1}")
    shown = values[chosen]
    diverging = layer_can_be_negative(kind, values)
    if scale == "layer":
        colours = colour_scale(values, diverging)
        tiling = tile_channels(shown)
        bar_title = f"activation ({colours.label})"
    else:
        colours = ColourScale(diverging, -1.0 if diverging else 0.0, 1.0)
        tiling = tile_channels(normalise_per_map(shown, diverging))
        bar_title = "each map's own scale: " + ("−max|v| … +max|v|" if diverging else "min … max")
    indices = colour_indices(tiling.image, colours)
    image = dict(
        type="image", source=png_data_uri(indices, palette(colours.diverging)), hoverinfo="skip"
    )
    traces: list[Any] = [
        image,
        _tile_markers(shown, chosen, tiling, name),
        _colour_bar_trace(colours, bar_title),
    ]
    if len(shown) <= 64:
        traces.append(channel_label_trace(tiling, [int(c) for c in chosen]))
    figure = make_figure(traces, _grid_layout(name, len(values), shown.shape, tiling, tile_px))
    return ChannelGrid(figure, tuple(int(c) for c in chosen), tiling, colours)


def _tile_markers(
    shown: np.ndarray, chosen: np.ndarray, tiling: Tiling, name: str
) -> dict[str, Any]:
    """One invisible marker at the centre of each tile: the channel's statistics on hover.

    Its ``customdata`` is ``(channel, mean, max, min)``; a click selects the tile's marker.
    """
    count, h, w = shown.shape
    flat = shown.reshape(count, -1)
    centres = np.array([tiling.origin(i) for i in range(count)], dtype=np.float64)
    stats = np.stack([chosen, flat.mean(axis=1), flat.max(axis=1), flat.min(axis=1)], axis=1)
    return dict(
        type="scatter",
        x=centres[:, 1] + (w - 1) / 2,
        y=centres[:, 0] + (h - 1) / 2,
        mode="markers",
        marker={"symbol": "square-open", "size": 14, "opacity": 0.0, "color": SELECTED_COLOUR},
        selected={"marker": {"opacity": 1.0}},
        unselected={"marker": {"opacity": 0.0}},
        customdata=stats,
        hovertemplate=(
            f"<b>{name}</b> · channel %{{customdata[0]}}<br>"
            f"mean %{{customdata[1]:{VALUE_FORMAT}}} · max %{{customdata[2]:{VALUE_FORMAT}}}"
            f" · min %{{customdata[3]:{VALUE_FORMAT}}}<extra></extra>"
        ),
    )


def _colour_bar_trace(colours: ColourScale, title: str) -> dict[str, Any]:
    """A colour bar for the PNG: an empty marker trace that only carries the scale."""
    return dict(
        type="scatter",
        x=[None],
        y=[None],
        mode="markers",
        hoverinfo="skip",
        marker={
            "color": [colours.vmin],
            "cmin": colours.vmin,
            "cmax": colours.vmax,
            "colorscale": heatmap_colours(colours)["colorscale"],
            "showscale": True,
            "colorbar": colour_bar(title),
        },
    )


def _grid_layout(
    name: str, channels: int, shown: tuple[int, ...], tiling: Tiling, tile_px: int
) -> dict[str, Any]:
    """The layout of :func:`channel_grid_figure`: ``shown`` of the layer's ``channels`` tiled."""
    count, h, w = shown
    title = f"<b>{name}</b> · {channels} channels of {h}×{w}"
    if count < channels:
        title += f" · showing {count}"
    axis = f"{count} channels, {tiling.cols} per row · hover a tile for its statistics, click it"
    layout = base_layout(title, max(tiling.rows * tile_px + 100, 240), **image_axes(axis))
    layout["hoverdistance"] = -1  # the nearest tile centre answers anywhere in the tile
    layout["xaxis"]["range"] = [-0.5, tiling.image.shape[1] - 0.5]
    layout["yaxis"]["range"] = [tiling.image.shape[0] - 0.5, -0.5]
    return layout


def channel_figure(
    channel_values: np.ndarray,
    name: str,
    channel: int,
    kind: str,
    background: np.ndarray | None = None,
    opacity: float = 0.7,
    box: tuple[int, int, int, int] | None = None,
    height: int = 460,
) -> go.Figure:
    """One channel ``(H, W)`` large, in the input's pixel coordinates, over the input image.

    The map is stretched over the input (a unit of a stride-``s`` map covers ``s×s`` input
    pixels) so where it fires can be read off the picture; hover gives each unit's exact
    value and a click selects it.

    Args:
        channel_values: The channel's values.
        name: Layer name (titles and hover).
        channel: Its channel number (titles and hover).
        kind: Layer kind (diverging or sequential colours).
        background: The input as the network sees it, ``(H_in, W_in[, 3])`` ``uint8``; without
            it the map is drawn on its own grid.
        opacity: Of the map over the image (1: the map only).
        box: A receptive field ``(top, left, bottom, right)`` in input pixels to outline.
        height: Figure height in pixels.
    """
    values = np.asarray(channel_values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected one channel (H, W), got shape {values.shape}")
    h, w = values.shape
    in_h, in_w = (h, w) if background is None else background.shape[:2]
    grid = _UnitGrid(in_h / h, in_w / w)
    scale = colour_scale(values, layer_can_be_negative(kind, values))
    traces: list[Any] = []
    if background is not None:
        traces.append(dict(type="image", source=png_data_uri(background), hoverinfo="skip"))
    traces.append(
        dict(
            type="heatmap",
            z=values,
            x0=grid.x0,
            dx=grid.dx,
            y0=grid.y0,
            dy=grid.dy,
            opacity=float(opacity),
            hoverinfo="skip",
            colorbar=colour_bar(f"activation ({scale.label})"),
            **heatmap_colours(scale),
        )
    )
    while len(traces) < UNIT_CURVE:  # keep the unit markers at a fixed trace index
        traces.insert(0, dict(type="scatter", x=[None], y=[None], hoverinfo="skip", mode="markers"))
    traces.append(_unit_markers(values, channel, name, grid))
    where = "over the input" if background is not None else f"{h}×{w}"
    layout = base_layout(f"<b>{name}</b> · channel {channel} · {h}×{w} {where}", height)
    layout.update(
        image_axes(f"input pixels {in_h}×{in_w}; one unit = {grid.dy:g}×{grid.dx:g} pixels")
    )
    layout["xaxis"]["range"] = [-0.5, in_w - 0.5]
    layout["yaxis"]["range"] = [in_h - 0.5, -0.5]
    if box is not None:
        layout["shapes"] = [box_shape(box, width=3)]
    return make_figure(traces, layout)


@dataclass(frozen=True)
class _UnitGrid:
    """Where a map's units sit over the input: ``dy``×``dx`` input pixels a unit."""

    dy: float
    dx: float

    @property
    def y0(self) -> float:
        """The input row at the centre of the first unit row."""
        return (self.dy - 1) / 2

    @property
    def x0(self) -> float:
        """The input column at the centre of the first unit column."""
        return (self.dx - 1) / 2


def _unit_markers(values: np.ndarray, channel: int, name: str, grid: _UnitGrid) -> dict[str, Any]:
    """One invisible, selectable marker per unit of the channel, at its centre over the input.

    Its ``customdata`` is ``(channel, row, col, value)``, as the feature maps' overlay.
    """
    h, w = values.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    customdata = np.stack(
        [np.full(values.size, channel, np.float32), rows.ravel(), cols.ravel(), values.ravel()],
        axis=1,
    ).astype(np.float32)
    return {
        "type": "scattergl",
        "x": (grid.x0 + cols.ravel() * grid.dx).astype(np.float32),
        "y": (grid.y0 + rows.ravel() * grid.dy).astype(np.float32),
        "mode": "markers",
        "customdata": customdata,
        "marker": {
            "symbol": "square-open",
            "size": 8,
            "opacity": 0.0,
            "color": SELECTED_COLOUR,
            "line": {"width": 2},
        },
        "selected": {"marker": {"opacity": 1.0}},
        "unselected": {"marker": {"opacity": 0.0}},
        "hovertemplate": unit_hover(f"<b>{name}</b>"),
        "showlegend": False,
    }
