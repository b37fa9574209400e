"""The lab's figures: colour scales, written numbers, coordinates and outlines."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.figures.style import SELECTED_COLOUR
from explorer.lab import figures as lf

RNG = np.random.default_rng(3)


def test_scale_for_each_kind() -> None:
    values = np.array([[-2.0, 0.5], [1.0, 3.0]])
    signed = lf.scale_for(values, "signed")
    assert signed.diverging and (signed.vmin, signed.vmax) == (-3.0, 3.0)  # centred on 0
    plain = lf.scale_for(np.abs(values), "nonnegative")
    assert not plain.diverging and (plain.vmin, plain.vmax) == (0.5, 3.0)
    pixels = lf.scale_for(np.array([[0.2, 0.7]]), "pixels")
    assert (pixels.vmin, pixels.vmax) == (0.0, 1.0)  # pixels always span at least 0…1


def test_robust_scale_ends_at_the_percentile() -> None:
    values = RNG.normal(size=(60, 60))
    values[0, 0] = 1000.0  # one outlier must not wash out the map
    robust = lf.scale_for(values, "signed", robust=True)
    expected = np.percentile(np.abs(values), lf.ROBUST_PERCENTILE)
    assert robust.vmax == pytest.approx(expected) and robust.vmin == pytest.approx(-expected)
    assert robust.vmax < 10


def test_grid_figure_writes_values_and_speaks_in_the_inputs_coordinates() -> None:
    values = np.arange(12, dtype=float).reshape(3, 4) - 5
    figure = lf.grid_figure(values, "padded", "signed", origin=(-1, -1))
    heatmap = figure.data[0]
    np.testing.assert_array_equal(np.asarray(heatmap.z), values)
    assert list(heatmap.x) == [-1, 0, 1, 2] and list(heatmap.y) == [-1, 0, 1]
    assert [list(row) for row in heatmap.text] == [[lf.cell_text(v) for v in row] for row in values]
    assert figure.layout.title.text == "padded · 3 × 4"


def test_outlines_are_drawn_on_cell_edges() -> None:
    box = lf.Outline(1, 2, 3, 5, SELECTED_COLOUR, "dash", False)
    figure = lf.grid_figure(np.zeros((6, 6)), "map", boxes=[box])
    (shape,) = figure.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (1.5, 4.5, 0.5, 2.5)
    assert shape.line.color == SELECTED_COLOUR and shape.line.dash == "dash"
    assert (box.height, box.width) == (2, 3)  # an Outline is a geometry Box


def test_padded_input_outlines_the_original_and_the_patch() -> None:
    padded = np.zeros((9, 9))
    patch = lf.Outline(0, 0, 3, 3)
    figure = lf.padded_input_figure(padded, ((1, 1), (1, 1)), patch)
    original, under_kernel = figure.layout.shapes
    assert (original.x0, original.x1) == (-0.5, 6.5)  # the 7×7 input inside the padding
    assert original.line.dash == "dash"
    assert (under_kernel.x0, under_kernel.x1) == (-0.5, 2.5)


@pytest.mark.parametrize(
    ("value", "text"), [(-0.0, "0"), (1 / 3, "0.3333"), (-2.5, "-2.5"), (12345.0, "1.234e+04")]
)
def test_cell_text(value: float, text: str) -> None:
    assert lf.cell_text(value) == text


def test_pad_text() -> None:
    assert lf.pad_text(((0, 0), (0, 0))) == "no padding"
    assert lf.pad_text(((2, 2), (2, 2))) == "padded by 2 on each side"
    assert lf.pad_text(((0, 1), (0, 1))) == "padded top 0, bottom 1, left 0, right 1"
