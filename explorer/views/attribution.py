"""The "Why this class?" view: an attribution map over the input, and how faithful it is.

Shared by the Draw and Image pages. Results are cached for every session by (model, weights,
input sha256, method and the settings it uses), so a class that asks the same question
waits once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.analysis.attribution import (
    METHODS,
    Attribution,
    Progress,
    Settings,
    attribute,
    deletion_check,
    upsample,
)
from explorer.analysis.capture import CaptureResult
from explorer.figures import style
from explorer.figures.colour import ColourScale, colour_scale, png_data_uri
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel

DELETED_FRACTION = 0.1
"""The faithfulness check hides this fraction of the input: the map's top pixels."""
DEFAULT_OPACITY = 0.6
CACHED = 32
"""Attributions kept (each a float32 map of the input's size: ~200 KB at 224×224)."""

_cache: OrderedDict[tuple[object, ...], tuple[Attribution, float, float]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class WhyView:
    """What the view shows for one question.

    Attributes:
        attribution: The map and what made it.
        label: The class's name.
        before: The class's probability on the input.
        after: Its probability with the map's top :data:`DELETED_FRACTION` hidden.
        scale: The map's colour scale.
    """

    attribution: Attribution
    label: str
    before: float
    after: float
    scale: ColourScale

    @property
    def caption(self) -> str:
        """One line: what the map shows, and of which layer for a CAM."""
        method = self.attribution.method
        layer = self.attribution.settings.layer
        return method.caption + (f" Layer: {layer}." if layer else "")

    @property
    def deletion_text(self) -> str:
        """The faithfulness check in words."""
        return (
            f"Hiding the map's top {DELETED_FRACTION:.0%} of pixels moves p({self.label}) "
            f"from {self.before:.1%} to {self.after:.1%}: a faithful map's top pixels matter, "
            "so the probability should drop."
        )

    def figure(self, display: np.ndarray, opacity: float = DEFAULT_OPACITY) -> go.Figure:
        """The map over the input (``display``, uint8), at ``opacity``, with its colour bar."""
        return overlay_figure(display, self.attribution.values, self.scale, opacity, self.title)

    @property
    def title(self) -> str:
        """The figure's title: method and class."""
        return f"<b>{self.attribution.method.label}</b> · class {self.label}"


def class_choices(loaded: LoadedModel, result: CaptureResult) -> dict[int, str]:
    """Every class, most probable first, as ``index → "label · 12.3 %"``."""
    probs = result.probs.detach().float().cpu().numpy().reshape(-1)
    order = np.argsort(-probs, kind="stable")
    return {int(i): f"{loaded.categories[i]} · {probs[i]:.1%}" for i in order}


def black_input(loaded: LoadedModel, prepared: PreparedInput) -> torch.Tensor:
    """A black input as the model sees it (every pixel 0 before normalisation), ``(1, C, 1, 1)``."""
    mean, std = loaded.normalisation
    channels = prepared.tensor.shape[1]
    values = [(0.0 - mean[c % len(mean)]) / std[c % len(std)] for c in range(channels)]
    return torch.tensor(values, dtype=torch.float32).view(1, channels, 1, 1)


def why_view(
    loaded: LoadedModel,
    prepared: PreparedInput,
    settings: Settings,
    progress: Progress | None = None,
) -> WhyView:
    """The attribution of ``settings.target`` for this input, cached for every session.

    Raises:
        explorer.analysis.attribution.AttributionError: Settings that do not fit.
    """
    key = (loaded.cache_key, prepared.sha256, settings.used())
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
    if found is None:
        black = black_input(loaded, prepared)
        attribution = attribute(loaded.model, prepared.tensor, settings, progress, black)
        before, after = deletion_check(loaded.model, prepared.tensor, attribution, DELETED_FRACTION)
        found = (attribution, before, after)
        with _cache_lock:
            _cache[key] = found
            while len(_cache) > CACHED:
                _cache.popitem(last=False)
    attribution, before, after = found
    label = loaded.categories[settings.target]
    return WhyView(attribution, label, before, after, colour_scale(attribution.values))


def on_picture(values: np.ndarray, display: np.ndarray) -> np.ndarray:
    """The map at the picture's size (bilinear) when the model's input size differs."""
    h, w = display.shape[:2]
    if values.shape == (h, w):
        return values
    return upsample(torch.from_numpy(values), (h, w))


def overlay_figure(
    display: np.ndarray,
    values: np.ndarray,
    scale: ColourScale,
    opacity: float,
    title: str,
    height: int = 460,
) -> go.Figure:
    """An attribution map as a heatmap over the input picture, with a colour bar.

    The map is resized (bilinear) to the picture when their sizes differ; hover shows each
    pixel's exact attribution.
    """
    h, w = display.shape[:2]
    values = on_picture(values, display)
    rgb = np.repeat(display[..., None], 3, axis=2) if display.ndim == 2 else display
    picture = {
        "type": "image",
        "source": png_data_uri(rgb),
        "x0": 0,
        "y0": 0,
        "dx": 1,
        "dy": 1,
        "hoverinfo": "skip",
    }
    heatmap = {
        "type": "heatmap",
        "z": values.astype(np.float32),
        "opacity": float(opacity),
        "colorbar": style.colour_bar(f"attribution ({scale.label})"),
        "hovertemplate": "row %{y} · col %{x}<br>attribution "
        f"<b>%{{z:{style.VALUE_FORMAT}}}</b><extra></extra>",
        **style.heatmap_colours(scale),
    }
    layout = style.base_layout(
        title, height, **style.image_axes(f"{h}×{w} input, map at {opacity:.0%}")
    )
    return style.make_figure([picture, heatmap], layout)


def method_labels() -> dict[str, str]:
    """Every method's key and its name in the pages, CAMs first."""
    return {key: method.label for key, method in METHODS.items()}
