"""What the Draw page shows for one input: the live panel and every stage, as data.

``pages/draw.py`` lays these out and ``python -m explorer bench`` times them, so the
benchmark runs the page's own code, never a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from explorer.analysis.capture import CaptureResult, LayerOutput
from explorer.figures import charts
from explorer.figures.charts import vector_figure
from explorer.figures.colour import (
    colour_indices,
    colour_scale,
    layer_can_be_negative,
    palette,
    png_data_uri,
)
from explorer.figures.describe import (
    describe_map,
    describe_maps,
    describe_prediction,
    describe_vector,
)
from explorer.figures.maps import feature_maps_figure, input_figure
from explorer.figures.tiling import Tiling, tile_channels
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import ZOO, Family, LoadedModel
from explorer.views.captions import describe_stage

DIGIT_MODELS = {name: spec.title for name, spec in ZOO.items() if spec.family == Family.DIGIT}
"""The digit nets the Draw page offers, by the zoo's names and titles."""
CLICKABLE_KINDS = frozenset({"conv", "pool"})
"""Stages whose units can be clicked for their arithmetic."""
MAP_TILE_PX = 110
INPUT_STAGE_KEY = "stage_input"


@dataclass(frozen=True)
class Stage:
    """One step of the network as the page shows it.

    Attributes:
        key: The chart's element key (``stage_input``, ``stage_0``, …).
        heading: Markdown: number, layer name, kind and shape.
        caption: One line on what the stage computes.
        formula: Markdown with this layer's numbers, or None.
        figure: The stage's picture.
        layer: The captured layer (None for the input stage).
        tiling: Where each channel sits when its units are clickable, else None.
        description: The picture in one sentence (its text alternative).
    """

    key: str
    heading: str
    caption: str
    formula: str | None
    figure: go.Figure
    layer: LayerOutput | None = None
    tiling: Tiling | None = None
    description: str = ""


def layer_source(result: CaptureResult, layer: LayerOutput) -> LayerOutput | None:
    """The captured layer feeding ``layer`` (None for the model input)."""
    name = layer.inputs[0] if layer.inputs else "input"
    return None if name == "input" else result[name]


def softmax_figure(loaded: LoadedModel, result: CaptureResult) -> go.Figure:
    """The softmax bars of one capture."""
    return charts.softmax_figure(loaded.categories, result.probs.cpu().numpy())


def input_stage(result: CaptureResult, prepared: PreparedInput) -> Stage:
    """Stage 0: the digit as the network receives it."""
    size = "×".join(map(str, result.input.shape))
    pixels = result.input.detach().cpu().numpy()
    return Stage(
        key=INPUT_STAGE_KEY,
        heading=f"**0. input** · {size}",
        caption="The digit as the network receives it: cropped to the ink, the longer side "
        "scaled to 20 px, centred by its centre of mass, normalised with MNIST's mean and std.",
        formula=None,
        figure=input_figure(prepared.display, title=f"input · {size}", height=300),
        description=describe_map(pixels[0], "input")
        if len(pixels) == 1
        else describe_maps(pixels, "input"),
    )


def layer_stage(
    loaded: LoadedModel, result: CaptureResult, index: int, layer: LayerOutput, scale: str
) -> Stage:
    """The stage of captured layer ``index``: its caption, formula and figure."""
    source = layer_source(result, layer)
    module = loaded.model.get_submodule(layer.module) if layer.module else None
    text = describe_stage(layer, source.shape if source else tuple(result.input.shape), module)
    tiling: Tiling | None = None
    if layer.kind == "softmax":
        figure = softmax_figure(loaded, result)
        description = describe_prediction(loaded.categories, result.probs.cpu().numpy())
    elif len(layer.shape) == 3:
        clickable = layer.kind in CLICKABLE_KINDS
        mapped = feature_maps_figure(layer, scale=scale, tile_px=MAP_TILE_PX, clickable=clickable)
        figure, tiling = mapped.figure, mapped.tiling if clickable else None
        description = describe_maps(layer.numpy(), layer.name)
    else:
        figure = vector_figure(layer)
        description = describe_vector(layer.numpy().reshape(-1), layer.name)
    shape = " × ".join(map(str, layer.shape))
    return Stage(
        key=f"stage_{index}",
        heading=f"**{index + 1}. {layer.name}** · {layer.kind}  \n{shape}",
        caption=text.caption,
        formula=text.formula,
        figure=figure,
        layer=layer,
        tiling=tiling,
        description=description,
    )


def network_stages(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, scale: str = "layer"
) -> list[Stage]:
    """Every stage in execution order: the input, then each captured layer."""
    stages = [input_stage(result, prepared)]
    stages += [
        layer_stage(loaded, result, index, layer, scale)
        for index, layer in enumerate(result.layers)
    ]
    return stages


def live_maps(result: CaptureResult, count: int = 2) -> list[tuple[str, str, str]]:
    """The first ``count`` map layers after conv1 as small PNG strips, for the live panel.

    Each strip tiles the layer's channels in one row, coloured with the stage figures' scale
    (one per layer). PNGs, not charts: they cost a millisecond and no WebGL while drawing.

    Returns:
        ``(caption, data URI, description)`` per layer; the description is its text
        alternative (:func:`explorer.figures.describe.describe_maps`).
    """
    strips: list[tuple[str, str, str]] = []
    for layer in result.layers:
        if len(strips) == count:
            break
        if len(layer.shape) != 3 or layer.kind not in {"relu", "pool"}:
            continue
        maps = layer.numpy()
        tiling = tile_channels(maps, cols=len(maps), gap=2)
        scale = colour_scale(maps, layer_can_be_negative(layer.kind, maps))
        pixels = colour_indices(tiling.image, scale)
        pixels = np.kron(pixels, np.ones((3, 3), dtype=np.uint8))  # crisp at a readable size
        uri = png_data_uri(pixels, palette(scale.diverging))
        size = "×".join(map(str, maps.shape[1:]))
        caption = f"{layer.name} · {len(maps)} maps of {size}"
        strips.append((caption, uri, describe_maps(maps, layer.name)))
    return strips
