"""The Experiment page's view-model: the two passes, what moved between them, the sweep.

Every pass and the sweep are jobs for the heavy-work scheduler. The first pass
(:func:`first_pass_job`) and the sweep (:func:`sweep_job`) are kept in its cache for every
session, keyed like every shared answer: the model's cache key, the input's sha256 and the
settings that define them. A click that changes only the experiment recomputes only the
second pass (:func:`perturbed_job`, :func:`knockout_job`) and what is drawn from it. The
command line's ``compare`` reports what moved through :func:`comparison_report`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
from explorer.figures.describe import describe_maps
from explorer.hosting.scheduler import Job
from explorer.inputs.preprocess import PreparedInput
from explorer.inputs.samples import samples_for
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


def sample_input(loaded: LoadedModel, sample: str) -> PreparedInput:
    """One of the samples of the model's family, prepared as the model expects."""
    return loaded.prepare(samples_for(loaded.spec.family)[sample])


def other_samples(loaded: LoadedModel, sample: str) -> list[str]:
    """The samples a second pass can take instead of ``sample`` (same family)."""
    return [other for other in samples_for(loaded.spec.family) if other != sample]


def pass_title(loaded: LoadedModel, what: str) -> str:
    """How the page names a pass: the model's title and what went in, e.g. ``"LeNet-5, as is"``."""
    return f"{loaded.spec.title}, {what}"


def first_pass_job(loaded: LoadedModel, prepared: PreparedInput) -> Job:
    """An unchanged input's capture (:func:`plain_capture`) as a scheduler job.

    One pass, in the quick line; its answer is kept for every session under
    ``("experiment pass", model cache key, input sha256)``.
    """
    key = ("experiment pass", loaded.cache_key, prepared.sha256)
    return Job(key, lambda _progress: plain_capture(loaded, prepared.display), lane="quick")


def plain_pass(
    loaded: LoadedModel, prepared: PreparedInput, result: CaptureResult, what: str
) -> Pass:
    """The :class:`Pass` of an unchanged input, from its capture (:func:`first_pass_job`)."""
    return Pass(loaded, prepared.display, result, pass_title(loaded, what))


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


def perturbed_job(first: Pass, change: Perturbation) -> Job:
    """:func:`perturbed_pass` as a job of the quick line, never cached (each click differs)."""
    return Job.call(perturbed_pass, first, change, quick=True)


def knockout_job(first: Pass, knockout: Knockout) -> Job:
    """:func:`knockout_pass` as a job of the quick line, never cached."""
    return Job.call(knockout_pass, first, knockout, quick=True)


def sweep_job(first: Pass, input_sha: str, name: str) -> Job:
    """:func:`sweep_points` as a job of the long line (up to 19 passes).

    Its answer is kept for every session under ``("sweep", model cache key, input sha256,
    name)``.
    """
    key = ("sweep", first.loaded.cache_key, input_sha, name)
    return Job(key, lambda _progress: sweep_points(first, name), lane="long")


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
    return compare_results(first.result, second.result, second.loaded is first.loaded)


def compare_results(a: CaptureResult, b: CaptureResult, same_model: bool) -> Comparison:
    """The per-layer change from capture ``a`` to capture ``b``.

    Args:
        a: The first pass's layers.
        b: The second pass's layers.
        same_model: Whether both ran through the same model.
    """
    changes = compare(a, b)
    maps = [c.name for c in changes if len(a[c.name].shape) == 3]
    return Comparison(changes, maps, same_model)


def comparison_job(first: Pass, second: Pass) -> Job:
    """:func:`comparison` as a job of the quick line, never cached."""
    return Job.call(comparison, first, second, quick=True)


def comparison_report(a: CaptureResult, b: CaptureResult, same_model: bool) -> dict[str, Any]:
    """What moved from ``a`` to ``b``, as the command line's ``compare`` writes it (JSON).

    Returns:
        ``{"layers": [...]}``: each shared layer's change (:class:`LayerChange`'s fields),
        and ``"stages"``: each network's :func:`stage_summaries` when the models differ.
    """
    compared = compare_results(a, b, same_model)
    report: dict[str, Any] = {"layers": [change._asdict() for change in compared.changes]}
    if not compared.same_model:
        report["stages"] = [stage_summaries(a), stage_summaries(b)]
    return report


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


def stage_descriptions(first: CaptureResult, second: CaptureResult, name: str) -> list[str]:
    """:func:`stage_figures`' text alternatives: a, b and ``b − a`` of layer ``name`` in words."""
    before, after = first[name].numpy(), second[name].numpy()
    shown = ((before, "a"), (after, "b"), (after - before, "b − a"))
    return [describe_maps(values, f"{name} ({which})") for values, which in shown]


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
