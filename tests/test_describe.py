"""Text alternatives of maps, filters and predictions (explorer/figures/describe.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from explorer.figures.colour import DIVERGING_COLOURSCALE, SEQUENTIAL_COLOURSCALE
from explorer.figures.describe import (
    PALETTE_WORDS,
    describe_colours,
    describe_confusion,
    describe_curves,
    describe_filters,
    describe_map,
    describe_maps,
    describe_prediction,
    describe_signal,
    describe_signals,
    describe_vector,
    number_text,
)


def test_a_map_names_its_size_range_and_peak() -> None:
    values = np.zeros((24, 24))
    values[12, 7] = 2.87
    values[3, 20] = -0.41
    assert describe_map(values, "conv1 channel 3") == (
        "conv1 channel 3: 24 × 24 map, values −0.41 to 2.87, strongest at row 12, column 7"
    )


def test_the_peak_is_where_a_plain_search_finds_the_largest_value() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(9, 13))
    best = max((values[r, c], r, c) for r in range(9) for c in range(13))
    text = describe_map(values, "m")
    assert text.endswith(f"strongest at row {best[1]}, column {best[2]}")
    assert f"to {number_text(best[0])}," in text
    assert f"values {number_text(values.min())} to" in text


def test_a_rectangular_map_reads_rows_then_columns() -> None:
    values = np.zeros((2, 5))
    values[1, 4] = 1.0
    assert describe_map(values, "m") == "m: 2 × 5 map, values 0 to 1, strongest at row 1, column 4"


def test_a_flat_map_has_no_peak() -> None:
    assert describe_map(np.full((4, 4), 0.5), "relu1 channel 0") == (
        "relu1 channel 0: 4 × 4 map, every value 0.5"
    )


def test_a_stack_of_maps_names_the_channel_of_its_peak() -> None:
    maps = np.zeros((6, 12, 12), dtype=np.float32)
    maps[4, 2, 9] = 3.0
    maps[1, 0, 0] = -1.25
    assert describe_maps(maps, "pool1") == (
        "pool1: 6 maps of 12 × 12, values −1.25 to 3, strongest in channel 4 at row 2, column 9"
    )
    assert describe_maps(maps[:1], "x").startswith("x: 1 map of 12 × 12")


def test_a_vector_names_its_length_range_and_largest_unit() -> None:
    values = np.linspace(-3.1, 1.0, 120)
    values[17] = 5.2
    assert describe_vector(values, "fc1") == ("fc1: 120 values, −3.1 to 5.2, largest at unit 17")
    assert describe_vector(np.zeros(4), "fc2") == "fc2: 4 values, every value 0"


def test_filters_name_the_filter_and_input_channel_of_the_largest_weight() -> None:
    weights = np.zeros((6, 1, 5, 5))
    weights[2, 0, 1, 3] = 0.61
    weights[0, 0, 4, 4] = -0.52
    assert describe_filters(weights, "conv1") == (
        "conv1: 6 filters of 1 × 5 × 5, weights −0.52 to 0.61, largest in filter 2 at row 1, "
        "column 3"
    )
    many = np.zeros((16, 6, 5, 5))
    many[15, 5, 0, 2] = 1.0
    assert describe_filters(many, "conv2").endswith(
        "largest in filter 15 at input channel 5, row 0, column 2"
    )


def test_the_prediction_names_the_top_two_classes() -> None:
    probs = np.array([0.001, 0.02, 0.01, 0.005, 0.004, 0.003, 0.002, 0.941, 0.007, 0.007])
    digits = [str(d) for d in range(10)]
    assert describe_prediction(digits, probs) == "Prediction 7 (94.1%), next 1 (2.0%)"
    assert describe_prediction(["cat"], np.array([1.0])) == "Prediction cat (100.0%)"


def test_numbers_use_a_real_minus_sign_and_three_figures() -> None:
    assert number_text(-0.41234) == "−0.412"
    assert number_text(12345.6) == "12,346"
    assert number_text(2.0) == "2"
    assert number_text(-0.0) == "0"


@pytest.mark.parametrize("value", [999.4, 999.5, 999.7, -999.96, 1000.0, 1234.5, 0.00123, -5e-6])
def test_numbers_near_a_thousand_are_never_written_as_powers(value: float) -> None:
    text = number_text(value)
    assert "e+" not in text  # 999.7 is "1,000", not "1e+03"
    parsed = float(text.replace(",", "").replace("−", "-"))
    # three significant figures below a thousand, whole numbers from it
    assert parsed == pytest.approx(value, rel=5e-3 if abs(parsed) < 1000 else 1e-3, abs=0.5)


@pytest.mark.parametrize("value", [0.25, -0.5, 1 / 3, -2 / 3, 12.0, -1e-7, -0.0, 123456.789])
def test_numbers_with_decimals_are_the_labs_table_cells(value: float) -> None:
    text = number_text(value, 4)
    assert text == f"{round(value, 4) + 0.0:.4f}"  # + 0.0: no negative zero
    assert float(text) == pytest.approx(value, abs=5e-5)  # pastes into Python


def test_non_finite_numbers_are_written_not_raised() -> None:
    assert number_text(float("nan")) == "nan"
    assert number_text(float("-inf")) == "−inf"
    assert number_text(float("inf"), 4) == "inf"


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.zeros((0, 4)), np.zeros((2, 2, 2))])
def test_a_map_that_is_not_a_2d_array_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="map"):
        describe_map(bad, "m")


def test_non_finite_values_are_counted_and_left_out_of_range_and_peak() -> None:
    # a lab kernel of 1e308 overflows some outputs; the rest are still described
    values = np.array([[np.inf, 2.0], [-0.5, np.nan]])
    assert describe_map(values, "m") == (
        "m: 2 × 2 map, 2 non-finite values; finite values −0.5 to 2, strongest at row 0, column 1"
    )
    maps = np.zeros((2, 3, 3))
    maps[0, 0, 0] = -np.inf
    maps[1, 2, 1] = 4.0
    assert describe_maps(maps, "L") == (
        "L: 2 maps of 3 × 3, 1 non-finite value; finite values 0 to 4, strongest in channel 1 at "
        "row 2, column 1"
    )


def test_all_non_finite_is_said_in_words() -> None:
    # a model that diverged in training: every output NaN
    nan = np.full((4, 4), np.nan)
    assert describe_map(nan, "m") == "m: 4 × 4 map, every value non-finite (NaN or infinite)"
    assert describe_maps(nan[None], "L").endswith("every value non-finite (NaN or infinite)")
    assert describe_vector(np.array([np.inf, np.nan]), "fc").startswith("fc: 2 values, every")
    weights = np.full((2, 1, 3, 3), np.nan)
    assert describe_filters(weights, "conv1") == (
        "conv1: 2 filters of 1 × 3 × 3, every weight non-finite (NaN or infinite)"
    )
    assert describe_prediction(["a", "b"], np.array([np.nan, np.nan])) == (
        "No prediction: every probability is non-finite (NaN or infinite)"
    )


def test_a_prediction_ranks_only_finite_probabilities() -> None:
    probs = np.array([np.nan, 0.25, 0.75])
    assert describe_prediction(["a", "b", "c"], probs) == "Prediction c (75.0%), next b (25.0%)"
    assert describe_prediction(["a", "b"], np.array([np.nan, 0.5])) == "Prediction b (50.0%)"


def test_a_constant_finite_part_names_no_peak() -> None:
    values = np.array([[np.nan, 3.0], [3.0, 3.0]])
    assert describe_map(values, "m") == "m: 2 × 2 map, 1 non-finite value; finite values 3"


def test_a_prediction_with_mismatched_categories_is_refused() -> None:
    with pytest.raises(ValueError, match="2 categories for 3"):
        describe_prediction(["a", "b"], np.array([0.2, 0.3, 0.5]))


def test_a_signed_map_also_names_its_most_negative_place() -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(size=(7, 9))
    values[2, 3] = np.nan  # left out, never the peak or the trough
    finite = np.where(np.isfinite(values), values, 0)
    high = np.unravel_index(int(np.argmax(np.where(np.isfinite(values), values, -np.inf))), (7, 9))
    low = np.unravel_index(int(np.argmin(np.where(np.isfinite(values), values, np.inf))), (7, 9))
    text = describe_map(values, "IG", negative=True)
    assert text.startswith("IG: 7 × 9 map, 1 non-finite value; finite values ")
    assert text.endswith(
        f"strongest at row {high[0]}, column {high[1]}, most negative at row {low[0]}, "
        f"column {low[1]}"
    )
    assert f"values {number_text(finite.min())} to" in text
    assert "most negative" not in describe_map(np.abs(values), "m", negative=True)
    assert "most negative" not in describe_map(values, "m")  # only when asked


def test_a_signal_names_its_peak_by_its_position_on_the_axis() -> None:
    values = np.array([0.0, 0.25, 0.75, 1.0, 0.75])
    positions = np.arange(5) - 1.5
    assert describe_signal(values, "full", positions) == (
        f"full: 5 values, 0 to 1, largest at position {positions[int(np.argmax(values))]:g}"
    )
    # left of the axis' zero: a real minus sign, as in the values
    assert describe_signal(values[::-1], "left", positions).endswith("largest at position −0.5")
    assert describe_signal(values, "s") == "s: 5 values, 0 to 1, largest at position 3"
    assert describe_signal(np.ones(3), "flat") == "flat: 3 values, every value 1"
    both = describe_signals({"a": values, "b": -values}, {"a": positions})
    assert both.split("; ")[1] == "b: 5 values, −1 to 0, largest at position 0"
    with pytest.raises(ValueError, match="2 positions for 5 values"):
        describe_signal(values, "x", np.zeros(2))


def test_a_signal_with_nan_is_described() -> None:
    text = describe_signal(np.array([np.nan, 2.0, np.inf, 1.0]), "x")
    assert text == "x: 4 values, 2 non-finite values; finite values 1 to 2, largest at position 1"


def test_every_palette_the_app_draws_with_has_words() -> None:
    for palette in (DIVERGING_COLOURSCALE, SEQUENTIAL_COLOURSCALE):
        assert palette in PALETTE_WORDS
    text = describe_colours(DIVERGING_COLOURSCALE, -0.3, 0.3, 0.6)
    assert text == (
        f"Colours: {PALETTE_WORDS[DIVERGING_COLOURSCALE]} (−0.3 to 0.3), over the input at "
        "60% opacity"
    )
    assert describe_colours("Magma", 0, 1) == (
        "Colours: Magma, from its first colour (lowest) to its last (0 to 1)"
    )


@dataclass(frozen=True)
class FakePoint:
    step: int
    epoch: float
    train_loss: float
    val_loss: float
    val_accuracy: float


def test_the_curves_name_the_last_point_and_the_best_accuracy() -> None:
    points = [
        FakePoint(250, 1.0, 0.41, 0.30, 0.912),
        FakePoint(500, 2.0, 0.15, 0.11, 0.9745),
        FakePoint(750, 3.0, 0.12, 0.09, 0.971),
    ]
    best = int(np.argmax([p.val_accuracy for p in points]))
    assert describe_curves(points) == (
        "Held-out accuracy 97.1% after epoch 3 (step 750; train loss 0.12, held-out loss "
        f"0.09); best 97.5% at step {points[best].step}"
    )
    assert describe_curves(points[:1]).endswith("held-out loss 0.3)")  # one point: no best
    assert describe_curves([]).startswith("No learning curves yet")


def test_curves_of_a_diverged_run_are_described() -> None:
    nan = float("nan")
    points = [FakePoint(10, 0.53, 2.2, 2.1, 0.2), FakePoint(20, 1.06, nan, nan, nan)]
    assert describe_curves(points) == (
        "Held-out accuracy non-finite after epoch 1.06 (step 20; train loss non-finite (NaN or "
        "infinite), held-out loss non-finite (NaN or infinite)); best 20.0% at step 10"
    )


def test_the_confusion_matrix_names_its_most_confused_pair() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.integers(0, 9, size=(10, 10)) + np.diag(rng.integers(80, 120, size=10))
    names = [str(d) for d in range(10)]
    wrong = matrix.copy()
    np.fill_diagonal(wrong, -1)
    true, predicted = np.unravel_index(int(np.argmax(wrong)), wrong.shape)
    right, total = int(np.trace(matrix)), int(matrix.sum())
    assert describe_confusion(matrix, names) == (
        f"Confusion matrix: {right:,} of {total:,} right ({100 * right / total:.1f}%); most "
        f"confused: true {true} read as {predicted} ({wrong.max()} times)"
    )
    perfect = np.diag([5, 3])
    assert describe_confusion(perfect, ["cat", "dog"]) == (
        "Confusion matrix: 8 of 8 right (100.0%); no mistakes"
    )
    once = np.array([[5, 0], [1, 3]])
    assert describe_confusion(once, ["cat", "dog"]).endswith("true dog read as cat (1 time)")


def test_a_confusion_matrix_with_nan_or_nothing_is_described() -> None:
    matrix = np.array([[4.0, np.nan], [2.0, 3.0]])
    assert describe_confusion(matrix, ["a", "b"]) == (
        "Confusion matrix: 7 of 9 right (77.8%), 1 non-finite cell left out; most confused: "
        "true b read as a (2 times)"
    )
    assert describe_confusion(np.zeros((2, 2)), ["a", "b"]) == (
        "Confusion matrix: 0 of 0 right; no mistakes"
    )


@pytest.mark.parametrize(
    ("matrix", "names"), [(np.zeros((2, 3)), ["a", "b"]), (np.zeros((2, 2)), ["a"])]
)
def test_a_confusion_matrix_that_does_not_fit_its_names_is_refused(
    matrix: np.ndarray, names: list[str]
) -> None:
    with pytest.raises(ValueError, match="square with a name per row"):
        describe_confusion(matrix, names)
