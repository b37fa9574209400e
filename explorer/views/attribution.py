"""The "Why this class?" view: an attribution map over the input, and how faithful it is.

Shared by the Draw and Image pages. A question is a job for the heavy-work scheduler
(:func:`why_job`: its content key, its work, its cost); answers are kept in the scheduler's
cache for every session by (model, weights, input sha256, method and the settings it uses),
so a class that asks the same question waits once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.analysis.attribution import (
    METHODS,
    Attribution,
    Progress,
    Settings,
    attribute,
    attribution_passes,
    deletion_check,
    upsample,
)
from explorer.analysis.capture import CaptureResult
from explorer.figures import style
from explorer.figures.colour import (
    DIVERGING_COLOURSCALE,
    SEQUENTIAL_COLOURSCALE,
    ColourScale,
    colour_scale,
    png_data_uri,
)
from explorer.figures.describe import describe_colours, describe_map
from explorer.hosting.scheduler import (
    BACKWARD_PASSES,
    Cost,
    Job,
    default_scheduler,
    model_profile,
)
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel

DELETED_FRACTION = 0.1
"""The faithfulness check hides this fraction of the input: the map's top pixels."""
DEFAULT_OPACITY = 0.6
DELETION_PASSES = 2
"""The faithfulness check's forward passes: the input, and the input with the top hidden."""


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

    def description(self, opacity: float = DEFAULT_OPACITY) -> str:
        """The overlay's text alternative: the map, where it peaks, what its colours mean.

        Rows and columns are the input's pixels; a signed map also names its most negative.

        ``"Grad-CAM for class 7, in input pixels: 28 × 28 map, values 0 to 0.83, strongest at
        row 12, column 14. Colours: dark purple lowest … (0 to 0.83), over the input at 60 %
        opacity."``
        """
        name = f"{self.attribution.method.label} for class {self.label}, in input pixels"
        text = describe_map(self.attribution.values, name, negative=True)
        palette = DIVERGING_COLOURSCALE if self.scale.diverging else SEQUENTIAL_COLOURSCALE
        colours = describe_colours(palette, self.scale.vmin, self.scale.vmax, opacity)
        meaning = f"; above 0 counts for {self.label}, below 0 against it"
        return f"{text}. {colours}{meaning if self.scale.diverging else ''}."

    def figure(self, display: np.ndarray, opacity: float = DEFAULT_OPACITY) -> go.Figure:
        """The map over the input (``display``, uint8), at ``opacity``, with its colour bar."""
        return overlay_figure(display, self.attribution.values, self.scale, opacity, self.title)

    @property
    def title(self) -> str:
        """The figure's title: method and class."""
        return f"<b>{self.attribution.method.label}</b> · class {self.label}"


def class_choices(loaded: LoadedModel, result: CaptureResult) -> dict[int, str]:
    """Every class, most probable first, as ``index → "label · 12.3%"``."""
    probs = result.probs.detach().float().cpu().numpy().reshape(-1)
    order = np.argsort(-probs, kind="stable")
    return {int(i): f"{loaded.categories[i]} · {probs[i]:.1%}" for i in order}


def black_input(loaded: LoadedModel, prepared: PreparedInput) -> torch.Tensor:
    """A black input as the model sees it (every pixel 0 before normalisation), ``(1, C, 1, 1)``."""
    black = torch.zeros(1, prepared.tensor.shape[1], 1, 1, dtype=torch.float64)
    return loaded.input_spec.normalise(black)


def why_key(loaded: LoadedModel, prepared: PreparedInput, settings: Settings) -> tuple[object, ...]:
    """What names an answer: model and weights, the input's sha256, the settings used."""
    return ("why", loaded.cache_key, prepared.sha256, settings.used())


def why_job(
    loaded: LoadedModel, prepared: PreparedInput, settings: Settings, result: CaptureResult
) -> Job:
    """The question as a job for the heavy-work scheduler: key, work and cost.

    Args:
        loaded: The model.
        prepared: The input.
        settings: The method and its settings.
        result: The input's capture (its shapes cost the job).
    """
    work = functools.partial(_answer, loaded, prepared, settings)
    return Job(why_key(loaded, prepared, settings), work, why_cost(loaded, result, settings))


def why_view(
    loaded: LoadedModel,
    prepared: PreparedInput,
    settings: Settings,
    progress: Progress | None = None,
) -> WhyView:
    """The attribution of ``settings.target``, computed in this thread (the command line).

    Cached for every session like :func:`why_job`'s answers, but neither costed nor queued.

    Raises:
        explorer.analysis.attribution.AttributionError: Settings that do not fit.
    """
    work = functools.partial(_answer, loaded, prepared, settings)
    view: WhyView = default_scheduler().run_here(
        Job(why_key(loaded, prepared, settings), work), progress
    )
    return view


def _answer(
    loaded: LoadedModel, prepared: PreparedInput, settings: Settings, progress: Progress
) -> WhyView:
    black = black_input(loaded, prepared)
    attribution = attribute(loaded.model, prepared.tensor, settings, progress, black)
    before, after = deletion_check(loaded.model, prepared.tensor, attribution, DELETED_FRACTION)
    label = loaded.categories[settings.target]
    return WhyView(attribution, label, before, after, colour_scale(attribution.values))


def why_cost(loaded: LoadedModel, result: CaptureResult, settings: Settings) -> Cost:
    """What answering costs: the method's passes and the faithfulness check's, on this model."""
    size = _size(result)
    channels = cam_channels(result, settings.layer)
    passes = attribution_passes(settings, size, channels, BACKWARD_PASSES) + DELETION_PASSES
    advice = functools.partial(_advice, settings, size, channels)
    return model_profile(loaded, result).cost(_asked(settings, channels), passes, advice=advice)


def _size(result: CaptureResult) -> tuple[int, int]:
    height, width = result.input.shape[-2:]
    return int(height), int(width)


def cam_channels(result: CaptureResult, layer: str | None) -> int:
    """The channels of a CAM's layer as captured (``None``: the last map layer's)."""
    maps = [out for out in result.layers if len(out.shape) == 3]
    named = [out for out in maps if layer is not None and layer in (out.module, out.name)]
    inside = [out for out in maps if layer and (out.module or "").startswith(f"{layer}.")]
    found = named or inside[-1:] or maps[-1:]
    return int(found[0].shape[0]) if found else 1


def _asked(settings: Settings, channels: int) -> str:
    """The question in words, for a refusal."""
    if settings.method == "occlusion":
        return f"occlusion with a {settings.window}-px window and a {settings.stride}-px stride"
    if settings.method == "integrated_gradients":
        return f"Integrated Gradients with {settings.steps} steps"
    if settings.method == "smoothgrad":
        return f"SmoothGrad with {settings.samples} noisy copies"
    if settings.method == "scorecam":
        return f"Score-CAM of {settings.layer or 'the last conv block'} ({channels} channels)"
    return METHODS[settings.method].label


def _advice(settings: Settings, size: tuple[int, int], channels: int, most: int) -> str:
    """What to change so that the question fits in ``most`` passes."""

    def fits(changed: Settings, channels: int = channels) -> bool:
        passes = attribution_passes(changed, size, channels, BACKWARD_PASSES)
        return passes + DELETION_PASSES <= most

    method = settings.method
    if method == "occlusion":
        coarser = (
            replace(settings, window=max(settings.window, s), stride=s)
            for s in range(max(settings.stride, 1), min(size) + 1)
        )
        stride = next((c.stride for c in coarser if fits(c)), 0)
        if stride:
            return f"use a window and a stride of {stride} px or more"
    elif method == "integrated_gradients":
        steps = max((n for n in range(1, 129) if fits(replace(settings, steps=n))), default=0)
        if steps:
            return f"use at most {steps} steps"
    elif method == "smoothgrad":
        copies = max((n for n in range(1, 129) if fits(replace(settings, samples=n))), default=0)
        if copies:
            return f"use at most {copies} noisy copies"
    elif method == "scorecam":
        widest = max((n for n in range(1, channels) if fits(settings, n)), default=0)
        if widest:
            return f"pick Grad-CAM (one pass), or a layer of at most {widest} channels"
    return "pick Grad-CAM or saliency (one pass each)"


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


def input_side(prepared: PreparedInput) -> int:
    """The input's shorter side in pixels: what bounds occlusion's window and stride."""
    return int(min(prepared.tensor.shape[-2:]))
