"""The plotly kit every figure shares: colours of marks, font, layout, axes, value format.

:func:`make_figure` builds every figure of the app from plain dicts (a :class:`PlainFigure`,
or a validated ``go.Figure`` under ``EXPLORER_VALIDATE_FIGURES=1``). Nothing here imports
Streamlit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from _plotly_utils.utils import is_homogeneous_array, is_skipped_key, to_typed_array_spec

from explorer.analysis.capture import LayerOutput
from explorer.figures.colour import (
    DIVERGING_COLOURSCALE,
    SEQUENTIAL_COLOURSCALE,
    ColourScale,
    colourscale,
)

WINNER_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"
SELECTED_COLOUR = "#ff00ff"  # stands out on both RdBu and viridis
BOX_COLOUR = "#ff7f0e"
FONT = {"family": "Inter, 'Source Sans Pro', Arial, sans-serif", "size": 12}
MARGIN = {"l": 10, "r": 10, "t": 64, "b": 36}
VALUE_FORMAT = ".6~g"  # d3 format: enough digits to read a float32 value back
PAPER_COLOUR = "#ffffff"
TEXT_COLOUR = "#111111"
GRID_COLOUR = "#e6eaf1"  # Streamlit's light-theme grid lines, kept on the card in either theme
"""Every figure is a white card with near-black text (18.9:1) in the light and the dark theme.

Streamlit merges its theme into a chart's template in the browser (``st.plotly_chart(
theme="streamlit")``) and that template sets the colour of every axis's ticks and title, the
title, the legend and the colour bars: grey #808495 in the light theme (3.7:1 on white) and a
near-white in the dark one, unreadable on a white paper. The layout here sets what it can
(paper, font, title, hover label, the axes and colour bars made here); pages/style.css gives
the text on the paper this colour too (``--cnn-figure-text``, from pages/common.py), for the
axes a layout names after this kit (subplots, replaced tick fonts), and the grid lines
:data:`GRID_COLOUR` (``--cnn-figure-grid``): the dark theme's are near-black."""
_TEMPLATE: dict[str, Any] = {"layout": {"font": {"family": FONT["family"]}}}
"""A one-line template instead of plotly's default (7 KB, deep-copied with every figure)."""

VALIDATE_ENV = "EXPLORER_VALIDATE_FIGURES"
"""Set to ``1`` to have plotly validate every figure (the tests do); off, figures are built
from plain dicts without plotly's per-property validation (~2–3 ms a figure)."""


def shape_text(shape: Sequence[int]) -> str:
    """A shape as text: ``(64, 56, 56)`` → ``"64 × 56 × 56"``."""
    return " × ".join(map(str, shape))


def layer_title(layer: LayerOutput) -> str:
    """A layer's figure title: its name in bold, kind, op and shape."""
    return f"<b>{layer.name}</b> · {layer.kind} ({layer.op}) · shape {shape_text(layer.shape)}"


TITLE_CHARS = 44
"""A figure title's longest line, in characters: ~320 px of 14-px bold, a phone's chart."""
AXIS_TITLE_CHARS = 56
"""An axis title's longest line: ~320 px of 11-px text."""
TITLE_LINE_PX = 18
"""The height of one more line of a 14-px title."""


def wrap_title(text: str, chars: int = TITLE_CHARS) -> str:
    """``text`` broken into lines (``<br>``) at its `` · `` separators, each at most ``chars``.

    Plotly never wraps a title: a long one is cut off at the figure's edge on a phone or in a
    narrow column. Tags (``<b>``) do not count towards a line's length; a part longer than
    ``chars`` stays whole on its own line.
    """
    lines: list[str] = []
    for part in text.split(" · "):
        if lines and len(re.sub(r"<[^>]*>", "", f"{lines[-1]} · {part}")) <= chars:
            lines[-1] = f"{lines[-1]} · {part}"
        else:
            lines.append(part)
    return " ·<br>".join(lines)


def base_layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    """The layout every figure shares: colours, font, margins, title, no legend.

    The title is wrapped (:func:`wrap_title`) and starts at the figure's left edge, not the
    plot's; each extra line of it adds :data:`TITLE_LINE_PX` to the top margin and to
    ``height``, so the plot keeps its size. No named template: copying one costs ~15 ms a
    figure. Colours: :data:`TEXT_COLOUR` on :data:`PAPER_COLOUR`, whatever the theme.
    """
    text = wrap_title(title)
    extra_px = TITLE_LINE_PX * text.count("<br>")
    return {
        "paper_bgcolor": PAPER_COLOUR,
        "plot_bgcolor": PAPER_COLOUR,
        "font": {**FONT, "color": TEXT_COLOUR},
        "margin": {**MARGIN, "t": MARGIN["t"] + extra_px},
        "title": {
            "text": text,
            "x": 0.0,
            "xref": "container",
            "xanchor": "left",
            "pad": {"l": MARGIN["l"]},
            "font": {"size": 14, "color": TEXT_COLOUR},
        },
        "height": int(height) + extra_px,
        "showlegend": False,
        "hoverlabel": {
            "bgcolor": PAPER_COLOUR,
            "bordercolor": TEXT_COLOUR,
            "font": {"family": FONT["family"], "size": 12, "color": TEXT_COLOUR},
        },
        "template": _TEMPLATE,
        **extra,
    }


def image_axes(title: str = "") -> dict[str, Any]:
    """X and y axes for pixels: square, y downwards like an image, no grid."""
    x = {
        "title": {
            "text": wrap_title(title, AXIS_TITLE_CHARS),
            "font": {"size": 11, "color": TEXT_COLOUR},
        },
        "automargin": True,  # a wrapped title's second line pushes the bottom margin
        "showgrid": False,
        "zeroline": False,
        "showticklabels": False,
        "tickfont": {"color": TEXT_COLOUR},
        "ticks": "",
        "constrain": "domain",
    }
    y = {
        "showgrid": False,
        "zeroline": False,
        "showticklabels": False,
        "tickfont": {"color": TEXT_COLOUR},
        "ticks": "",
        "autorange": "reversed",
        "scaleanchor": "x",
        "scaleratio": 1,
        "constrain": "domain",
    }
    return {"xaxis": x, "yaxis": y}


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
    """A copy of ``value`` with numeric arrays as plotly's base64 typed arrays.

    The arrays become what ``go.Figure.to_dict`` makes them, leaving ``value`` itself
    untouched. Like plotly's ``convert_to_base64``, the values of its skipped keys
    (``geojson``, ``range`` …) stay as they are, nested ones included.
    """
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
    traces, layout = on_card(traces, layout)
    if os.environ.get(VALIDATE_ENV, "") == "1":
        return go.Figure(data=traces, layout=layout)
    return PlainFigure(traces, layout)


_AXIS_KEY = re.compile(r"[xy]axis[0-9]*")
_CARTESIAN = frozenset({"scatter", "scattergl", "bar", "heatmap", "image", "histogram"})
"""Trace types drawn on x and y axes (a trace without a type is a scatter)."""


def _inked(font: dict[str, Any] | None) -> dict[str, Any]:
    """``font`` with :data:`TEXT_COLOUR` unless it has a colour of its own."""
    return {"color": TEXT_COLOUR, **(font or {})}


def _inked_axis(axis: dict[str, Any]) -> dict[str, Any]:
    """An axis (or a colour bar) whose ticks and title are :data:`TEXT_COLOUR` by default."""
    title = axis.get("title")
    title = {"text": title} if isinstance(title, str) else dict(title or {})
    inked_title = {**title, "font": _inked(title.get("font"))}
    return {**axis, "tickfont": _inked(axis.get("tickfont")), "title": inked_title}


def _axis_keys(trace: Any) -> set[str]:
    """The layout keys of the axes a trace is drawn on: ``{"xaxis", "yaxis2"}`` for x, y2."""
    if not isinstance(trace, dict) or trace.get("type", "scatter") not in _CARTESIAN:
        return set()
    refs = (str(trace.get("xaxis", "x")), str(trace.get("yaxis", "y")))
    return {f"{ref[0]}axis{ref[1:] if ref[1:] not in ('', '1') else ''}" for ref in refs}


def on_card(traces: Sequence[Any], layout: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Copies of ``traces`` and ``layout`` whose text is :data:`TEXT_COLOUR` on the card.

    The title, every axis (the layout's and the traces'), every colour bar and a scatter's
    point labels get the colour where the figure set none: Streamlit's chart theme would give
    them its own (see :data:`TEXT_COLOUR`). Colours a figure chose stay.
    """
    layout = dict(layout)
    if isinstance(layout.get("title"), dict):
        layout["title"] = {**layout["title"], "font": _inked(layout["title"].get("font"))}
    axes = {key for key in layout if _AXIS_KEY.fullmatch(key)}
    axes.update(*(_axis_keys(trace) for trace in traces))
    for key in axes:
        axis = layout.get(key)
        layout[key] = _inked_axis(axis if isinstance(axis, dict) else {})
    return [_inked_trace(trace) for trace in traces], layout


def _inked_trace(trace: Any) -> Any:
    """A trace whose colour bar, and point labels (a scatter's text), are inked by default."""
    if not isinstance(trace, dict):
        return trace
    if isinstance(trace.get("colorbar"), dict):
        trace = {**trace, "colorbar": _inked_axis(trace["colorbar"])}
    if trace.get("type", "scatter") == "scatter" and "text" in str(trace.get("mode", "")):
        trace = {**trace, "textfont": _inked(trace.get("textfont"))}
    return trace


def heatmap_colours(scale: ColourScale) -> dict[str, Any]:
    """A heatmap's colour scale and range for ``scale`` (diverging ones centred on 0)."""
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


def colour_bar(title: str, **extra: Any) -> dict[str, Any]:
    """A slim colour bar with ``title`` along its right side; ``extra`` adds or overrides keys."""
    return {
        "title": {"text": title, "side": "right", "font": {"size": 11, "color": TEXT_COLOUR}},
        "tickfont": {"color": TEXT_COLOUR},
        "thickness": 12,
        "outlinewidth": 0,
        **extra,
    }


def host_array(weight: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    """A float32 host copy of a tensor (a parameter too) or array."""
    if isinstance(weight, torch.Tensor):
        return weight.detach().to("cpu", torch.float32).numpy().copy()
    return np.asarray(weight, dtype=np.float32)
