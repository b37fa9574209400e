"""The Draw page's view-model: stages in execution order, captions and figures of each layer."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from explorer.analysis.capture import CaptureResult
from explorer.figures.colour import palette
from explorer.figures.maps import feature_maps_figure
from explorer.inputs.preprocess import PreparedInput
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value, parse_drawing, render_drawing
from explorer.models.zoo import LoadedModel, load_model
from explorer.views.captions import describe_stage
from explorer.views.draw import (
    CLICKABLE_KINDS,
    INPUT_STAGE_KEY,
    layer_source,
    live_maps,
    network_stages,
)


@pytest.fixture(scope="module", params=["lenet5", "harley"])
def loaded(request: pytest.FixtureRequest) -> LoadedModel:
    return load_model(request.param)


def _capture(loaded: LoadedModel, digit: str = "7") -> tuple[PreparedInput, CaptureResult]:
    prepared = loaded.prepare(render_drawing(parse_drawing(drawing_value(DIGIT_STROKES[digit]))))
    return prepared, loaded.capture(prepared)


def test_stages_follow_execution_order_with_their_captions(loaded: LoadedModel) -> None:
    prepared, result = _capture(loaded)
    stages = network_stages(loaded, result, prepared)
    assert [s.key for s in stages] == [INPUT_STAGE_KEY] + [
        f"stage_{i}" for i in range(len(result.layers))
    ]
    assert stages[0].layer is None
    for index, (stage, layer) in enumerate(zip(stages[1:], result.layers, strict=True)):
        assert stage.layer is layer
        assert stage.heading.startswith(f"**{index + 1}. {layer.name}** · {layer.kind}")
        assert " × ".join(map(str, layer.shape)) in stage.heading
        source = layer_source(result, layer)
        module = loaded.model.get_submodule(layer.module) if layer.module else None
        expected = describe_stage(
            layer, source.shape if source else tuple(result.input.shape), module
        )
        assert (stage.caption, stage.formula) == (expected.caption, expected.formula)


def test_only_conv_and_pool_maps_are_clickable_and_show_every_value(loaded: LoadedModel) -> None:
    prepared, result = _capture(loaded)
    for stage in network_stages(loaded, result, prepared, "layer")[1:]:
        layer = stage.layer
        assert layer is not None
        clickable = len(layer.shape) == 3 and layer.kind in CLICKABLE_KINDS
        assert (stage.tiling is not None) == clickable
        if layer.kind == "softmax":
            bars = stage.figure.data[0]
            np.testing.assert_allclose(
                sorted(bars.y), sorted(result.probs.numpy().ravel()), rtol=1e-6
            )
        elif len(layer.shape) == 3:
            heatmap = np.asarray(stage.figure.data[0].z, dtype=np.float64)
            values = layer.numpy()
            tiling = feature_maps_figure(layer).tiling
            for channel in range(len(values)):
                y, x = tiling.origin(channel)
                h, w = values.shape[1:]
                np.testing.assert_allclose(heatmap[y : y + h, x : x + w], values[channel])


def test_parent_layer_is_the_first_input(loaded: LoadedModel) -> None:
    _, result = _capture(loaded)
    first = result.layers[0]
    assert layer_source(result, first) is None
    for previous, layer in zip(result.layers, result.layers[1:], strict=False):
        if layer.inputs and layer.inputs[0] == previous.name:
            assert layer_source(result, layer) is previous


def _decode(uri: str) -> np.ndarray:
    raw = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def test_live_maps_are_the_first_relu_and_pool_layers_tiled_in_one_row() -> None:
    loaded = load_model("lenet5")
    _, result = _capture(loaded, "0")
    strips = live_maps(result)
    assert [caption.split(" · ")[0] for caption, _, _ in strips] == ["relu1", "pool1"]
    for (caption, uri, description), name in zip(strips, ["relu1", "pool1"], strict=True):
        maps = result[name].numpy()
        count, h, w = maps.shape
        assert f"{count} maps of {h}×{w}" in caption
        assert description.startswith(f"{name}: {count} maps of {h} × {w}, values ")
        pixels = _decode(uri)
        gap = 2
        assert pixels.shape == (3 * h, 3 * (count * w + (count - 1) * gap), 3)
        # sequential scale (ReLU/pool outputs are ≥ 0): 0 → the palette's first colour,
        # the layer's maximum → its last
        colours = palette(diverging=False)
        channel, y, x = np.unravel_index(np.argmax(maps), maps.shape)
        assert tuple(pixels[3 * y, 3 * (channel * (w + gap) + x)]) == tuple(colours[254])
        channel, y, x = np.argwhere(maps == 0)[0]
        assert tuple(pixels[3 * y + 1, 3 * (channel * (w + gap) + x) + 1]) == tuple(colours[0])
        assert tuple(pixels[0, 3 * w + 1]) == (255, 255, 255)  # the white gutter


def test_every_stage_says_in_words_where_its_output_peaks(loaded: LoadedModel) -> None:
    """Each stage's text alternative names its largest value's place, found here by argmax."""
    prepared, result = _capture(loaded)
    stages = network_stages(loaded, result, prepared)
    height, width = result.input.shape[-2:]
    assert stages[0].description.startswith(f"input: {height} × {width} map, values ")
    for stage in stages[1:]:
        assert stage.layer is not None
        values = stage.layer.numpy()
        if stage.layer.kind == "softmax":
            best = int(np.argmax(values))
            assert stage.description.startswith(f"Prediction {loaded.categories[best]} (")
        elif values.ndim == 3:
            channel, row, col = np.unravel_index(np.argmax(values), values.shape)
            assert stage.description.endswith(
                f"strongest in channel {channel} at row {row}, column {col}"
            ), stage.description
        else:
            assert stage.description.endswith(f"largest at unit {int(np.argmax(values))}")
