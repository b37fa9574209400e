"""The Experiment page's view-model: the change down the network, differences, sweeps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.analysis.capture import CaptureResult, LayerOutput
from explorer.analysis.experiment import LayerChange, SweepPoint
from explorer.figures import style
from explorer.figures.maps import MapFigure, feature_maps_figure

L2_COLOUR = "#d62728"
COSINE_COLOUR = "#1f77b4"


def change_figure(changes: Sequence[LayerChange], height: int = 320) -> go.Figure:
    """Relative L2 change and cosine similarity of every shared layer, down the network."""
    names = [c.name for c in changes]
    relative = [None if math.isinf(c.relative_l2) else c.relative_l2 for c in changes]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": names,
            "y": relative,
            "name": "relative L2 change ‖b − a‖ / ‖a‖",
            "line": {"color": L2_COLOUR},
            "hovertemplate": "%{x}<br>relative L2 %{y:.4g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": names,
            "y": [c.cosine for c in changes],
            "name": "cosine similarity",
            "yaxis": "y2",
            "line": {"color": COSINE_COLOUR, "dash": "dot"},
            "hovertemplate": "%{x}<br>cosine %{y:.4f}<extra></extra>",
        },
    ]
    layout = style.base_layout("<b>What moved, layer by layer</b>", height)
    layout.update(
        showlegend=True,
        legend={"orientation": "h", "y": -0.35},
        xaxis={"type": "category", "tickangle": -45},
        yaxis={"title": {"text": "relative L2"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "cosine"},
            "overlaying": "y",
            "side": "right",
            "range": [-1.05, 1.05],
            "tickvals": [-1, -0.5, 0, 0.5, 1],
            "showgrid": False,
        },
    )
    return style.make_figure(traces, layout)


def difference_layer(first: LayerOutput, second: LayerOutput) -> LayerOutput:
    """``second − first`` as a layer (a conv-like kind: drawn diverging, centred on 0)."""
    return LayerOutput(
        name=f"{first.name} (b − a)",
        kind="conv",
        op="difference",
        module=None,
        tensor=second.tensor.float() - first.tensor.float(),
    )


def stage_figures(first: CaptureResult, second: CaptureResult, name: str) -> list[MapFigure]:
    """The layer in both passes (one colour scale) and their difference."""
    a, b = first[name], second[name]
    return [
        feature_maps_figure(layer, clickable=False, tile_px=70)
        for layer in (a, b, difference_layer(a, b))
    ]


def sweep_figure(points: Sequence[SweepPoint], axis: str, labels: Sequence[str]) -> go.Figure:
    """The predicted class's probability (labelled) and the original class's, per value."""
    x = [p.value for p in points]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers+text",
            "x": x,
            "y": [p.probability for p in points],
            "text": [labels[p.predicted] for p in points],
            "textposition": "top center",
            "name": "predicted class (its label) and its probability",
            "marker": {"size": 9, "color": "#2ca02c"},
            "customdata": list(range(len(points))),
            "hovertemplate": f"{axis} %{{x}}<br>predicted %{{text}} · p %{{y:.1%}}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": [p.original_probability for p in points],
            "name": "probability of the unchanged input's class",
            "line": {"dash": "dot", "color": "#7f7f7f"},
            "hoverinfo": "skip",
        },
    ]
    layout = style.base_layout(f"<b>Sweep</b> · {axis}: click a point to see that input", 340)
    layout.update(
        showlegend=True,
        legend={"orientation": "h", "y": -0.3},
        xaxis={"title": {"text": axis}},
        yaxis={"title": {"text": "probability"}, "range": [0, 1.1], "tickformat": ".0%"},
    )
    return style.make_figure(traces, layout)


def picked_point(event: object) -> int | None:
    """The sweep point a click picked (its index), if any."""
    from explorer.figures.selection import field

    points = field(field(event, "selection"), "points")
    if not isinstance(points, list | tuple) or not points:
        return None
    index = field(points[0], "point_index")
    return int(index) if isinstance(index, int) and field(points[0], "curve_number") == 0 else None


def pictures_side_by_side(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two pictures in one, a grey gutter between (for a single image element)."""
    gutter = np.full((first.shape[0], 2, *first.shape[2:]), 128, dtype=np.uint8)
    return np.concatenate([first, gutter, second], axis=1)


def stage_summaries(result: CaptureResult) -> list[dict[str, object]]:
    """Each layer's name, kind, shape and statistics: what two different models share."""
    rows: list[dict[str, object]] = []
    for layer in result.layers:
        stats = layer.stats()
        rows.append(
            {
                "layer": layer.name,
                "kind": layer.kind,
                "shape": "×".join(map(str, layer.shape)),
                "mean": round(stats["mean"], 4),
                "max": round(stats["max"], 4),
                "zeros": round(stats["zero_fraction"], 3),
            }
        )
    return rows
