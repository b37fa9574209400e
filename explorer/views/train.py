"""The Train page's view-model: curves, the confusion matrix and the mistakes of a run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.figures import style
from explorer.figures.colour import colour_scale
from explorer.figures.describe import describe_confusion
from explorer.models.live import Point, Progress

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
DIGITS = [str(d) for d in range(10)]
"""The confusion matrix's class names, rows and columns."""


def curves_figure(points: Sequence[Point], height: int = 300) -> go.Figure:
    """Loss (left) and accuracy (right) against steps, training and validation."""
    steps = [p.step for p in points]
    traces = []
    for axis, (what, train, val) in enumerate(
        (
            ("loss", [p.train_loss for p in points], [p.val_loss for p in points]),
            ("accuracy", [p.train_accuracy for p in points], [p.val_accuracy for p in points]),
        ),
        start=1,
    ):
        for name, values, colour in (
            ("train", train, TRAIN_COLOUR),
            ("validation", val, VAL_COLOUR),
        ):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": steps,
                    "y": values,
                    "name": f"{name} {what}",
                    "line": {"color": colour, "dash": "solid" if name == "validation" else "dot"},
                    "marker": {"size": 4},
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    "showlegend": axis == 1,
                    "legendgroup": name,
                    "hovertemplate": f"step %{{x}}<br>{name} {what} %{{y:.4f}}<extra></extra>",
                }
            )
    layout = style.base_layout("<b>Learning curves</b> · loss and accuracy by step", height)
    layout.update(
        showlegend=True,
        legend={"orientation": "h", "y": -0.25},
        xaxis={"domain": [0, 0.45], "title": {"text": "step"}},
        xaxis2={"domain": [0.55, 1], "title": {"text": "step"}, "anchor": "y2"},
        yaxis={"title": {"text": "cross-entropy loss"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "accuracy"}, "range": [0, 1], "anchor": "x2"},
    )
    return style.make_figure(traces, layout)


def confusion_figure(confusion: np.ndarray, height: int = 360) -> go.Figure:
    """The validation confusion matrix: rows the true digit, columns the predicted one."""
    scale = colour_scale(confusion.astype(np.float32), False)
    heatmap = {
        "type": "heatmap",
        "z": confusion,
        "x": DIGITS,
        "y": DIGITS,
        "text": confusion.astype(str),
        "texttemplate": "%{text}",
        "colorbar": style.colour_bar("validation digits"),
        "hovertemplate": "true %{y} · predicted %{x}: %{z} digits<extra></extra>",
        **style.heatmap_colours(scale),
    }
    correct = int(np.trace(confusion))
    total = int(confusion.sum())
    layout = style.base_layout(
        f"<b>Confusion matrix</b> · {correct} of {total} right ({correct / max(total, 1):.1%})",
        height,
        xaxis={"title": {"text": "predicted"}, "type": "category", "constrain": "domain"},
        yaxis={
            "title": {"text": "true"},
            "type": "category",
            "autorange": "reversed",
            "scaleanchor": "x",
        },
    )
    return style.make_figure([heatmap], layout)


def confusion_description(confusion: np.ndarray) -> str:
    """The confusion matrix's text alternative: how many are right, the most confused pair."""
    return describe_confusion(confusion, DIGITS)


def status_line(progress: Progress) -> str:
    """Step, epoch, accuracy and time left in one line."""
    text = f"step {progress.step} of {progress.total_steps} · {progress.seconds:.1f} s"
    if progress.points:
        last = progress.points[-1]
        text += f" · epoch {last.epoch:.2f} · validation accuracy {last.val_accuracy:.1%}"
    left = progress.seconds_left
    if progress.status == "running" and left is not None:
        text += f" · about {left:.0f} s left"
    return text
