"""The app builds figures without plotly's validation; they must be what validation gives.

Every builder is run twice, with ``EXPLORER_VALIDATE_FIGURES`` off (as the app runs) and on
(as the rest of the tests run), and the JSON that ``st.plotly_chart`` would send compared.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from explorer.analysis.capture import LayerOutput
from explorer.bench.library import streamlit_spec
from explorer.figures.channels import channel_figure, channel_grid_figure
from explorer.figures.charts import (
    filters_figure,
    rgb_filters_figure,
    softmax_figure,
    top_classes_figure,
    vector_figure,
    weight_histogram_figure,
)
from explorer.figures.maps import feature_maps_figure, input_figure, numbers_figure
from explorer.figures.style import VALIDATE_ENV, PlainFigure

RNG = np.random.default_rng(0)
CONV = LayerOutput(
    "conv1",
    "conv",
    "Conv2d",
    "conv1",
    torch.from_numpy(RNG.normal(size=(6, 12, 12)).astype(np.float32)),
)
RELU = LayerOutput("relu1", "relu", "ReLU", "relu1", CONV.tensor.clamp(min=0))
FC = LayerOutput(
    "fc3", "linear", "Linear", "fc3", torch.from_numpy(RNG.normal(size=10).astype(np.float32))
)
DIGITS = [str(i) for i in range(10)]
PROBS = np.linspace(0.01, 0.19, 10) / np.linspace(0.01, 0.19, 10).sum()
GRAY = RNG.integers(0, 255, (28, 28)).astype(np.uint8)
RGB = RNG.integers(0, 255, (24, 24, 3)).astype(np.uint8)
PATCH = RNG.normal(size=(5, 5))
KERNELS = RNG.normal(size=(4, 3, 5, 5))
WEIGHTS = RNG.normal(size=300)

BUILDERS: dict[str, Callable[[], Any]] = {
    "feature_maps": lambda: feature_maps_figure(CONV).figure,
    "feature_maps_map_scale": lambda: (
        feature_maps_figure(RELU, scale="map", clickable=False).figure
    ),
    "vector": lambda: vector_figure(FC, DIGITS),
    "softmax": lambda: softmax_figure(DIGITS, PROBS),
    "top_classes": lambda: top_classes_figure(DIGITS, PROBS, 5),
    "input_gray": lambda: input_figure(GRAY, (1, 2, 6, 7)),
    "input_rgb": lambda: input_figure(RGB),
    "numbers": lambda: numbers_figure(PATCH, "patch"),
    "filters": lambda: filters_figure(KERNELS, "conv1"),
    "rgb_filters": lambda: rgb_filters_figure(KERNELS, "conv1"),
    "grid": lambda: channel_grid_figure(CONV.numpy(), "conv1", "conv", [3, 1, 0]).figure,
    "channel": lambda: channel_figure(CONV.numpy()[2], "conv1", 2, "conv", RGB, 0.5, (0, 0, 3, 3)),
    "histogram": lambda: weight_histogram_figure(WEIGHTS, "conv1"),
}


def _plain(value: Any) -> Any:
    """JSON with plotly's base64 typed arrays decoded to lists, so both encodings compare."""
    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            if "shape" in value:
                shape = [int(n) for n in str(value["shape"]).split(",")]
                array = array.reshape(shape)
            return _plain(array.astype(np.float64).tolist())
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and np.isnan(value):
        return "NaN"  # NaN != NaN: compare it as a marker
    return value


@pytest.mark.parametrize("name", list(BUILDERS))
def test_unvalidated_figure_sends_what_validation_would(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VALIDATE_ENV, "1")
    validated = _plain(json.loads(streamlit_spec(BUILDERS[name]())))
    monkeypatch.setenv(VALIDATE_ENV, "0")
    fast = _plain(json.loads(streamlit_spec(BUILDERS[name]())))
    assert fast == validated
    assert "plot_bgcolor" not in json.dumps(fast["layout"]["template"])  # not plotly's default


def test_plain_figure_is_sent_as_is_and_still_a_full_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VALIDATE_ENV, "0")
    figure = feature_maps_figure(CONV).figure
    assert isinstance(figure, PlainFigure)
    spec = figure.to_dict()
    assert figure.to_dict() is spec  # what st.plotly_chart serialises, no copy
    z = spec["data"][0]["z"]
    assert set(z) >= {"dtype", "bdata"}  # big arrays go as base64 typed arrays
    # plotly.py's API still works: the full figure is built on first use …
    assert figure.data[0].type == "heatmap"
    np.testing.assert_array_equal(
        np.asarray(figure.data[0].z, dtype=np.float32)[:12, :12], CONV.numpy()[0]
    )
    figure.update_layout(height=123)
    # … and from then on to_dict() follows its changes
    assert figure.to_dict()["layout"]["height"] == 123


@pytest.mark.parametrize("built", [False, True])
def test_plain_figure_copies_and_pickles(built: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy
    import pickle

    monkeypatch.setenv(VALIDATE_ENV, "0")
    figure = softmax_figure(DIGITS, PROBS)
    if built:
        figure.update_layout(height=321)
    sent = json.loads(streamlit_spec(figure))
    for twin in (copy.deepcopy(figure), pickle.loads(pickle.dumps(figure))):
        assert _plain(json.loads(streamlit_spec(twin))) == _plain(sent)
    assert "_grid_str" not in figure.to_dict()  # the shared spec is left as it was
