"""Interactive plotly figures of a capture: feature maps, units, filters, softmax, numbers.

The plotly counterpart of :mod:`explorer.render` (same colour conventions: diverging
``RdBu_r`` centred on 0 where values can be negative, sequential ``viridis`` where they
cannot). Every function returns a ``plotly.graph_objects.Figure``; nothing here imports
Streamlit.

A layer's channels are drawn as **one** tiled heatmap (see :mod:`explorer.tiling`), which
keeps a 64-channel 112×112 layer fast to build. Heatmap cells cannot be selected in
plotly.js (the heatmap trace has no ``selectPoints``, so neither a click nor a box selects a
cell, and Streamlit's ``on_select`` returns no points: checked with Streamlit 1.67 in
Chromium), so :func:`feature_maps_figure` adds
an invisible ``Scattergl`` overlay with one marker per unit: it carries the hover and is
what a click selects. :func:`unit_from_selection` turns Streamlit's selection event back
into ``(channel, row, col)``.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from _plotly_utils.utils import is_homogeneous_array, is_skipped_key, to_typed_array_spec
from plotly.colors import get_colorscale

from explorer.capture import LayerOutput
from explorer.tiling import ColourScale, Tiling, colour_scale, tile_channels

DIVERGING_COLOURSCALE = "RdBu_r"
SEQUENTIAL_COLOURSCALE = "Viridis"
WINNER_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"
SELECTED_COLOUR = "#ff00ff"  # stands out on both RdBu and viridis
BOX_COLOUR = "#ff7f0e"
FONT = {"family": "Inter, 'Source Sans Pro', Arial, sans-serif", "size": 12}
MARGIN = {"l": 10, "r": 10, "t": 64, "b": 36}
HEATMAP_CURVE = 0
"""Trace index of the tiled heatmap in a :class:`MapFigure`."""
OVERLAY_CURVE = 1
"""Trace index of the clickable unit overlay in a :class:`MapFigure`."""

_ALWAYS_NON_NEGATIVE = {"relu", "softmax"}
_NON_NEGATIVE_IF_DATA_IS = {"pool", "flatten", "dropout", "concat", "activation"}
_VALUE_FORMAT = ".6~g"  # d3 format: enough digits to read a float32 value back
_COLOUR_BAR_PX = 110  # colour bar and its title, right of the plot
_TEMPLATE: dict[str, Any] = {"layout": {"font": {"family": FONT["family"]}}}
"""A one-line template instead of plotly's default (7 KB, deep-copied with every figure);
Streamlit's theme styles the charts on the client either way."""
VALIDATE_ENV = "EXPLORER_VALIDATE_FIGURES"
"""Set to ``1`` to have plotly validate every figure (the tests do); off, figures are built
from plain dicts without plotly's per-property validation (~2–3 ms a figure)."""


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


def layer_can_be_negative(kind: str, values: np.ndarray) -> bool:
    """Whether a layer of ``kind`` is drawn on a diverging scale.

    ReLU and softmax never are; pooling, flatten, dropout, concat and other activations
    follow their input, so they are diverging only when the data has a negative value;
    everything else (conv, norm, linear, add, mul, other) can be negative.
    """
    if kind in _ALWAYS_NON_NEGATIVE:
        return False
    if kind in _NON_NEGATIVE_IF_DATA_IS:
        finite = values[np.isfinite(values)]
        return bool(finite.size and finite.min() < 0)
    return True


def _shape_text(shape: Sequence[int]) -> str:
    return " × ".join(map(str, shape))


def _layer_title(layer: LayerOutput) -> str:
    return f"<b>{layer.name}</b> · {layer.kind} ({layer.op}) · shape {_shape_text(layer.shape)}"


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    """The layout every figure shares: colours, font, margins, title, no legend.

    No named template: copying one costs ~15 ms a figure, and Streamlit's theme restyles
    charts anyway.
    """
    return {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": FONT,
        "margin": MARGIN,
        "title": {
            "text": title,
            "x": 0.0,
            "xref": "paper",
            "xanchor": "left",
            "font": {"size": 14},
        },
        "height": int(height),
        "showlegend": False,
        "hoverlabel": {"font": {"family": FONT["family"], "size": 12}},
        "template": _TEMPLATE,
        **extra,
    }


def _image_axes(title: str = "") -> dict[str, Any]:
    """x and y axes for pixels: square, y downwards like an image, no grid."""
    x = {
        "title": {"text": title, "font": {"size": 11}},
        "showgrid": False,
        "zeroline": False,
        "showticklabels": False,
        "ticks": "",
        "constrain": "domain",
    }
    y = {
        "showgrid": False,
        "zeroline": False,
        "showticklabels": False,
        "ticks": "",
        "autorange": "reversed",
        "scaleanchor": "x",
        "scaleratio": 1,
        "constrain": "domain",
    }
    return {"xaxis": x, "yaxis": y}


@functools.cache
def colourscale(name: str) -> tuple[tuple[float, str], ...]:
    """A named plotly.py colour scale as explicit stops (plotly.js knows neither ``RdBu_r``
    nor ``gray``, and unvalidated figures are sent as they are)."""
    return tuple((float(stop), str(colour)) for stop, colour in get_colorscale(name))


class PlainFigure(go.Figure):  # type: ignore[misc]  # plotly has no type stubs
    """A figure that already is the dict Streamlit sends, with plotly.py's object model skipped.

    ``st.plotly_chart`` calls ``to_dict()`` and serialises the result; for a ``go.Figure``
    built from our dicts that means building plotly.py's object tree and deep-copying it back
    (~a third of the Draw page's server time per stroke). This figure's ``to_dict()`` is the
    dict itself (arrays as base64 typed arrays, as plotly.py makes them). Anything else
    (``.data``, ``.layout``, ``update_layout`` …) builds the full figure first, on first use.
    """

    def __init__(self, traces: list[dict[str, Any]], layout: dict[str, Any]) -> None:
        self._plain_source = (traces, layout)  # super().__init__ runs only when needed
        self._plain_spec = _typed_arrays({"data": traces, "layout": layout})

    def to_dict(self) -> dict[str, Any]:
        """The figure as the dict Streamlit serialises (not a copy: do not mutate it)."""
        if "_data" in self.__dict__:  # materialised: it may have been changed since
            built: dict[str, Any] = super().to_dict()
            return built
        spec: dict[str, Any] = self._plain_spec
        return spec

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # plotly's __reduce__ would write into the shared spec and rebuild with one argument.
        if "_data" in self.__dict__:
            return go.Figure, (self.to_dict(),)
        return PlainFigure, self._plain_source

    def __getattr__(self, name: str) -> Any:
        # Reached when a go.Figure attribute is missing: build the real figure once.
        if name.startswith("_plain") or "_data" in self.__dict__:
            raise AttributeError(name)
        traces, layout = self._plain_source
        go.Figure.__init__(self, data=traces, layout=layout)
        return getattr(self, name)


def _typed_arrays(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with numeric arrays as plotly's base64 typed arrays (as
    ``go.Figure.to_dict`` makes them), leaving ``value`` itself untouched. Like plotly's
    ``convert_to_base64``, the values of its skipped keys (``geojson``, ``range`` …) stay as
    they are, nested ones included."""
    if key and is_skipped_key(key):
        return value
    if isinstance(value, dict):
        return {k: _typed_arrays(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed_arrays(v) for v in value]
    if key and is_homogeneous_array(value):
        return to_typed_array_spec(value)
    return value


def make_figure(traces: Sequence[Any], layout: dict[str, Any]) -> go.Figure:
    """A figure from trace dicts and a layout dict, validated only under ``VALIDATE_ENV=1``.

    Every figure of the app is built from plain dicts with explicit colour scales, so the
    JSON sent is the same either way (tests/test_figures_unvalidated.py); the tests validate
    all of them. Unvalidated, it is a :class:`PlainFigure`.
    """
    if os.environ.get(VALIDATE_ENV, "") == "1":
        return go.Figure(data=list(traces), layout=layout)
    return PlainFigure(list(traces), layout)


def _colours(scale: ColourScale) -> dict[str, Any]:
    if scale.diverging:
        return {
            "colorscale": colourscale(DIVERGING_COLOURSCALE),
            "zmin": scale.vmin,
            "zmax": scale.vmax,
            "zmid": 0.0,
        }
    return {
        "colorscale": colourscale(SEQUENTIAL_COLOURSCALE),
        "zmin": scale.vmin,
        "zmax": scale.vmax,
    }


def _colour_bar(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "side": "right", "font": {"size": 11}},
        "thickness": 12,
        "outlinewidth": 0,
        **extra,
    }


def _normalise_per_map(maps: np.ndarray, diverging: bool) -> np.ndarray:
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
        "hovertemplate": _unit_hover(hover_title),
        "showlegend": False,
    }


def _unit_hover(hover_title: str) -> str:
    return (
        f"{hover_title}<br>channel %{{customdata[0]}} · row %{{customdata[1]}} · "
        f"col %{{customdata[2]}}<br>value <b>%{{customdata[3]:{_VALUE_FORMAT}}}</b>"
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
    count, h, w = shown.shape
    tiling = tile_channels(shown, cols=cols)
    diverging = layer_can_be_negative(layer.kind, values)
    if scale == "layer":
        layer_scale = colour_scale(shown, diverging)
        z = tiling.image
        bar = _colour_bar(f"activation ({layer_scale.label})")
    else:
        z = tile_channels(_normalise_per_map(shown, diverging), cols=tiling.cols).image
        if diverging:
            layer_scale = ColourScale(True, -1.0, 1.0)
            text, ticks = "each map's own scale: −max|v| … 0 … +max|v|", ["−max|v|", "0", "+max|v|"]
            tickvals = [-1.0, 0.0, 1.0]
        else:
            layer_scale = ColourScale(False, 0.0, 1.0)
            text, ticks, tickvals = "each map's own scale: min … max", ["min", "max"], [0.0, 1.0]
        bar = _colour_bar(text, tickvals=tickvals, ticktext=ticks)
    heatmap: dict[str, Any] = {
        "type": "heatmap",
        "z": z,
        "hoverongaps": False,
        "colorbar": bar,
        "name": layer.name,
        **_colours(layer_scale),
    }
    hover_title = f"<b>{layer.name}</b>"
    if clickable:
        heatmap["hoverinfo"] = "skip"
    else:
        # The exact values, whatever the colour scale: (channel, row, col, value) per cell.
        heatmap["customdata"] = _cell_customdata(tiling, shown)
        heatmap["hovertemplate"] = _unit_hover(hover_title)
    title = _layer_title(layer)
    if len(values) > count:
        title += f" · first {count} of {len(values)} channels"
    axis_title = f"{count} channels, {tiling.cols} per row, each {h}×{w}"
    height = tiling.rows * tile_px + MARGIN["t"] + MARGIN["b"]
    # The natural width for square pixels (Streamlit's default width="stretch" overrides it).
    width = tiling.cols * tile_px * (w + tiling.gap) / (h + tiling.gap) + _COLOUR_BAR_PX
    layout = _layout(title, max(height, 220), **_image_axes(axis_title))
    layout["width"] = int(min(max(width + MARGIN["l"] + MARGIN["r"], 420), 1400))
    traces = [heatmap]
    if clickable:
        traces.append(_unit_overlay(shown, tiling, hover_title, tile_px / (h + tiling.gap)))
    if channel_labels and 1 < count <= 64:
        traces.append(channel_label_trace(tiling, range(count)))  # after the overlay's index
    figure = make_figure(traces, layout)
    return MapFigure(figure=figure, tiling=tiling, scale=layer_scale, channels=count)


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


def _get(obj: object, key: str) -> Any:
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
    curve = _get(point, "curve_number")
    if curve is not None and curve != OVERLAY_CURVE:
        return None
    numbers = _as_numbers(_get(point, "customdata"))
    if numbers is not None and len(numbers) >= 3 and all(np.isfinite(numbers[:3])):
        return _valid_unit(tiling, *(round(v) for v in numbers[:3]))
    x, y = _get(point, "x"), _get(point, "y")
    if isinstance(x, int | float) and isinstance(y, int | float):
        return tiling.locate(round(y), round(x))
    index = _get(point, "point_index")
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
    points = _get(_get(event, "selection"), "points")
    if not isinstance(points, Sequence):
        return None
    for point in points:
        unit = _unit_from_point(point, tiling)
        if unit is not None:
            return unit
    return None


def _unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels with duplicates suffixed by their index (a category axis merges equal names)."""
    counts = Counter(labels)
    return [f"{label} ({i})" if counts[label] > 1 else str(label) for i, label in enumerate(labels)]


def vector_figure(
    layer: LayerOutput, categories: Sequence[str] | None = None, per_row: int = 60
) -> go.Figure:
    """A flat layer (FC, flatten, logits) as a strip of units, wrapped ``per_row`` to a row.

    Hover shows the unit's index, its category (when ``categories`` has one per unit) and
    its exact value. Diverging around 0 unless the layer cannot be negative.
    """
    flat = layer.numpy().reshape(-1)
    count = len(flat)
    cols = max(1, min(count, per_row))
    rows = -(-count // cols)
    z = np.full(rows * cols, np.nan, dtype=np.float32)
    z[:count] = flat
    index = np.full(rows * cols, -1, dtype=np.int32)
    index[:count] = np.arange(count)
    scale = colour_scale(flat, layer_can_be_negative(layer.kind, flat))
    labelled = categories is not None and len(categories) == count
    hover = f"<b>{layer.name}</b><br>unit %{{customdata}}"
    extra: dict[str, Any] = {}
    if labelled:
        names = np.full(rows * cols, "", dtype=object)
        names[:count] = [str(c) for c in categories or ()]
        extra["text"] = names.reshape(rows, cols).tolist()
        hover += " · %{text}"
    heatmap = dict(
        type="heatmap",
        z=z.reshape(rows, cols),
        customdata=index.reshape(rows, cols),
        hoverongaps=False,
        hovertemplate=hover + f"<br>value <b>%{{z:{_VALUE_FORMAT}}}</b><extra></extra>",
        colorbar=_colour_bar("activation"),
        xgap=1,
        ygap=1,
        **_colours(scale),
        **extra,
    )
    cell_px = int(max(9, min(48, 520 // cols)))
    wrapped = f", {cols} per row" if rows > 1 else ""
    axes = _image_axes(f"{count} units{wrapped} · colour: {scale.label}")
    if labelled and rows == 1:
        axes["xaxis"].update(
            showticklabels=True,
            tickmode="array",
            tickvals=list(range(count)),
            ticktext=[str(c) for c in categories or ()],
            tickangle=-45 if count > 12 else 0,
        )
    height = rows * cell_px + MARGIN["t"] + MARGIN["b"] + (40 if labelled and rows == 1 else 0)
    layout = _layout(_layer_title(layer), max(height, 150), **axes)
    return make_figure([heatmap], layout)


def _weights(weight: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    """A float32 host copy of a tensor (a parameter too) or array."""
    if isinstance(weight, torch.Tensor):
        return weight.detach().to("cpu", torch.float32).numpy().copy()
    return np.asarray(weight, dtype=np.float32)


def filters_figure(
    weight: torch.Tensor | np.ndarray,
    name: str,
    max_filters: int = 64,
    max_inputs: int = 16,
    tile_px: int = 36,
) -> go.Figure:
    """A conv layer's kernels ``(out, in, kh, kw)``: a row per filter, a column per input channel.

    One tiled heatmap on a diverging scale symmetric around 0; hover shows filter, input
    channel, kernel row and column and the exact weight.
    """
    w = _weights(weight)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights (out, in, kh, kw), got shape {w.shape}")
    out_ch, in_ch, kh, kw = w.shape
    shown = w[:max_filters, :max_inputs]
    filters, inputs = shown.shape[:2]
    tiling = tile_channels(shown.reshape(-1, kh, kw), cols=inputs)
    scale = colour_scale(tiling.image, True)
    customdata = np.full((*tiling.image.shape, 5), np.nan, dtype=np.float32)
    rows, cols = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    for f in range(filters):
        for c in range(inputs):
            y, x = tiling.origin(f * inputs + c)
            cell = customdata[y : y + kh, x : x + kw]
            cell[..., 0], cell[..., 1], cell[..., 2], cell[..., 3] = f, c, rows, cols
            cell[..., 4] = shown[f, c]
    heatmap = dict(
        type="heatmap",
        z=tiling.image,
        customdata=customdata,
        hoverongaps=False,
        hovertemplate=(
            f"<b>{name}</b><br>filter %{{customdata[0]}} · input channel %{{customdata[1]}}"
            f"<br>row %{{customdata[2]}} · col %{{customdata[3]}}"
            f"<br>weight <b>%{{customdata[4]:{_VALUE_FORMAT}}}</b><extra></extra>"
        ),
        colorbar=_colour_bar(f"weight ({scale.label})"),
        **_colours(scale),
    )
    title = f"<b>{name}</b> · filters · shape {_shape_text(w.shape)}"
    notes = []
    if out_ch > filters:
        notes.append(f"first {filters} of {out_ch} filters")
    if in_ch > inputs:
        notes.append(f"first {inputs} of {in_ch} input channels")
    if notes:
        title += " · " + ", ".join(notes)
    axis_title = f"columns: input channels · rows: filters · each kernel {kh}×{kw}"
    height = filters * max(tile_px, 4 * kh) + MARGIN["t"] + MARGIN["b"]
    layout = _layout(title, min(max(height, 220), 2400), **_image_axes(axis_title))
    return make_figure([heatmap], layout)


def rgb_filters_figure(
    weight: torch.Tensor | np.ndarray, name: str = "filters", max_filters: int = 64
) -> go.Figure:
    """First-layer kernels ``(out, 3, kh, kw)`` as small RGB images.

    All filters share one normalisation: the layer's minimum weight is black (0) and its
    maximum white (255), so colours compare across filters. Hover shows filter, row, col
    and the three exact weights.
    """
    w = _weights(weight)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected RGB conv weights (out, 3, kh, kw), got shape {w.shape}")
    shown = w[:max_filters]
    count, _, kh, kw = shown.shape
    lo, hi = float(shown.min()), float(shown.max())
    norm = (shown - lo) / (hi - lo if hi > lo else 1.0)
    planes = [tile_channels(norm[:, c]) for c in range(3)]
    tiling = planes[0]
    rgb = np.stack([p.image for p in planes], axis=-1)
    gutter = np.isnan(rgb[..., 0])
    image = np.rint(np.nan_to_num(rgb, nan=1.0) * 255).astype(np.uint8)
    hover = np.full(gutter.shape, "", dtype=object)
    for f in range(count):
        y, x = tiling.origin(f)
        for r in range(kh):
            for c in range(kw):
                red, green, blue = shown[f, :, r, c]
                hover[y + r, x + c] = (
                    f"filter {f} · row {r} · col {c}<br>R {red:.6g} · G {green:.6g} · B {blue:.6g}"
                )
    trace = dict(
        type="image",
        z=image,
        hovertext=hover.tolist(),
        hovertemplate=f"<b>{name}</b><br>%{{hovertext}}<extra></extra>",
    )
    title = f"<b>{name}</b> · RGB filters · shape {_shape_text(w.shape)}"
    if len(w) > count:
        title += f" · first {count} of {len(w)}"
    axis_title = f"{count} filters, {tiling.cols} per row · black = {lo:.3g}, white = {hi:.3g}"
    height = tiling.rows * 60 + MARGIN["t"] + MARGIN["b"]
    layout = _layout(title, max(height, 220), **_image_axes(axis_title))
    traces: list[Any] = [trace]
    if count <= 64:
        traces.append(channel_label_trace(tiling, range(count)))
    return make_figure(traces, layout)


def softmax_figure(
    categories: Sequence[str],
    probs: np.ndarray | torch.Tensor,
    top: int | None = None,
) -> go.Figure:
    """Softmax probabilities as bars, the winner in a distinct colour.

    Args:
        categories: One label per class (digits ``"0"``…``"9"`` stay categories).
        probs: One probability per class.
        top: Show only the ``top`` most probable classes, best first; ``None`` shows every
            class in its own order.
    """
    p = _weights(probs).astype(np.float64).reshape(-1)
    if len(p) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(p)} probabilities")
    labels = _unique_labels([str(c) for c in categories])
    winner = int(np.argmax(p))
    order = list(range(len(p))) if top is None else [int(i) for i in np.argsort(-p)[:top]]
    colours = [WINNER_COLOUR if i == winner else OTHER_COLOUR for i in order]
    bars = dict(
        type="bar",
        x=[labels[i] for i in order],
        y=p[order],
        marker={"color": colours},
        texttemplate="%{y:.1%}",
        textposition="outside",
        textfont={"size": 10},
        cliponaxis=False,
        hovertemplate="<b>%{x}</b><br>probability %{y:.2%}<extra></extra>",
    )
    title = f"<b>softmax</b> · prediction <b>{labels[winner]}</b> ({p[winner]:.1%})"
    if top is not None and top < len(p):
        title += f" · top {len(order)} of {len(p)} classes"
    layout = _layout(
        title,
        320 if len(order) <= 20 else 420,
        xaxis={
            "type": "category",
            "tickmode": "linear",
            "tickangle": 0 if len(order) <= 12 else -45,
            "title": {"text": "class", "font": {"size": 11}},
        },
        yaxis={"range": [0, 1], "tickformat": ".0%", "title": {"text": "probability"}},
        bargap=0.25,
    )
    return make_figure([bars], layout)


def top_classes_figure(
    categories: Sequence[str], probs: np.ndarray | torch.Tensor, k: int = 5
) -> go.Figure:
    """The ``k`` most probable classes as horizontal bars, best on top (long names stay readable).

    Args:
        categories: One label per class (e.g. ImageNet's 1,000 names).
        probs: One probability per class.
        k: How many classes to show.
    """
    p = _weights(probs).astype(np.float64).reshape(-1)
    if len(p) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(p)} probabilities")
    labels = _unique_labels([str(c) for c in categories])
    order = [int(i) for i in np.argsort(-p, kind="stable")[: max(1, k)]]
    bars = dict(
        type="bar",
        y=[labels[i] for i in order],
        x=p[order],
        orientation="h",
        marker={"color": [WINNER_COLOUR] + [OTHER_COLOUR] * (len(order) - 1)},
        texttemplate="%{x:.1%}",
        textposition="outside",
        cliponaxis=False,
        hovertemplate="<b>%{y}</b><br>probability %{x:.2%}<extra></extra>",
    )
    layout = _layout(
        f"<b>top {len(order)}</b> of {len(p)} classes",
        70 + 34 * len(order) + MARGIN["b"],
        xaxis={
            "range": [0, 1.15],
            "tickvals": [0, 0.25, 0.5, 0.75, 1.0],
            "tickformat": ".0%",
            "title": {"text": "probability"},
        },
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
        bargap=0.3,
    )
    return make_figure([bars], layout)


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
    layout = _layout(f"{title} · {h} × {w}", height, **_image_axes())
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
    array = _weights(values).astype(np.float64)
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
            f"row %{{y}} · col %{{x}}<br>value <b>%{{z:{_VALUE_FORMAT}}}</b><extra></extra>"
        ),
        showscale=False,
        xgap=1,
        ygap=1,
        **_colours(scale),
    )
    height = rows * cell_px + MARGIN["t"] + MARGIN["b"]
    layout = _layout(f"{title} · {rows} × {cols}", max(height, 160), **_image_axes())
    layout["title"]["font"] = {"size": 12}
    return make_figure([heatmap], layout)
