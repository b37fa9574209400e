"""Feature-map figures: every channel of a layer as one tiled heatmap, the input, numbers.

A layer's channels are drawn as **one** tiled heatmap (see :mod:`explorer.figures.tiling`),
which keeps a 64-channel 112×112 layer fast to build. Heatmap cells cannot be selected in
plotly.js (the heatmap trace has no ``selectPoints``, so neither a click nor a box selects a
cell, and Streamlit's ``on_select`` returns no points: checked with Streamlit 1.67 in
Chromium), so :func:`feature_maps_figure` adds an invisible ``Scattergl`` overlay with one
marker per unit: it carries the hover and is what a click selects
(:func:`explorer.figures.selection.unit_from_selection` reads it back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.analysis.capture import LayerOutput
from explorer.figures.colour import ColourScale, colour_scale, colourscale, layer_can_be_negative
from explorer.figures.style import (
    BOX_COLOUR,
    MARGIN,
    SELECTED_COLOUR,
    VALUE_FORMAT,
    base_layout,
    colour_bar,
    heatmap_colours,
    host_array,
    image_axes,
    layer_title,
    make_figure,
)
from explorer.figures.tiling import Tiling, tile_channels

HEATMAP_CURVE = 0
"""Trace index of the tiled heatmap in a :class:`MapFigure`."""
OVERLAY_CURVE = 1
"""Trace index of the clickable unit overlay in a :class:`MapFigure`."""
_COLOUR_BAR_PX = 110  # colour bar and its title, right of the plot


@dataclass(frozen=True)
class MapFigure:
    """A feature-map figure and what a click on it means.

    Attributes:
        figure: Trace :data:`HEATMAP_CURVE` is the tiled heatmap; trace
            :data:`OVERLAY_CURVE`, when ``clickable``, the invisible unit overlay.
        tiling: Where each channel sits; ``tiling.image`` holds the exact values
            (whatever colour scale was chosen), so ``tiling.locate(y, x)`` and
            ``tiling.image[y, x]`` read a clicked pixel back.
        scale: The colour scale of the layer's values (``scale="layer"``), or of the
            normalised values ``-1…1`` / ``0…1`` (``scale="map"``).
        channels: How many channels are drawn (the first ``channels`` of the layer).
    """

    figure: go.Figure
    tiling: Tiling
    scale: ColourScale
    channels: int


def normalise_per_map(maps: np.ndarray, diverging: bool) -> np.ndarray:
    """Each channel of ``(C, H, W)`` scaled to ``-1…1`` by its max |v|, or ``0…1`` min–max."""
    flat = maps.reshape(len(maps), -1)
    if diverging:
        bound = np.abs(flat).max(axis=1)
        bound[bound == 0] = 1.0
        scaled: np.ndarray = (maps / bound[:, None, None]).astype(np.float32)
        return scaled
    lo = flat.min(axis=1)
    span = flat.max(axis=1) - lo
    span[span == 0] = 1.0
    stretched: np.ndarray = ((maps - lo[:, None, None]) / span[:, None, None]).astype(np.float32)
    return stretched


def _unit_overlay(
    maps: np.ndarray, tiling: Tiling, hover_title: str, pixel_px: float
) -> dict[str, Any]:
    """One invisible, selectable marker per unit, at its pixel centre in the tiled image.

    Points run channel by channel, then row by row, so point ``i`` is unit
    ``(i // (H * W), i // W % H, i % W)``; ``customdata`` is ``(channel, row, col, value)``.
    Returned as a trace dict: plotly deep-copies trace objects, and these arrays are big.
    """
    count, h, w = maps.shape
    origins = np.array([tiling.origin(c) for c in range(count)], dtype=np.int64)
    coord = np.uint16 if max(tiling.image.shape) <= np.iinfo(np.uint16).max else np.int32
    ys = np.empty(maps.shape, dtype=coord)
    xs = np.empty(maps.shape, dtype=coord)
    ys[...] = origins[:, 0, None, None] + np.arange(h)[None, :, None]
    xs[...] = origins[:, 1, None, None] + np.arange(w)[None, None, :]
    customdata = np.empty((*maps.shape, 4), dtype=np.float32)
    customdata[..., 0] = np.arange(count)[:, None, None]
    customdata[..., 1] = np.arange(h)[None, :, None]
    customdata[..., 2] = np.arange(w)[None, None, :]
    customdata[..., 3] = maps
    return {
        "type": "scattergl",
        "x": xs.reshape(-1),
        "y": ys.reshape(-1),
        "mode": "markers",
        "name": "units",
        "customdata": customdata.reshape(-1, 4),
        "marker": {
            "symbol": "square-open",
            "size": min(max(pixel_px, 6.0), 30.0) + 2.0,
            "color": SELECTED_COLOUR,
            "opacity": 0.0,
            "line": {"width": 2},
        },
        # Only the opacity: a selected colour would fill the open square in WebGL.
        "selected": {"marker": {"opacity": 1.0}},
        "unselected": {"marker": {"opacity": 0.0}},
        "hovertemplate": unit_hover(hover_title),
        "showlegend": False,
    }


def unit_hover(hover_title: str) -> str:
    """The hover of a unit marker: ``hover_title``, then its channel, row, column and value."""
    return (
        f"{hover_title}<br>channel %{{customdata[0]}} · row %{{customdata[1]}} · "
        f"col %{{customdata[2]}}<br>value <b>%{{customdata[3]:{VALUE_FORMAT}}}</b>"
        "<extra></extra>"
    )


def channel_label_trace(tiling: Tiling, labels: Sequence[int | str]) -> dict[str, Any]:
    """Each tile's channel number in its top-left corner, on a pale square, as ONE trace.

    One text trace instead of an annotation per tile: plotly validates and serialises 64
    annotations one by one (~17 ms a figure); a trace is one array. It skips hover, so it
    never takes a click or a hover from the maps underneath.
    """
    origins = np.array([tiling.origin(i) for i in range(len(labels))], dtype=np.float64)
    inset = max(tiling.tile) * 0.06  # about the same few screen pixels for any tile size
    return {
        "type": "scatter",
        "mode": "markers+text",
        "x": origins[:, 1] - 0.5 + inset,
        "y": origins[:, 0] - 0.5 + inset,
        "text": [str(label) for label in labels],
        "textposition": "middle center",
        "textfont": {"size": 9, "color": "#222"},
        "marker": {"symbol": "square", "size": 13, "color": "rgba(255,255,255,0.7)"},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def feature_maps_figure(
    layer: LayerOutput,
    scale: str = "layer",
    max_channels: int = 64,
    cols: int | None = None,
    tile_px: int = 90,
    clickable: bool = True,
    channel_labels: bool = True,
) -> MapFigure:
    """Every channel of a ``(C, H, W)`` layer as one tiled heatmap.

    Args:
        layer: A captured map layer.
        scale: ``"layer"``: one colour scale for the whole layer; ``"map"``: each channel
            normalised to its own range (diverging: by its max |v|; sequential: min–max).
            Hover always shows the exact value.
        max_channels: Draw only the first this many channels.
        cols: Tiles per row (``None``: close to square).
        tile_px: Height of one tile row in pixels, which sets the figure's height.
        clickable: Add the invisible unit overlay (hover and click-to-select). Without it
            the heatmap itself carries the hover.
        channel_labels: Write each channel's number in its tile's corner (up to 64 tiles).

    Returns:
        The figure with the tiling that maps a click back to ``(channel, row, col)``.

    Raises:
        ValueError: the layer is not ``(C, H, W)`` or ``scale`` is unknown.
    """
    if len(layer.shape) != 3:
        raise ValueError(f"{layer.name} is not a map layer: shape {layer.shape}")
    if scale not in ("layer", "map"):
        raise ValueError(f"scale must be 'layer' or 'map', got {scale!r}")
    values = layer.numpy()
    shown = values[:max_channels]
    count, h, _ = shown.shape
    tiling = tile_channels(shown, cols=cols)
    diverging = layer_can_be_negative(layer.kind, values)
    if scale == "layer":
        layer_scale = colour_scale(shown, diverging)
        z = tiling.image
        bar = colour_bar(f"activation ({layer_scale.label})")
    else:
        z = tile_channels(normalise_per_map(shown, diverging), cols=tiling.cols).image
        layer_scale, bar = _per_map_scale(diverging)
    heatmap: dict[str, Any] = {
        "type": "heatmap",
        "z": z,
        "hoverongaps": False,
        "colorbar": bar,
        "name": layer.name,
        **heatmap_colours(layer_scale),
    }
    hover_title = f"<b>{layer.name}</b>"
    if clickable:
        heatmap["hoverinfo"] = "skip"
    else:
        # The exact values, whatever the colour scale: (channel, row, col, value) per cell.
        heatmap["customdata"] = _cell_customdata(tiling, shown)
        heatmap["hovertemplate"] = unit_hover(hover_title)
    traces = [heatmap]
    if clickable:
        traces.append(_unit_overlay(shown, tiling, hover_title, tile_px / (h + tiling.gap)))
    if channel_labels and 1 < count <= 64:
        traces.append(channel_label_trace(tiling, range(count)))  # after the overlay's index
    figure = make_figure(traces, _maps_layout(layer, len(values), shown.shape, tiling, tile_px))
    return MapFigure(figure=figure, tiling=tiling, scale=layer_scale, channels=count)


def _per_map_scale(diverging: bool) -> tuple[ColourScale, dict[str, Any]]:
    """The colour scale and colour bar of maps each normalised to their own range."""
    if diverging:
        scale = ColourScale(True, -1.0, 1.0)
        text, ticks = "each map's own scale: −max|v| … 0 … +max|v|", ["−max|v|", "0", "+max|v|"]
        tickvals = [-1.0, 0.0, 1.0]
    else:
        scale = ColourScale(False, 0.0, 1.0)
        text, ticks, tickvals = "each map's own scale: min … max", ["min", "max"], [0.0, 1.0]
    return scale, colour_bar(text, tickvals=tickvals, ticktext=ticks)


def _maps_layout(
    layer: LayerOutput,
    channels: int,
    shown: tuple[int, ...],
    tiling: Tiling,
    tile_px: int,
) -> dict[str, Any]:
    """The layout of :func:`feature_maps_figure`: ``shown`` of the ``channels`` maps tiled.

    Its height follows ``tile_px`` a tile row; its width makes the pixels square.
    """
    count, h, w = shown
    title = layer_title(layer)
    if channels > count:
        title += f" · first {count} of {channels} channels"
    axis_title = f"{count} channels, {tiling.cols} per row, each {h}×{w}"
    height = tiling.rows * tile_px + MARGIN["t"] + MARGIN["b"]
    # The natural width for square pixels (Streamlit's default width="stretch" overrides it).
    width = tiling.cols * tile_px * (w + tiling.gap) / (h + tiling.gap) + _COLOUR_BAR_PX
    layout = base_layout(title, max(height, 220), **image_axes(axis_title))
    layout["width"] = int(min(max(width + MARGIN["l"] + MARGIN["r"], 420), 1400))
    return layout


def _cell_customdata(tiling: Tiling, maps: np.ndarray) -> np.ndarray:
    """``(channel, row, col, value)`` for every pixel of the tiled image (NaN in gutters)."""
    data = np.full((*tiling.image.shape, 4), np.nan, dtype=np.float32)
    h, w = tiling.tile
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for channel in range(len(maps)):
        y, x = tiling.origin(channel)
        cell = data[y : y + h, x : x + w]
        cell[..., 0], cell[..., 1], cell[..., 2] = channel, rows, cols
        cell[..., 3] = maps[channel]
    return data


def input_figure(
    image: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    title: str = "what the network sees",
    height: int = 320,
) -> go.Figure:
    """The image the network receives: grayscale ``(H, W)`` in gray, or RGB ``(H, W, 3)``.

    Args:
        image: ``uint8`` pixels; floats in ``0…1`` are scaled to ``0…255``, other
            values are rounded and clipped.
        box: Optional ``(top, left, bottom, right)`` half-open pixel box (a receptive
            field), drawn on pixel edges.
        title: Figure title; the shape is appended.
        height: Figure height in pixels.
    """
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.dtype != np.uint8:
        floats = pixels.astype(np.float64)
        if pixels.dtype.kind == "f" and floats.size and floats.max() <= 1.0:
            floats = floats * 255
        pixels = np.clip(np.rint(floats), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        trace: Any = dict(
            type="heatmap",
            z=pixels,
            colorscale=colourscale("gray"),
            zmin=0,
            zmax=255,
            showscale=False,
            hovertemplate="row %{y} · col %{x}<br>value <b>%{z}</b><extra></extra>",
        )
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        trace = dict(
            type="image",
            z=pixels,
            hovertemplate="row %{y} · col %{x}<br>RGB <b>%{z}</b><extra></extra>",
        )
    else:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {pixels.shape}")
    h, w = pixels.shape[:2]
    layout = base_layout(f"{title} · {h} × {w}", height, **image_axes())
    if box is not None:
        layout["shapes"] = [box_shape(box, fill="rgba(255,127,14,0.12)")]
    return make_figure([trace], layout)


def box_shape(
    box: tuple[int, int, int, int], width: int = 2, fill: str | None = None
) -> dict[str, Any]:
    """A ``(top, left, bottom, right)`` half-open pixel box as a plotly rectangle on pixel edges."""
    top, left, bottom, right = box
    shape: dict[str, Any] = {
        "type": "rect",
        "xref": "x",
        "yref": "y",
        "x0": left - 0.5,
        "x1": right - 0.5,
        "y0": top - 0.5,
        "y1": bottom - 0.5,
        "line": {"color": BOX_COLOUR, "width": width},
    }
    if fill is not None:
        shape["fillcolor"] = fill
    return shape


def numbers_figure(
    values: np.ndarray | torch.Tensor,
    title: str,
    diverging: bool = True,
    fmt: str = ".2f",
    cell_px: int = 44,
) -> go.Figure:
    """A small 2-D array (patch, kernel, products) as a heatmap with each number written in.

    Args:
        values: A 2-D array (a 1-D one is shown as a single row).
        title: Figure title; the shape is appended.
        diverging: Blue–white–red symmetric around 0, else sequential viridis.
        fmt: Python format spec of each number (``".2f"``).
        cell_px: Size of one square cell in pixels.
    """
    array = host_array(values).astype(np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {array.shape}")
    rows, cols = array.shape
    text = [[format(v, fmt) for v in row] for row in array]
    scale = colour_scale(array, diverging)
    heatmap = dict(
        type="heatmap",
        z=array,
        text=text,
        texttemplate="%{text}",
        # No textfont colour: plotly.js picks black or white per cell for contrast.
        textfont={"size": 11 if cols <= 7 else 9},
        hovertemplate=(
            f"row %{{y}} · col %{{x}}<br>value <b>%{{z:{VALUE_FORMAT}}}</b><extra></extra>"
        ),
        showscale=False,
        xgap=1,
        ygap=1,
        **heatmap_colours(scale),
    )
    height = rows * cell_px + MARGIN["t"] + MARGIN["b"]
    layout = base_layout(f"{title} · {rows} × {cols}", max(height, 160), **image_axes())
    layout["title"]["font"] = {"size": 12}
    return make_figure([heatmap], layout)
