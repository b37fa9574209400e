"""The Experiment page's view-model: the two passes, what moved between them, the sweep.

The page caches the first pass (:func:`plain_capture`) and the sweep (:func:`sweep_points`)
for every session, keyed by the model's cache key, the input's sha256 and the settings that
define them; a click that changes only the experiment recomputes only the second pass
(:func:`perturbed_pass`, :func:`knockout_pass`) and what is drawn from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from torch import nn

from explorer.analysis.capture import CaptureResult, capture
from explorer.analysis.experiment import (
    SWEEPABLE,
    Knockout,
    LayerChange,
    Perturbation,
    SweepPoint,
    compare,
    knocked_out,
    perturb,
    sweep,
    to_input,
)
from explorer.figures import style
from explorer.figures.channels import ChannelGrid, channel_grid_figure, page_size
from explorer.figures.charts import softmax_figure
from explorer.models.zoo import ZOO, LoadedModel

L2_COLOUR = "#d62728"
COSINE_COLOUR = "#1f77b4"
MODES = ("Perturb the input", "Knock out channels", "Two digits", "Two models")
"""What the second pass changes."""
KNOCKOUT_MODES = {"zero": "output → 0", "mean": "output → its mean", "filter": "filter weights → 0"}
"""Knock-out modes (:class:`~explorer.analysis.experiment.Knockout`) and how the page names them."""
SWEEP_AXES = {name: axis for name, (axis, _) in SWEEPABLE.items()}
"""What a sweep can vary, and its axis title."""
STAGE_TILE_PX = 70
SOFTMAX_TOP = 10
"""Classes a pass's softmax shows when there are many (ImageNet's 1,000 bars are unreadable)."""


@dataclass(frozen=True)
class Pass:
    """One forward pass as the page shows it.

    Attributes:
        loaded: The model it ran through.
        picture: What the model saw (``uint8``, the model's input size).
        result: Every layer.
        title: How the page names it.
    """

    loaded: LoadedModel
    picture: np.ndarray
    result: CaptureResult
    title: str


def plain_capture(loaded: LoadedModel, picture: np.ndarray) -> CaptureResult:
    """Every layer of ``picture`` through the model (normalised as it expects)."""
    return capture(loaded.model, to_input(picture, *loaded.normalisation))


def perturbed_pass(first: Pass, change: Perturbation) -> Pass:
    """The first pass's picture with ``change`` applied, through the same model.

    A change that changes nothing reuses the first pass's capture: no forward pass.
    """
    if change.is_identity:
        return Pass(first.loaded, first.picture, first.result, "perturbed")
    picture = perturb(first.picture, change)
    return Pass(first.loaded, picture, plain_capture(first.loaded, picture), "perturbed")


def knockout_pass(first: Pass, knockout: Knockout) -> Pass:
    """The first pass's picture through a copy of its model with channels knocked out.

    Raises:
        explorer.analysis.experiment.ExperimentError: The knock-out does not fit the model.
    """
    loaded = first.loaded
    model = knocked_out(loaded.model, knockout)
    result = capture(model, to_input(first.picture, *loaded.normalisation))
    channels = ", ".join(map(str, knockout.channels))
    title = f"{knockout.layer} channels {channels} knocked out ({knockout.mode})"
    return Pass(loaded, first.picture, result, title)


def sweep_points(first: Pass, name: str) -> list[SweepPoint]:
    """The prediction for each of :data:`SWEEPABLE`'s values of ``name`` on the first picture.

    The unchanged input's class is tracked too.
    """
    loaded = first.loaded
    original = int(first.result.probs.argmax())
    values = SWEEPABLE[name][1]
    return sweep(loaded.model, first.picture, Perturbation(), name, values, *loaded.normalisation,
                 original=original)  # fmt: skip


def pass_softmax(shown: Pass) -> go.Figure:
    """A pass's softmax: every class of a digit net, the :data:`SOFTMAX_TOP` best of 1,000."""
    categories = shown.loaded.categories
    probs = shown.result.probs.detach().float().cpu().numpy()
    return softmax_figure(categories, probs, SOFTMAX_TOP if len(categories) > 20 else None)


def conv_channels(model: nn.Module) -> dict[str, int]:
    """Every conv layer a knock-out can reach, and its number of channels."""
    return {
        name: module.out_channels
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    }


def second_models(loaded: LoadedModel) -> dict[str, str]:
    """The zoo's other models of the same family (the same inputs): name → title."""
    return {
        name: spec.title
        for name, spec in ZOO.items()
        if spec.family == loaded.spec.family and name != loaded.name
    }


@dataclass(frozen=True)
class Comparison:
    """What moved between two passes.

    Attributes:
        changes: Every layer both passes share (same name and shape), in the first's order.
        maps: Those with ``(C, H, W)`` maps: what can be drawn side by side.
        same_model: Whether both passes ran through the same model (else each network's
            stages are worth showing apart).
    """

    changes: list[LayerChange]
    maps: list[str]
    same_model: bool


def comparison(first: Pass, second: Pass) -> Comparison:
    """The per-layer change between ``first`` and ``second``."""
    changes = compare(first.result, second.result)
    maps = [c.name for c in changes if len(first.result[c.name].shape) == 3]
    return Comparison(changes, maps, second.loaded is first.loaded)


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


def moved_most(difference: np.ndarray) -> list[int]:
    """Channel indices of a ``(C, H, W)`` difference, the one that moved most (L2) first."""
    moved = np.linalg.norm(difference.reshape(len(difference), -1), axis=1)
    return [int(c) for c in np.argsort(-moved, kind="stable")]


def stage_figures(first: CaptureResult, second: CaptureResult, name: str) -> list[ChannelGrid]:
    """The layer in the first pass (a), the second (b) and ``b − a``, the same tiles in each.

    The channels that moved most come first, as many as one page of the Image page's grid
    (16 of 224×224, 64 of 112×112): each figure is one PNG with a tile's statistics on hover,
    a few MB at most, where every value as heatmap numbers was ~90 MB for VGG-16's first layer.
    """
    a, b = first[name], second[name]
    before, after = a.numpy(), b.numpy()
    difference = after - before
    chosen = moved_most(difference)[: page_size(*before.shape[1:])]
    shown = ((before, "a", a.kind), (after, "b", b.kind), (difference, "b − a", "conv"))
    return [
        channel_grid_figure(values, f"{name} ({which})", kind, chosen, tile_px=STAGE_TILE_PX)
        for values, which, kind in shown
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
