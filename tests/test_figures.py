"""Plotly figures: the numbers they draw, what hover shows, and clicks back to units."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from explorer.analysis.capture import LayerOutput, capture
from explorer.figures.charts import (
    filters_figure,
    rgb_filters_figure,
    softmax_figure,
    vector_figure,
)
from explorer.figures.colour import layer_can_be_negative
from explorer.figures.maps import (
    HEATMAP_CURVE,
    OVERLAY_CURVE,
    feature_maps_figure,
    input_figure,
    numbers_figure,
)
from explorer.figures.selection import unit_from_selection
from explorer.figures.style import (
    MARGIN,
    OTHER_COLOUR,
    TITLE_LINE_PX,
    WINNER_COLOUR,
    base_layout,
    wrap_title,
)
from explorer.figures.tiling import tile_channels
from explorer.models.nets import LeNet5


def make_layer(shape: tuple[int, ...], kind: str = "conv", seed: int = 0) -> LayerOutput:
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.randn(*shape, generator=generator)
    if kind == "relu":
        tensor = tensor.clamp(min=0)
    return LayerOutput("block.conv", kind, "Conv2d", "block.conv", tensor)


def trace_dict(fig: go.Figure, index: int) -> dict[str, Any]:
    trace: dict[str, Any] = fig.data[index].to_plotly_json()
    return trace


def first_rgb(colourscale: Any) -> str:
    return str(colourscale[0][1])


def streamlit_point(fig: go.Figure, index: int, customdata_as: str = "dict") -> dict[str, Any]:
    """A point as Streamlit 1.67 reports a click on the overlay (seen in Chromium).

    plotly.js decodes the base64 customdata into typed-array rows, which reach Python as
    ``{"0": channel, "1": row, "2": col, "3": value}``.
    """
    overlay = fig.data[OVERLAY_CURVE]
    row = [float(v) for v in overlay.customdata[index]]
    customdata: Any = {str(i): v for i, v in enumerate(row)} if customdata_as == "dict" else row
    return {
        "curve_number": OVERLAY_CURVE,
        "point_number": index,
        "point_index": index,
        "x": int(overlay.x[index]),
        "y": int(overlay.y[index]),
        "customdata": customdata,
    }


def event(*points: dict[str, Any]) -> dict[str, Any]:
    return {
        "selection": {
            "points": list(points),
            "point_indices": [p.get("point_index") for p in points],
            "box": [],
            "lasso": [],
        }
    }


# --- feature maps ------------------------------------------------------------------------


def test_layer_scale_draws_the_tiled_values_on_a_symmetric_diverging_scale() -> None:
    layer = make_layer((6, 5, 7))
    mapped = feature_maps_figure(layer)
    values = layer.numpy()
    heat = mapped.figure.data[HEATMAP_CURVE]
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_array_equal(heat.z, tile_channels(values).image)
    np.testing.assert_array_equal(mapped.tiling.image, tile_channels(values).image)
    bound = float(np.abs(values).max())
    assert heat.zmid == 0
    assert heat.zmin == pytest.approx(-bound) and heat.zmax == pytest.approx(bound)
    assert first_rgb(heat.colorscale) == "rgb(5,48,97)"  # RdBu_r: blue at the low end
    assert f"{bound:.3g}" in heat.colorbar.title.text
    title = mapped.figure.layout.title.text
    assert "block.conv" in title and "conv" in title and "6 × 5 × 7" in title
    assert mapped.figure.layout.yaxis.scaleanchor == "x"
    assert mapped.figure.layout.yaxis.autorange == "reversed"
    assert mapped.figure.layout.xaxis.showticklabels is False
    labels = mapped.figure.data[-1]  # one channel number per tile, in one text trace
    assert list(labels.text) == [str(c) for c in range(6)] and labels.hoverinfo == "skip"
    assert not mapped.figure.layout.annotations
    assert mapped.figure.layout.height == 2 * 90 + MARGIN["t"] + MARGIN["b"]


def test_map_scale_normalises_each_channel_but_hover_keeps_exact_values() -> None:
    layer = make_layer((4, 6, 6), seed=1)
    mapped = feature_maps_figure(layer, scale="map")
    values = layer.numpy()
    heat = mapped.figure.data[HEATMAP_CURVE]
    y, x = mapped.tiling.origin(2)
    expected = values[2] / np.abs(values[2]).max()
    np.testing.assert_allclose(heat.z[y : y + 6, x : x + 6], expected, rtol=1e-6)
    assert (heat.zmin, heat.zmid, heat.zmax) == (-1, 0, 1)
    assert heat.colorbar.title.text.startswith("each map's own scale")
    overlay = mapped.figure.data[OVERLAY_CURVE]
    index = 2 * 36 + 3 * 6 + 4  # channel 2, row 3, col 4
    np.testing.assert_array_equal(overlay.customdata[index], [2, 3, 4, values[2, 3, 4]])
    assert "%{customdata[3]" in overlay.hovertemplate


def test_map_scale_of_a_relu_layer_is_min_max_per_channel() -> None:
    layer = make_layer((3, 4, 4), kind="relu", seed=2)
    mapped = feature_maps_figure(layer, scale="map")
    values = layer.numpy()
    heat = mapped.figure.data[HEATMAP_CURVE]
    y, x = mapped.tiling.origin(1)
    lo, hi = values[1].min(), values[1].max()
    np.testing.assert_allclose(heat.z[y : y + 4, x : x + 4], (values[1] - lo) / (hi - lo))
    assert (heat.zmin, heat.zmax) == (0, 1) and heat.zmid is None
    assert heat.colorbar.title.text == "each map's own scale: min … max"


def test_relu_is_sequential_and_pool_follows_its_data() -> None:
    relu = feature_maps_figure(make_layer((2, 3, 3), kind="relu"))
    heat = relu.figure.data[HEATMAP_CURVE]
    assert heat.zmid is None and heat.zmin >= 0
    assert first_rgb(heat.colorscale) == "#440154"  # viridis
    assert not relu.scale.diverging
    signed_pool = make_layer((2, 3, 3), kind="pool")  # max-pool of a conv: can be negative
    assert feature_maps_figure(signed_pool).scale.diverging
    relu_pool = make_layer((2, 3, 3), kind="relu")
    relu_pool = LayerOutput("pool", "pool", "MaxPool2d", "pool", relu_pool.tensor)
    assert not feature_maps_figure(relu_pool).scale.diverging


def test_overlay_carries_exact_values_at_each_pixel_centre() -> None:
    layer = make_layer((5, 4, 3), seed=3)
    mapped = feature_maps_figure(layer)
    values = layer.numpy()
    overlay = mapped.figure.data[OVERLAY_CURVE]
    assert isinstance(overlay, go.Scattergl)
    assert len(overlay.x) == values.size
    assert overlay.marker.opacity == 0 and overlay.selected.marker.opacity == 1
    assert mapped.figure.data[HEATMAP_CURVE].hoverinfo == "skip"  # the overlay hovers
    for channel, row, col in [(0, 0, 0), (1, 2, 1), (4, 3, 2), (3, 0, 2)]:
        i = (channel * 4 + row) * 3 + col
        assert tuple(overlay.customdata[i][:3]) == (channel, row, col)
        assert overlay.customdata[i][3] == values[channel, row, col]
        y, x = mapped.tiling.origin(channel)
        assert (overlay.y[i], overlay.x[i]) == (y + row, x + col)
        assert mapped.tiling.image[overlay.y[i], overlay.x[i]] == values[channel, row, col]


def test_not_clickable_puts_exact_values_on_the_heatmap_hover() -> None:
    layer = make_layer((3, 4, 4), seed=4)
    mapped = feature_maps_figure(layer, scale="map", clickable=False, channel_labels=False)
    assert len(mapped.figure.data) == 1
    heat = mapped.figure.data[HEATMAP_CURVE]
    y, x = mapped.tiling.origin(2)
    np.testing.assert_array_equal(heat.customdata[y + 1, x + 3], [2, 1, 3, layer.numpy()[2, 1, 3]])
    assert np.isnan(heat.customdata[4, 0]).all()  # gutter row
    assert "%{customdata[3]" in heat.hovertemplate


def test_max_channels_and_title() -> None:
    mapped = feature_maps_figure(make_layer((20, 3, 3)), max_channels=8, cols=4)
    assert mapped.channels == 8 and (mapped.tiling.rows, mapped.tiling.cols) == (2, 4)
    assert "first 8 of 20 channels" in mapped.figure.layout.title.text
    with pytest.raises(ValueError, match="not a map layer"):
        feature_maps_figure(LayerOutput("fc", "linear", "Linear", "fc", torch.zeros(10)))
    with pytest.raises(ValueError, match="scale"):
        feature_maps_figure(make_layer((2, 3, 3)), scale="global")


def test_big_layer_is_one_heatmap() -> None:
    mapped = feature_maps_figure(make_layer((64, 112, 112)))
    heatmaps = [t for t in mapped.figure.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 1 and len(mapped.figure.data) == 3  # maps, unit overlay, labels
    assert len(mapped.figure.data[OVERLAY_CURVE].x) == 64 * 112 * 112
    assert len(mapped.figure.data[2].text) == 64


# --- clicks ------------------------------------------------------------------------------


@pytest.mark.parametrize("customdata_as", ["dict", "list"])
def test_unit_from_selection_round_trips_overlay_points(customdata_as: str) -> None:
    layer = make_layer((7, 5, 6), seed=5)
    mapped = feature_maps_figure(layer)
    for index in [0, 5, 6 * 5 + 7, 3 * 30 + 29, 7 * 30 - 1]:
        point = streamlit_point(mapped.figure, index, customdata_as)
        expected = (index // 30, index // 6 % 5, index % 6)
        assert unit_from_selection(event(point), mapped.tiling) == expected


def test_unit_from_selection_falls_back_to_xy_then_point_index() -> None:
    mapped = feature_maps_figure(make_layer((4, 3, 3)))
    point = streamlit_point(mapped.figure, 2 * 9 + 4)
    del point["customdata"]
    assert unit_from_selection(event(point), mapped.tiling) == (2, 1, 1)
    del point["x"], point["y"]
    assert unit_from_selection(event(point), mapped.tiling) == (2, 1, 1)


def test_unit_from_selection_reads_streamlit_state_objects() -> None:
    from streamlit.elements.plotly_chart import PlotlyState

    mapped = feature_maps_figure(make_layer((4, 3, 3)))
    state = PlotlyState(event(streamlit_point(mapped.figure, 35)))
    assert unit_from_selection(state, mapped.tiling) == (3, 2, 2)
    namespace = SimpleNamespace(selection=SimpleNamespace(points=[{"x": 4, "y": 0}]))
    assert unit_from_selection(namespace, mapped.tiling) == (1, 0, 0)


def test_unit_from_selection_is_none_for_nothing_valid() -> None:
    mapped = feature_maps_figure(make_layer((3, 3, 3)))
    tiling = mapped.tiling
    assert unit_from_selection(event(), tiling) is None
    assert unit_from_selection({"selection": {"points": []}}, tiling) is None
    assert unit_from_selection({}, tiling) is None
    assert unit_from_selection(None, tiling) is None
    gutter = {"curve_number": OVERLAY_CURVE, "x": 3, "y": 0}
    assert unit_from_selection(event(gutter), tiling) is None
    empty_tile = {"curve_number": OVERLAY_CURVE, "x": 4, "y": 4}  # 4th tile of a 2×2 grid
    assert unit_from_selection(event(empty_tile), tiling) is None
    other_trace = {"curve_number": HEATMAP_CURVE, "x": 1, "y": 1, "point_index": 0}
    assert unit_from_selection(event(other_trace), tiling) is None
    assert unit_from_selection(event(other_trace, {"x": 5, "y": 1}), tiling) == (1, 1, 1)


# --- vectors, filters, softmax, input, numbers --------------------------------------------


def test_vector_wraps_units_and_hovers_index_and_value() -> None:
    layer = LayerOutput("fc1", "linear", "Linear", "fc1", torch.linspace(-2, 1, 130))
    fig = vector_figure(layer)
    heat = fig.data[0]
    assert heat.z.shape == (3, 60)
    flat = layer.numpy()
    np.testing.assert_array_equal(heat.z.reshape(-1)[:130], flat)
    assert np.isnan(heat.z.reshape(-1)[130:]).all()
    assert heat.customdata[2, 5] == 125 and heat.z[2, 5] == flat[125]
    assert heat.zmid == 0 and heat.zmin == -heat.zmax == pytest.approx(-2)
    assert "130" in fig.layout.title.text and "%{z:" in heat.hovertemplate


def test_vector_of_relu_is_sequential_and_names_categories() -> None:
    probs = torch.tensor([0.0, 0.5, 2.0, 0.1])
    fig = vector_figure(LayerOutput("r", "relu", "ReLU", "r", probs), ["a", "b", "c", "d"])
    heat = fig.data[0]
    assert heat.zmid is None and heat.zmin == 0
    assert heat.text[0] == ["a", "b", "c", "d"]
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "c", "d"]


def test_filters_heatmap_holds_each_kernel_at_its_tile() -> None:
    weight = torch.randn(10, 4, 3, 3, generator=torch.Generator().manual_seed(6))
    weight = torch.nn.Parameter(weight)  # a live parameter, as a page passes it
    fig = filters_figure(weight, "conv2", max_filters=8, max_inputs=3)
    heat = fig.data[0]
    w = weight.detach().numpy()
    kernel = 4  # tile height/width + gutter
    for f, c in [(0, 0), (3, 2), (7, 1)]:
        y, x = f * kernel, c * kernel
        np.testing.assert_array_equal(heat.z[y : y + 3, x : x + 3], w[f, c])
        np.testing.assert_array_equal(heat.customdata[y + 2, x + 1], [f, c, 2, 1, w[f, c, 2, 1]])
    assert heat.z.shape == (8 * 4 - 1, 3 * 4 - 1)
    shown = np.abs(w[:8, :3]).max()
    assert heat.zmid == 0 and heat.zmax == pytest.approx(shown) and heat.zmin == -heat.zmax
    title = fig.layout.title.text
    assert "10 × 4 × 3 × 3" in title and "first 8 of 10 filters" in title
    assert "first 3 of 4 input channels" in title


def test_one_input_channel_filters_are_a_grid_not_a_strip() -> None:
    weight = torch.randn(6, 1, 5, 5, generator=torch.Generator().manual_seed(8))
    fig = filters_figure(weight, "conv1", tile_px=60)
    heat = fig.data[0]
    w = weight.numpy()
    # 6 filters in 2 rows of 3 (5×5 tiles, 1-px gutters): filter 4 is row 1, column 1
    assert heat.z.shape == (2 * 6 - 1, 3 * 6 - 1)
    np.testing.assert_array_equal(heat.z[6:11, 6:11], w[4, 0])
    np.testing.assert_array_equal(heat.customdata[8, 9], [4, 0, 2, 3, w[4, 0, 2, 3]])
    assert fig.layout.xaxis.title.text.startswith("6 filters, 3 per row")
    assert fig.layout.height == 2 * 60 + MARGIN["t"] + MARGIN["b"]


def test_long_titles_wrap_at_their_separators() -> None:
    short = "<b>conv1</b> · conv · shape 6 × 28 × 28"
    assert wrap_title(short) == short  # 34 characters without the tags: one line
    long = "<b>Confusion matrix</b> · 917 of 1000 right (91.7%) · validation digits"
    assert wrap_title(long, 44) == (
        "<b>Confusion matrix</b> · 917 of 1000 right (91.7%) ·<br>validation digits"
    )
    assert wrap_title("a · b · c", 1) == "a ·<br>b ·<br>c"  # a part is never split
    layout = base_layout(long, 300)
    assert layout["height"] == 300 + TITLE_LINE_PX  # the plot keeps its 300 − margins
    assert layout["margin"]["t"] == MARGIN["t"] + TITLE_LINE_PX


def test_rgb_filters_normalise_to_the_layer_range() -> None:
    weight = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(7))
    fig = rgb_filters_figure(weight, "conv1")
    image = fig.data[0]
    assert isinstance(image, go.Image)
    w = weight.numpy()
    lo, hi = w.min(), w.max()
    y, x = (1 * 5, 1 * 5)  # filter 4 in a 2×3 grid of 4×4 tiles with 1-px gutters
    expected = np.rint((w[4].transpose(1, 2, 0) - lo) / (hi - lo) * 255)
    np.testing.assert_array_equal(np.asarray(image.z)[y : y + 4, x : x + 4], expected)
    assert "filter 4 · row 0 · col 0" in image.hovertext[y][x]
    assert f"{lo:.3g}" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError, match="RGB"):
        rgb_filters_figure(torch.zeros(2, 1, 3, 3))


def test_softmax_highlights_the_winner_on_a_category_axis() -> None:
    probs = torch.tensor([0.05, 0.02, 0.01, 0.6, 0.1, 0.02, 0.05, 0.05, 0.05, 0.05])
    fig = softmax_figure([str(i) for i in range(10)], probs)
    bars = fig.data[0]
    assert fig.layout.xaxis.type == "category"
    assert list(bars.x) == [str(i) for i in range(10)]
    colours = list(bars.marker.color)
    assert colours[3] == WINNER_COLOUR and colours.count(OTHER_COLOUR) == 9
    np.testing.assert_allclose(bars.y, probs.numpy(), rtol=1e-6)
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert "%{y:.2%}" in bars.hovertemplate
    assert "prediction <b>3</b>" in fig.layout.title.text


def test_softmax_top_and_duplicate_labels() -> None:
    probs = np.array([0.1, 0.3, 0.2, 0.4])
    fig = softmax_figure(["crane", "crane", "kite", "ibis"], probs, top=3)
    bars = fig.data[0]
    assert list(bars.x) == ["ibis", "crane (1)", "kite"]  # best first; duplicates kept apart
    assert bars.marker.color[0] == WINNER_COLOUR
    with pytest.raises(ValueError, match="categories"):
        softmax_figure(["a"], probs)


def test_input_figure_draws_the_box_on_pixel_edges() -> None:
    image = np.arange(28 * 28, dtype=np.int64).reshape(28, 28) % 256
    fig = input_figure(image.astype(np.uint8), box=(3, 4, 10, 9), title="seen")
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, image)
    assert (heat.zmin, heat.zmax) == (0, 255) and first_rgb(heat.colorscale) == "rgb(0, 0, 0)"
    shape = fig.layout.shapes[0]
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (3.5, 8.5, 2.5, 9.5)
    assert fig.layout.title.text == "seen · 28 × 28"
    rgb = input_figure(np.zeros((8, 6, 3), np.uint8))
    assert isinstance(rgb.data[0], go.Image) and not rgb.layout.shapes
    floats = input_figure(np.full((2, 2), 0.5))
    assert (floats.data[0].z == 128).all()


def test_numbers_figure_writes_each_formatted_number() -> None:
    values = np.array([[1.0, -2.5, 0.125], [0.0, 3.14159, -0.004]])
    fig = numbers_figure(values, "products", fmt=".3f")
    heat = fig.data[0]
    assert [list(row) for row in heat.text] == [
        ["1.000", "-2.500", "0.125"],
        ["0.000", "3.142", "-0.004"],
    ]
    assert heat.texttemplate == "%{text}"
    assert heat.zmid == 0 and heat.zmin == -heat.zmax == pytest.approx(-3.14159)
    assert fig.layout.yaxis.scaleanchor == "x"
    assert heat.textfont.color is None  # plotly.js then picks a contrasting colour per cell
    sequential = numbers_figure(np.abs(values), "window", diverging=False)
    assert sequential.data[0].zmid is None and sequential.data[0].zmin == 0
    assert numbers_figure(np.arange(3.0), "row").data[0].z.shape == (1, 3)


# --- on a real capture ---------------------------------------------------------------------


def test_every_lenet_layer_makes_a_serialisable_figure() -> None:
    torch.manual_seed(0)
    model = LeNet5().eval()
    result = capture(model, torch.randn(1, 1, 28, 28))
    built: list[go.Figure] = []
    for layer in result.layers:
        if len(layer.shape) == 3:
            for scale in ("layer", "map"):
                mapped = feature_maps_figure(layer, scale=scale)
                zmid = mapped.figure.data[HEATMAP_CURVE].zmid
                assert zmid == (0 if layer.kind == "conv" else None)  # LeNet pools ReLUs
                built.append(mapped.figure)
        else:
            built.append(vector_figure(layer))
    conv = result.of_kind("conv")[0]
    conv_module = model.get_submodule(str(conv.module))
    assert isinstance(conv_module, torch.nn.Conv2d)
    built.append(filters_figure(conv_module.weight, conv.name))
    built.append(softmax_figure([str(i) for i in range(10)], result.probs))
    built.append(input_figure(np.zeros((28, 28), np.uint8), (0, 0, 5, 5)))
    built.append(numbers_figure(np.eye(5), "kernel"))
    built.append(rgb_filters_figure(torch.randn(4, 3, 3, 3)))
    for fig in built:
        decoded = json.loads(fig.to_json())
        assert decoded["layout"]["template"]["layout"]  # plotly_white travels with it
        assert decoded["layout"]["showlegend"] is False


@pytest.mark.parametrize(
    ("kind", "low"),
    [("conv", 0.5), ("conv", -1.0), ("pool", -1.0), ("pool", 0.0), ("relu", 0.0),
     ("linear", 0.2), ("flatten", -0.3), ("softmax", 0.0), ("add", 0.1)],
)  # fmt: skip
def test_cli_pngs_use_the_apps_colour_rule(kind: str, low: float, tmp_path: Path) -> None:
    """The same layer gets the same scale in the app's figures and the CLI's PNGs."""
    from explorer.figures.render import render_layer_png

    values = torch.linspace(low, low + 2.0, 2 * 5 * 5).reshape(2, 5, 5)
    layer = LayerOutput("x", kind, "Op", None, values)
    used = render_layer_png(layer, tmp_path / "x.png")
    app = feature_maps_figure(layer, clickable=False).scale
    assert used.diverging == app.diverging == layer_can_be_negative(kind, values.numpy())
    assert (tmp_path / "x.png").stat().st_size > 0
