"""The Draw page in AppTest: canvas input, gallery, prediction, every stage, click-a-unit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from PIL import Image
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Node
from torch import nn

from explorer.hosting.addresses import DRAW_CANVAS_KEY
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value, parse_drawing, render_drawing
from explorer.models.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "assets" / "digits"
CANVAS_KEY = DRAW_CANVAS_KEY


def canvas_value(digit: str | None) -> dict[str, Any]:
    """What the canvas component holds in session state after drawing ``digit``'s strokes."""
    strokes = [] if digit is None else DIGIT_STROKES[digit]
    return {"drawing": drawing_value(strokes)}


def drawn(digit: str) -> Image.Image:
    """The canvas's strokes for ``digit`` as the server paints them (280×280, white on black)."""
    return render_drawing(parse_drawing(drawing_value(DIGIT_STROKES[digit])))


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=90)
    return at.run()


def stage_charts(at: AppTest) -> list[Node]:
    return [c for c in at.get("plotly_chart") if str(c.proto.id).find("stage_") >= 0]


def test_empty_canvas_shows_a_hint_not_a_prediction(app: AppTest) -> None:
    assert not app.exception
    assert len(app.metric) == 0
    assert any("Draw a digit" in info.value for info in app.info)
    app.session_state[CANVAS_KEY] = canvas_value(None)
    app.run()
    assert not app.exception
    assert len(app.metric) == 0
    assert any("Nothing drawn" in info.value for info in app.info)


@pytest.mark.parametrize("digit", sorted(DIGIT_STROKES))
def test_drawn_digit_is_predicted_with_every_stage(app: AppTest, digit: str) -> None:
    app.session_state[CANVAS_KEY] = canvas_value(digit)
    app.run()
    assert not app.exception
    assert app.metric[0].label == "Prediction"
    assert app.metric[0].value == digit
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(drawn(digit)))
    assert app.metric[0].delta == f"{float(result.probs.max()):.1%} probability"
    assert len(stage_charts(app)) == len(result.layers) + 1 == 14  # the input, then every layer


def test_gallery_and_harley(app: AppTest) -> None:
    app.segmented_control(key="draw_source").set_value("Sample digit").run()
    picker = app.selectbox(key="draw_sample")
    for index in (0, 13, 29):
        app = picker.select_index(index).run()
        assert not app.exception
        chosen = app.selectbox(key="draw_sample").value
        assert chosen is not None
        label = chosen.split()[0]
        assert app.metric[0].value == label
        picker = app.selectbox(key="draw_sample")
    app.segmented_control(key="draw_model").set_value("harley").run()
    assert not app.exception
    chosen = app.selectbox(key="draw_sample").value
    assert chosen is not None
    assert app.metric[0].value == chosen.split()[0]
    assert any("32×32" in (img.proto.imgs[0].caption or "") for img in app.get("image"))


def test_clicked_conv_unit_shows_its_arithmetic(app: AppTest) -> None:
    app.session_state[CANVAS_KEY] = canvas_value("0")
    app.session_state["draw_unit"] = ("conv2", 3, 4, 5)
    app.run()
    assert not app.exception
    loaded = load_model("lenet5")
    prepared = loaded.prepare(drawn("0"))
    result = loaded.capture(prepared)
    pool1 = result["pool1"].tensor.double()[None]
    conv = loaded.model.get_submodule("conv2")
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    expected = F.conv2d(pool1, conv.weight.double(), conv.bias.double())[0, 3, 4, 5].item()
    text = " ".join(m.value for m in app.markdown)
    assert f"= **{expected:.4f}**" in text
    assert f"conv2[3, 4, 5] = {result['conv2'].tensor[3, 4, 5].item():.4f}" in text
    # the sum of the products shown plus the bias is the value
    window = pool1[0, :, 4:9, 5:10]
    products = (window * conv.weight.double()[3]).sum().item()
    assert f"Σ products = {products:.4f}" in text
    assert f"bias {conv.bias[3].item():.4f}" in text


def test_clicked_pool_unit_names_the_winner(app: AppTest) -> None:
    app.session_state[CANVAS_KEY] = canvas_value("0")
    app.session_state["draw_unit"] = ("pool1", 2, 7, 6)
    app.run()
    assert not app.exception
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(drawn("0")))
    window = result["relu1"].tensor[2, 14:16, 12:14]
    text = " ".join(m.value for m in app.markdown)
    assert f"**{window.max().item():.4f}**" in text
    assert np.isclose(window.max().item(), result["pool1"].tensor[2, 7, 6].item())


def test_activations_npz_holds_every_layer() -> None:
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(DIGITS / "2_0.png"))
    arrays = np.load(io.BytesIO(result.to_npz()))
    assert set(arrays.files) == {"input", *result.names}
    for layer in result.layers:
        np.testing.assert_array_equal(arrays[layer.name], layer.tensor.numpy())
    np.testing.assert_array_equal(arrays["input"], result.input.numpy())


def _click(at: AppTest, stage: int, channel: int, row: int, col: int) -> None:
    """What the browser sends when a pixel of stage ``stage``'s chart is clicked."""
    point = {"customdata": [channel, row, col, 0.0], "curve_number": 1, "point_index": 0}
    at.session_state[f"stage_{stage}"] = {"selection": {"points": [point], "box": [], "lasso": []}}
    at.run()


def test_clicking_one_map_then_another_explains_the_latest_click(app: AppTest) -> None:
    app.session_state[CANVAS_KEY] = canvas_value("7")
    app.run()
    _click(app, 0, 1, 9, 10)  # conv1
    assert not app.exception
    headers = [m.value for m in app.markdown if m.value.startswith("#### Unit")]
    assert len(headers) == 1 and headers[0].startswith("#### Unit conv1[1, 9, 10]")
    _click(app, 2, 4, 3, 5)  # then pool1: its old conv1 selection must not win
    assert not app.exception
    headers = [m.value for m in app.markdown if m.value.startswith("#### Unit")]
    assert len(headers) == 1 and headers[0].startswith("#### Unit pool1[4, 3, 5]")
    app.button(key="draw_unit_close").click().run()
    assert not app.exception
    assert not [m.value for m in app.markdown if m.value.startswith("#### Unit")]
