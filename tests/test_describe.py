"""Text alternatives of maps, filters and predictions (explorer/figures/describe.py)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.figures.describe import (
    describe_filters,
    describe_map,
    describe_maps,
    describe_prediction,
    describe_vector,
    number,
)


def test_a_map_names_its_size_range_and_peak() -> None:
    values = np.zeros((24, 24))
    values[12, 7] = 2.87
    values[3, 20] = -0.41
    assert describe_map(values, "conv1 channel 3") == (
        "conv1 channel 3: 24×24 map, values −0.41 to 2.87, strongest at row 12, column 7"
    )


def test_the_peak_is_where_a_plain_search_finds_the_largest_value() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(9, 13))
    best = max((values[r, c], r, c) for r in range(9) for c in range(13))
    text = describe_map(values, "m")
    assert text.endswith(f"strongest at row {best[1]}, column {best[2]}")
    assert f"to {number(best[0])}," in text
    assert f"values {number(values.min())} to" in text


def test_a_rectangular_map_reads_rows_then_columns() -> None:
    values = np.zeros((2, 5))
    values[1, 4] = 1.0
    assert describe_map(values, "m") == "m: 2×5 map, values 0 to 1, strongest at row 1, column 4"


def test_a_flat_map_has_no_peak() -> None:
    assert describe_map(np.full((4, 4), 0.5), "relu1 channel 0") == (
        "relu1 channel 0: 4×4 map, every value 0.5"
    )


def test_a_stack_of_maps_names_the_channel_of_its_peak() -> None:
    maps = np.zeros((6, 12, 12), dtype=np.float32)
    maps[4, 2, 9] = 3.0
    maps[1, 0, 0] = -1.25
    assert describe_maps(maps, "pool1") == (
        "pool1: 6 maps of 12×12, values −1.25 to 3, strongest in channel 4 at row 2, column 9"
    )
    assert describe_maps(maps[:1], "x").startswith("x: 1 map of 12×12")


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
        "conv1: 6 filters of 1×5×5, weights −0.52 to 0.61, largest in filter 2 at row 1, column 3"
    )
    many = np.zeros((16, 6, 5, 5))
    many[15, 5, 0, 2] = 1.0
    assert describe_filters(many, "conv2").endswith(
        "largest in filter 15 at input channel 5, row 0, column 2"
    )


def test_the_prediction_names_the_top_two_classes() -> None:
    probs = np.array([0.001, 0.02, 0.01, 0.005, 0.004, 0.003, 0.002, 0.941, 0.007, 0.007])
    digits = [str(d) for d in range(10)]
    assert describe_prediction(digits, probs) == "Prediction 7 (94.1 %), next 1 (2.0 %)"
    assert describe_prediction(["cat"], np.array([1.0])) == "Prediction cat (100.0 %)"


def test_numbers_use_a_real_minus_sign_and_three_figures() -> None:
    assert number(-0.41234) == "−0.412"
    assert number(12345.6) == "12,346"
    assert number(2.0) == "2"


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.zeros((0, 4)), np.zeros((2, 2, 2))])
def test_a_map_that_is_not_a_2d_array_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="map"):
        describe_map(bad, "m")


def test_non_finite_values_are_counted_and_left_out_of_range_and_peak() -> None:
    # a lab kernel of 1e308 overflows some outputs; the rest are still described
    values = np.array([[np.inf, 2.0], [-0.5, np.nan]])
    assert describe_map(values, "m") == (
        "m: 2×2 map, 2 non-finite values; finite values −0.5 to 2, strongest at row 0, column 1"
    )
    maps = np.zeros((2, 3, 3))
    maps[0, 0, 0] = -np.inf
    maps[1, 2, 1] = 4.0
    assert describe_maps(maps, "L") == (
        "L: 2 maps of 3×3, 1 non-finite value; finite values 0 to 4, strongest in channel 1 at "
        "row 2, column 1"
    )


def test_all_non_finite_is_said_in_words() -> None:
    # a model that diverged in training: every output NaN
    nan = np.full((4, 4), np.nan)
    assert describe_map(nan, "m") == "m: 4×4 map, every value non-finite (NaN or infinite)"
    assert describe_maps(nan[None], "L").endswith("every value non-finite (NaN or infinite)")
    assert describe_vector(np.array([np.inf, np.nan]), "fc").startswith("fc: 2 values, every")
    weights = np.full((2, 1, 3, 3), np.nan)
    assert describe_filters(weights, "conv1") == (
        "conv1: 2 filters of 1×3×3, every weight non-finite (NaN or infinite)"
    )
    assert describe_prediction(["a", "b"], np.array([np.nan, np.nan])) == (
        "No prediction: every probability is non-finite (NaN or infinite)"
    )


def test_a_prediction_ranks_only_finite_probabilities() -> None:
    probs = np.array([np.nan, 0.25, 0.75])
    assert describe_prediction(["a", "b", "c"], probs) == "Prediction c (75.0 %), next b (25.0 %)"
    assert describe_prediction(["a", "b"], np.array([np.nan, 0.5])) == "Prediction b (50.0 %)"


def test_a_constant_finite_part_names_no_peak() -> None:
    values = np.array([[np.nan, 3.0], [3.0, 3.0]])
    assert describe_map(values, "m") == "m: 2×2 map, 1 non-finite value; finite values 3"


def test_a_prediction_with_mismatched_categories_is_refused() -> None:
    with pytest.raises(ValueError, match="2 categories for 3"):
        describe_prediction(["a", "b"], np.array([0.2, 0.3, 0.5]))
