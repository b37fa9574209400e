"""Layer-browser figures: the PNG grid, its per-tile hover and clicks, one channel, histograms."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.colors
import pytest
from PIL import Image

from explorer.figures.channels import (
    GRID_CURVE,
    UNIT_CURVE,
    channel_figure,
    channel_grid_figure,
    channel_order,
    page_size,
)
from explorer.figures.charts import weight_histogram_figure
from explorer.figures.colour import ColourScale, colourise
from explorer.figures.selection import channel_from_selection, unit_from_channel_selection


def _png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _rgb(text: str) -> tuple[int, ...]:
    return tuple(
        int(v)
        for v in plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(text)[0][0])
    )


def test_colourise_uses_the_heatmap_colour_scales() -> None:
    diverging = ColourScale(True, -2.0, 2.0)
    rgb = colourise(np.array([[-2.0, 0.0, 2.0, np.nan]]), diverging)
    ends = plotly.colors.get_colorscale("RdBu_r")
    assert tuple(rgb[0, 0]) == _rgb(ends[0][1])  # most negative: the scale's first colour
    assert tuple(rgb[0, 2]) == _rgb(ends[-1][1])
    assert tuple(rgb[0, 1]) == (247, 247, 247)  # 0 is the white middle of RdBu
    assert tuple(rgb[0, 3]) == (255, 255, 255)  # gutters (NaN) are white
    sequential = colourise(np.array([[0.0, 1.0]]), ColourScale(False, 0.0, 1.0))
    viridis = plotly.colors.get_colorscale("Viridis")
    assert tuple(sequential[0, 0]) == _rgb(viridis[0][1])
    assert tuple(sequential[0, 1]) == _rgb(viridis[-1][1])


def test_channel_order_and_page_size() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(12, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(channel_order(values, "index"), np.arange(12))
    means = values.reshape(12, -1).mean(axis=1)
    np.testing.assert_array_equal(channel_order(values, "mean"), np.argsort(-means))
    maxima = values.reshape(12, -1).max(axis=1)
    assert list(maxima[channel_order(values, "max")]) == sorted(maxima, reverse=True)
    with pytest.raises(ValueError, match="sort"):
        channel_order(values, "median")
    assert page_size(112, 112) == 64  # all of ResNet's conv1 on one page
    assert page_size(7, 7) == 256  # 512 channels of 7×7: two pages
    assert page_size(224, 224) == 16


def test_grid_png_is_the_tiled_values_coloured_and_hover_has_channel_stats() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(10, 6, 4)).astype(np.float32)
    shown = [7, 2, 9]
    grid = channel_grid_figure(values, "layer", "conv", shown, scale="layer")
    assert grid.channels == (7, 2, 9)
    image = _png(grid.figure.data[0].source)  # an indexed PNG: its palette is the scale
    assert image.shape == (*grid.tiling.image.shape, 3)
    np.testing.assert_array_equal(image, colourise(grid.tiling.image, grid.scale))
    # one colour scale for the whole layer, symmetric for a conv
    bound = np.abs(values).max()
    assert (grid.scale.vmin, grid.scale.vmax) == pytest.approx((-bound, bound))
    # the first tile holds channel 7
    y, x = grid.tiling.origin(0)
    np.testing.assert_array_equal(grid.tiling.image[y : y + 6, x : x + 4], values[7])
    markers = grid.figure.data[GRID_CURVE]
    stats = np.asarray(markers.customdata)
    np.testing.assert_array_equal(stats[:, 0], shown)
    np.testing.assert_allclose(stats[:, 1], values[shown].reshape(3, -1).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(stats[:, 2], values[shown].reshape(3, -1).max(axis=1), rtol=1e-6)
    # markers sit at the tile centres
    assert markers.x[1] == pytest.approx(grid.tiling.origin(1)[1] + 1.5)
    assert markers.y[1] == pytest.approx(grid.tiling.origin(1)[0] + 2.5)


def test_grid_per_map_scale_and_bad_arguments() -> None:
    values = np.stack([np.full((3, 3), 1.0), np.linspace(0, 10, 9).reshape(3, 3)]).astype(
        np.float32
    )
    grid = channel_grid_figure(values, "relu", "relu", [0, 1], scale="map")
    assert not grid.scale.diverging and (grid.scale.vmin, grid.scale.vmax) == (0.0, 1.0)
    y, x = grid.tiling.origin(1)
    np.testing.assert_allclose(grid.tiling.image[y : y + 3, x : x + 3], values[1] / 10.0)
    with pytest.raises(ValueError, match="channels"):
        channel_grid_figure(values, "relu", "relu", [2])
    with pytest.raises(ValueError, match="map layer"):
        channel_grid_figure(values[0], "relu", "relu", [0])


def test_clicks_map_back_to_channels_and_units() -> None:
    values = np.zeros((8, 4, 4), dtype=np.float32)
    grid = channel_grid_figure(values, "pool", "pool", [5, 3, 1])
    event = {"selection": {"points": [{"curve_number": GRID_CURVE, "point_index": 1}]}}
    assert channel_from_selection(event, grid) == 3
    assert channel_from_selection({"selection": {"points": []}}, grid) is None
    wrong_trace = {"selection": {"points": [{"curve_number": 0, "point_index": 1}]}}
    assert channel_from_selection(wrong_trace, grid) is None
    assert channel_from_selection(None, grid) is None
    click = {"selection": {"points": [{"curve_number": UNIT_CURVE, "point_index": 4 * 2 + 3}]}}
    assert unit_from_channel_selection(click, (4, 4)) == (2, 3)
    outside = {"selection": {"points": [{"curve_number": UNIT_CURVE, "point_index": 16}]}}
    assert unit_from_channel_selection(outside, (4, 4)) is None


def test_channel_figure_stretches_the_map_over_the_input() -> None:
    rng = np.random.default_rng(2)
    channel = rng.normal(size=(56, 56)).astype(np.float32)
    background = np.zeros((224, 224, 3), dtype=np.uint8)
    fig = channel_figure(channel, "layer1", 5, "conv", background, 0.4, box=(10, 20, 17, 27))
    heatmap = fig.data[1]
    assert heatmap.type == "heatmap" and heatmap.opacity == pytest.approx(0.4)
    assert (heatmap.dx, heatmap.dy) == (4.0, 4.0)  # each unit covers 4×4 input pixels
    assert heatmap.x0 == pytest.approx(1.5)  # centre of pixels 0…3
    units = fig.data[UNIT_CURVE]
    custom = np.asarray(units["customdata"])
    index = 10 * 56 + 33
    assert tuple(custom[index, :3]) == (5, 10, 33)
    assert custom[index, 3] == channel[10, 33]
    assert units["x"][index] == pytest.approx(1.5 + 33 * 4)
    shape = fig.layout.shapes[0]
    assert (shape.x0, shape.y0, shape.x1, shape.y1) == (19.5, 9.5, 26.5, 16.5)
    alone = channel_figure(channel, "layer1", 5, "conv")
    assert alone.data[1].dx == 1.0 and np.asarray(alone.data[UNIT_CURVE]["customdata"]).shape == (
        56 * 56,
        4,
    )


def test_weight_histogram_counts_every_weight() -> None:
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(16, 3, 5, 5))
    fig = weight_histogram_figure(weight, "conv1", bins=30)
    counts, edges = np.histogram(weight.ravel(), bins=30)
    np.testing.assert_array_equal(fig.data[0].y, counts)
    np.testing.assert_allclose(fig.data[0].x, (edges[:-1] + edges[1:]) / 2)
    assert sum(fig.data[0].y) == weight.size
    assert "1,200 weights" in fig.layout.title.text
