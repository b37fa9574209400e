"""The lab's view-model: settings, the 1-D view's alignment and tables, against numpy/scipy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from explorer.lab import maths
from explorer.views.lab import (
    ConvSettings,
    input_kind,
    link_note,
    mode_positions,
    one_d_view,
    pooled_description,
    pooled_value_text,
    value_table,
)


def lab_text(value: float) -> str:
    """How the lab writes a number, computed here: four decimals, no negative zero."""
    return f"{value + 0.0:.{maths.DECIMALS}f}"


def where(values: np.ndarray, lowest: bool = False) -> str:
    """``"row r, column c"`` of the first largest (or smallest) value, found by numpy."""
    flat = np.argmin(values) if lowest else np.argmax(values)
    row, col = np.unravel_index(int(flat), values.shape)
    return f"row {row}, column {col}"


def test_settings_correlate_as_torch_conv2d() -> None:
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(9, 11)), rng.normal(size=(3, 3))
    settings = ConvSettings(bias=0.5, stride=2, padding=1, boundary="zero")
    expected = F.conv2d(
        torch.from_numpy(image)[None, None],
        torch.from_numpy(kernel)[None, None],
        torch.tensor([0.5], dtype=torch.float64),
        stride=2,
        padding=1,
    )[0, 0].numpy()
    np.testing.assert_allclose(settings.correlate(image, kernel).output, expected, atol=1e-12)


def test_settings_convolve_as_scipy_with_the_same_boundary() -> None:
    rng = np.random.default_rng(1)
    image, kernel = rng.normal(size=(8, 8)), rng.normal(size=(3, 3))
    settings = ConvSettings(padding="same", boundary="reflect")
    expected = scipy.ndimage.convolve(image, kernel, mode="reflect")
    np.testing.assert_allclose(settings.convolve(image, kernel).output, expected, atol=1e-12)


def test_input_kind() -> None:
    assert input_kind(np.array([[0.0, 1.0]])) == "pixels"
    assert input_kind(np.array([[-0.5, 1.0]])) == "signed"
    assert input_kind(np.array([[0.0, 2.0]])) == "signed"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_outputs_line_up_with_the_input_they_are_centred_on(n: int) -> None:
    """An impulse through a symmetric kernel comes out centred on the impulse, in every mode."""
    m, p = 15, 7
    signal = np.zeros(m)
    signal[p] = 1.0
    kernel = np.ones(n)
    modes = {mode: np.convolve(signal, kernel, mode) for mode in ("full", "same", "valid")}
    positions = mode_positions(modes, n)
    for mode, values in modes.items():
        assert len(positions[mode]) == len(values)
        centre = float((positions[mode] * values).sum() / values.sum())
        assert centre == pytest.approx(p), mode


def test_value_table_aligns_series_by_position_and_leaves_gaps_blank() -> None:
    table = value_table(
        {"a": np.array([1.0, 2.0]), "b": np.array([3.0])},
        {"a": np.array([0.0, 1.0]), "b": np.array([0.5])},
    )
    assert table.columns == ["0", "0.5", "1"]
    assert table.rows == {
        "a": ["1.0000", "", "2.0000"],
        "b": ["", "3.0000", ""],
    }


def test_value_table_without_positions_uses_output_indices() -> None:
    table = value_table({"x": np.array([0.25, -0.5, 1.0])})
    assert table.columns == ["0", "1", "2"]
    assert table.rows["x"] == ["0.2500", "-0.5000", "1.0000"]


def test_one_d_view_matches_numpy_and_scipy() -> None:
    view = one_d_view("0 0 1 2 3 2 1 0", "1/4, 1/2, 1/4")
    signal = np.array([0, 0, 1, 2, 3, 2, 1, 0], dtype=float)
    kernel = np.array([0.25, 0.5, 0.25])
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(view.modes[mode], np.convolve(signal, kernel, mode))
    assert view.aligned and view.bounded is not None and view.padded is not None
    for name, values in view.bounded.items():
        np.testing.assert_allclose(values, scipy.ndimage.convolve1d(signal, kernel, mode=name))
    assert len(view.padded_positions) == len(signal) + 2 * view.half
    np.testing.assert_array_equal(view.padded["constant"], np.pad(signal, 1))
    numpy_rows = view.numpy_table().rows
    assert set(numpy_rows) == {"signal", "full", "same", "valid"}
    assert view.numpy_table().columns[0] == "-1"  # full starts one before the signal


def test_one_d_view_with_an_even_kernel_has_no_boundary_modes() -> None:
    view = one_d_view("1 2 3 4", "1 1")
    assert not view.aligned and view.bounded is None and view.padded is None
    assert view.numpy_table().columns == [str(i) for i in range(5)]  # output indices


def test_one_d_view_refuses_text_that_is_not_numbers() -> None:
    with pytest.raises(ValueError):
        one_d_view("1 2 three", "1")


@pytest.mark.parametrize("mode", ["max", "average", "sum"])
def test_pooled_value_text_names_the_value_and_how_it_was_made(mode: str) -> None:
    activated = np.array([[0.0, 3.0, 1.0, 1.0], [2.0, 1.0, 0.0, 4.0]])
    pooled = maths.pool2d(activated, 2, 2, mode)
    window = pooled.window(0, 1)
    text = pooled_value_text(window, mode)
    assert text.startswith("**pooled[0, 1]** = ")
    reducers: dict[str, Callable[[np.ndarray], Any]] = {
        "max": np.max,
        "average": np.mean,
        "sum": np.sum,
    }
    reduce = reducers[mode]
    assert f"**{lab_text(float(reduce(activated[:, 2:])))}**" in text
    if mode == "max":
        assert text.endswith("won by input row 1, column 3")
    else:
        assert "of the 4 values" in text


def test_the_flip_view_differs_where_the_kernel_is_not_symmetric() -> None:
    from explorer.views.lab import flip_view

    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    kernel = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # takes the left
    settings = ConvSettings()
    corr = settings.correlate(image, kernel).output
    shown = flip_view(image, kernel, settings, corr)
    np.testing.assert_array_equal(shown.convolution.output, image[1:4, 2:5])  # flipped: right
    np.testing.assert_array_equal(shown.difference, corr - image[1:4, 2:5])
    assert shown.worst == 2.0 and shown.worst_at == (0, 0) and not shown.symmetric
    box = np.ones((3, 3))
    same = flip_view(image, box, settings, settings.correlate(image, box).output)
    assert same.symmetric and same.worst == 0.0


def test_the_activation_view_draws_both_maps_on_one_scale() -> None:
    from explorer.views.lab import ACTIVATION_LABELS, activation_view

    conv = np.array([[-2.0, 1.0], [3.0, -0.5]])
    relu = activation_view(conv, "relu")
    np.testing.assert_array_equal(relu.after, [[0.0, 1.0], [3.0, 0.0]])
    assert relu.kind == "signed" and relu.negatives == 2 and relu.label == "ReLU"
    assert relu.scale.diverging and (relu.scale.vmin, relu.scale.vmax) == (-3.0, 3.0)
    assert not relu.robust
    positive = activation_view(np.abs(conv), "leaky_relu", 0.2)
    assert positive.kind == "nonnegative" and positive.label == "leaky ReLU"
    assert "0.2" in positive.formula
    assert set(ACTIVATION_LABELS) == set(maths.ACTIVATIONS)


def test_the_pipeline_is_the_photo_through_conv_relu_and_pool() -> None:
    from explorer.views.lab import PIPELINE_KERNEL, named_input, pipeline

    shown = pipeline()
    image = named_input("Photo")
    assert shown.image is image and not image.flags.writeable  # shared, read-only
    conv = maths.correlate2d(image, maths.KERNELS[PIPELINE_KERNEL], padding="same").output
    np.testing.assert_array_equal(shown.conv, conv)
    np.testing.assert_array_equal(shown.pooled, maths.pool2d(np.maximum(conv, 0), 2).output)
    w = image.shape[1]
    assert shown.conv_formula.endswith(f"/ 1⌋ + 1 = {w}") and shown.pad == 1
    assert shown.pool_formula.endswith(f"/ 2⌋ + 1 = {w // 2}")
    assert shown.negatives == int((conv < -1e-9).sum())
    assert pipeline() is shown  # kept for every session


def test_the_activation_views_text_names_each_maps_peak_and_trough() -> None:
    from explorer.views.lab import activation_view

    conv = np.array([[-2.0, 1.0, 0.5], [3.0, -0.5, 0.0]])
    before, after = activation_view(conv, "relu").descriptions()
    assert before.startswith("before: conv output: 2 × 3 map, values −2 to 3")
    assert f"strongest at {where(conv)}, most negative at {where(conv, lowest=True)}" in before
    relu = np.maximum(conv, 0)
    assert after.startswith("after: ReLU: 2 × 3 map, values 0 to 3")
    assert after.endswith(f"strongest at {where(relu)}")  # nothing negative after a ReLU


def test_the_pooled_maps_text_is_the_pooled_maps() -> None:
    rng = np.random.default_rng(5)
    activated = rng.normal(size=(6, 8))
    pooled = maths.pool2d(activated, 2, 2, "average")
    expected = activated.reshape(3, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(pooled.output, expected)
    text = pooled_description(pooled)
    assert text.startswith("average pooled: 3 × 4 map, values ")
    assert f"strongest at {where(expected)}" in text


def test_the_pipelines_text_describes_its_four_maps() -> None:
    from explorer.views.lab import pipeline

    shown = pipeline()
    texts = shown.descriptions()
    maps = (shown.image, shown.conv, shown.rectified, shown.pooled)
    for text, values, name in zip(texts, maps, ["input", "conv", "ReLU", "max-pool"], strict=True):
        assert text.startswith(f"{name}: {values.shape[0]} × {values.shape[1]} map, values ")
        assert f"strongest at {where(values)}" in text
    assert texts[1].endswith(f"most negative at {where(shown.conv, lowest=True)}")


def test_the_1d_charts_text_names_each_lines_peak_by_its_position() -> None:
    view = one_d_view("0 0 1 2 3 2 1 0", "1/4, 1/2, 1/4")
    signal = np.array([0, 0, 1, 2, 3, 2, 1, 0], dtype=float)
    kernel = np.array([0.25, 0.5, 0.25])
    text = view.numpy_description()
    assert text.startswith("signal: 8 values, 0 to 3, largest at position 4; np.convolve full:")
    for mode in ("full", "same", "valid"):
        out = np.convolve(signal, kernel, mode)
        first = {"full": -1, "same": 0, "valid": 1}[mode]  # the kernel's centre, odd kernel
        part = f"np.convolve {mode}: {len(out)} values, {out.min():g} to {out.max():g}"
        assert f"{part}, largest at position {first + int(np.argmax(out))}" in text
    scipy_text = view.scipy_description()
    reflected = scipy.ndimage.convolve1d(signal, kernel, mode="reflect")
    assert "mode='reflect': 8 values" in scipy_text
    assert f"largest at position {int(np.argmax(reflected))}" in scipy_text
    assert scipy_text.count(";") == len(maths.BOUNDARIES)  # the signal, then each mode


def test_the_link_note_says_what_a_link_cannot_carry() -> None:
    box = np.array(maths.KERNELS["box blur (1/9)"])
    assert link_note("7×7 square", "box blur (1/9)", box) is None
    edited = box.copy()
    edited[1, 1] = 0.5
    assert link_note("7×7 square", "box blur (1/9)", edited) == (
        "The link cannot carry the kernel's edited numbers."
    )
    assert link_note("Photo", "custom (edit below)", np.eye(3)) == (
        "The link cannot carry the kernel's edited numbers."
    )
    assert link_note("Draw a digit", "box blur (1/9)", box) == (
        "The link cannot carry your drawing."
    )
    assert link_note("Upload an image", "nonsense", box) == (
        "The link cannot carry your picture or the kernel's edited numbers."
    )
