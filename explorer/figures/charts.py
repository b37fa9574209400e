"""Bar and strip charts: flat layers, filters, softmax, the top classes, weight histograms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.analysis.capture import LayerOutput
from explorer.figures import style
from explorer.figures.colour import colour_scale, layer_can_be_negative
from explorer.figures.maps import channel_label_trace
from explorer.figures.tiling import grid_shape, tile_channels


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
        hovertemplate=hover + f"<br>value <b>%{{z:{style.VALUE_FORMAT}}}</b><extra></extra>",
        colorbar=style.colour_bar("activation"),
        xgap=1,
        ygap=1,
        **style.heatmap_colours(scale),
        **extra,
    )
    cell_px = int(max(9, min(48, 520 // cols)))
    wrapped = f", {cols} per row" if rows > 1 else ""
    axes = style.image_axes(f"{count} units{wrapped} · colour: {scale.label}")
    if labelled and rows == 1:
        axes["xaxis"].update(
            showticklabels=True,
            tickmode="array",
            tickvals=list(range(count)),
            ticktext=[str(c) for c in categories or ()],
            tickangle=-45 if count > 12 else 0,
        )
    height = (
        rows * cell_px
        + style.MARGIN["t"]
        + style.MARGIN["b"]
        + (40 if labelled and rows == 1 else 0)
    )
    layout = style.base_layout(style.layer_title(layer), max(height, 150), **axes)
    return style.make_figure([heatmap], layout)


def filters_figure(
    weight: torch.Tensor | np.ndarray,
    name: str,
    max_filters: int = 64,
    max_inputs: int = 16,
    tile_px: int = 36,
) -> go.Figure:
    """A conv layer's kernels ``(out, in, kh, kw)``: a row per filter, a column per input channel.

    A layer with one input channel (a digit net's conv1) has one kernel per filter: those are
    laid out as a grid, several per row, not as a one-column strip. One tiled heatmap on a
    diverging scale symmetric around 0; hover shows filter, input channel, kernel row and
    column and the exact weight.
    """
    w = style.host_array(weight)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights (out, in, kh, kw), got shape {w.shape}")
    out_ch, in_ch, kh, kw = w.shape
    shown = w[:max_filters, :max_inputs]
    filters, inputs = shown.shape[:2]
    per_row = inputs if inputs > 1 else grid_shape(filters, aspect=1.5)[1]
    tiling = tile_channels(shown.reshape(-1, kh, kw), cols=per_row)
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
            f"<br>weight <b>%{{customdata[4]:{style.VALUE_FORMAT}}}</b><extra></extra>"
        ),
        colorbar=style.colour_bar(f"weight ({scale.label})"),
        **style.heatmap_colours(scale),
    )
    title = f"<b>{name}</b> · filters · shape {style.shape_text(w.shape)}"
    notes = []
    if out_ch > filters:
        notes.append(f"first {filters} of {out_ch} filters")
    if in_ch > inputs:
        notes.append(f"first {inputs} of {in_ch} input channels")
    if notes:
        title += " · " + ", ".join(notes)
    axis_title = (
        f"columns: input channels · rows: filters · each kernel {kh}×{kw}"
        if inputs > 1
        else f"{filters} filters, {tiling.cols} per row · each kernel {kh}×{kw}"
    )
    height = tiling.rows * max(tile_px, 4 * kh) + style.MARGIN["t"] + style.MARGIN["b"]
    layout = style.base_layout(title, min(max(height, 220), 2400), **style.image_axes(axis_title))
    return style.make_figure([heatmap], layout)


def rgb_filters_figure(
    weight: torch.Tensor | np.ndarray, name: str = "filters", max_filters: int = 64
) -> go.Figure:
    """First-layer kernels ``(out, 3, kh, kw)`` as small RGB images.

    All filters share one normalisation: the layer's minimum weight is black (0) and its
    maximum white (255), so colours compare across filters. Hover shows filter, row, col
    and the three exact weights.
    """
    w = style.host_array(weight)
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
    title = f"<b>{name}</b> · RGB filters · shape {style.shape_text(w.shape)}"
    if len(w) > count:
        title += f" · first {count} of {len(w)}"
    axis_title = f"{count} filters, {tiling.cols} per row · black = {lo:.3g}, white = {hi:.3g}"
    height = tiling.rows * 60 + style.MARGIN["t"] + style.MARGIN["b"]
    layout = style.base_layout(title, max(height, 220), **style.image_axes(axis_title))
    traces: list[Any] = [trace]
    if count <= 64:
        traces.append(channel_label_trace(tiling, range(count)))
    return style.make_figure(traces, layout)


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
    p = style.host_array(probs).astype(np.float64).reshape(-1)
    if len(p) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(p)} probabilities")
    labels = _unique_labels([str(c) for c in categories])
    winner = int(np.argmax(p))
    order = list(range(len(p))) if top is None else [int(i) for i in np.argsort(-p)[:top]]
    colours = [style.WINNER_COLOUR if i == winner else style.OTHER_COLOUR for i in order]
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
    layout = style.base_layout(
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
    return style.make_figure([bars], layout)


def top_classes_figure(
    categories: Sequence[str], probs: np.ndarray | torch.Tensor, k: int = 5
) -> go.Figure:
    """The ``k`` most probable classes as horizontal bars, best on top (long names stay readable).

    Args:
        categories: One label per class (e.g. ImageNet's 1,000 names).
        probs: One probability per class.
        k: How many classes to show.
    """
    p = style.host_array(probs).astype(np.float64).reshape(-1)
    if len(p) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(p)} probabilities")
    labels = _unique_labels([str(c) for c in categories])
    order = [int(i) for i in np.argsort(-p, kind="stable")[: max(1, k)]]
    bars = dict(
        type="bar",
        y=[labels[i] for i in order],
        x=p[order],
        orientation="h",
        marker={"color": [style.WINNER_COLOUR] + [style.OTHER_COLOUR] * (len(order) - 1)},
        texttemplate="%{x:.1%}",
        textposition="outside",
        cliponaxis=False,
        hovertemplate="<b>%{y}</b><br>probability %{x:.2%}<extra></extra>",
    )
    layout = style.base_layout(
        f"<b>top {len(order)}</b> of {len(p)} classes",
        70 + 34 * len(order) + style.MARGIN["b"],
        xaxis={
            "range": [0, 1.15],
            "tickvals": [0, 0.25, 0.5, 0.75, 1.0],
            "tickformat": ".0%",
            "title": {"text": "probability"},
        },
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
        bargap=0.3,
    )
    return style.make_figure([bars], layout)


def weight_histogram_figure(weight: np.ndarray, name: str, bins: int = 60) -> go.Figure:
    """A histogram of every weight of one layer, with its count, mean and std in the title."""
    values = np.asarray(weight, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{name} has no weights")
    counts, edges = np.histogram(values, bins=bins)
    bars = dict(
        type="bar",
        x=(edges[:-1] + edges[1:]) / 2,
        y=counts,
        width=np.diff(edges),
        marker={"color": "#4c78a8"},
        customdata=np.stack([edges[:-1], edges[1:]], axis=1),
        hovertemplate=(
            f"%{{customdata[0]:{style.VALUE_FORMAT}}} … %{{customdata[1]:{style.VALUE_FORMAT}}}"
            "<br><b>%{y}</b> weights<extra></extra>"
        ),
    )
    title = (
        f"<b>{name}</b> · {values.size:,} weights · mean {values.mean():.3g} · "
        f"std {values.std():.3g}"
    )
    layout = style.base_layout(
        title,
        300,
        xaxis={"title": {"text": "weight value"}, "zeroline": True},
        yaxis={"title": {"text": "count"}},
        bargap=0.0,
    )
    return style.make_figure([bars], layout)
