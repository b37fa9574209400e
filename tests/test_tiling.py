"""Tiling many maps into one image, and the colour-scale rule."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.figures.colour import NAN_INDEX, ColourScale, colour_indices, colour_scale
from explorer.figures.tiling import grid_shape, tile_channels


def test_tiles_hold_each_channel_and_locate_inverts_origin() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(7, 3, 4)).astype(np.float32)
    tiling = tile_channels(maps, gap=1)
    assert (tiling.rows, tiling.cols) == (3, 3)
    assert tiling.image.shape == (3 * 4 - 1, 3 * 5 - 1)
    for channel in range(7):
        y, x = tiling.origin(channel)
        np.testing.assert_array_equal(tiling.image[y : y + 3, x : x + 4], maps[channel])
        assert tiling.locate(y + 2, x + 3) == (channel, 2, 3)
    assert tiling.locate(3, 0) is None  # a gutter row
    y, x = tiling.origin(8)  # past the last channel: empty tile
    assert tiling.locate(y, x) is None
    assert int(np.isnan(tiling.image).sum()) == tiling.image.size - maps.size


def test_grid_shape_is_close_to_square() -> None:
    assert grid_shape(64) == (8, 8)
    assert grid_shape(6) == (2, 3)
    assert grid_shape(1) == (1, 1)
    with pytest.raises(ValueError):
        grid_shape(0)


def test_colour_scale_diverges_around_zero_only_for_signed_values() -> None:
    signed = colour_scale(np.array([-1.0, 3.0, np.nan]))
    assert signed.diverging and (signed.vmin, signed.vmax) == (-3.0, 3.0)
    relu = colour_scale(np.array([0.0, 2.5]), can_be_negative=False)
    assert not relu.diverging and (relu.vmin, relu.vmax) == (0.0, 2.5)
    conv_all_positive = colour_scale(np.array([0.5, 2.0]), can_be_negative=True)
    assert conv_all_positive.diverging and conv_all_positive.vmin == -2.0
    flat = colour_scale(np.zeros(4), can_be_negative=False)
    assert flat.vmax > flat.vmin
    assert signed.label == "diverging, -3 … 0 … 3"


def test_colour_indices_map_the_range_to_the_palette_and_non_finite_to_white() -> None:
    values = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0, 5.0, -7.0, np.nan, np.inf, -np.inf]])
    scale = ColourScale(True, -2.0, 2.0)
    expected = np.floor((np.clip(values, -2.0, 2.0) + 2.0) / 4.0 * 254 + 0.5)  # halves round up
    expected[~np.isfinite(values)] = NAN_INDEX
    got = colour_indices(values, scale)
    assert got.dtype == np.uint8
    assert got.tolist() == expected.astype(np.uint8).tolist()  # 0, 63.5→64, 127, 190.5→191, 254


def test_colour_scale_ignores_infinities_and_nans() -> None:
    scale = colour_scale(np.array([0.5, np.inf, 2.0, np.nan, -np.inf]), can_be_negative=False)
    assert (scale.vmin, scale.vmax) == (0.5, 2.0)
    assert colour_scale(np.array([np.nan, np.inf])) == ColourScale(False, 0.0, 1.0)
