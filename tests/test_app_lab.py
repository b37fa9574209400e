"""The Convolution lab in AppTest: the numbers each view shows, checked against torch / scipy."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.lab import maths as lab

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "assets" / "photos" / "grace_hopper.jpg"
EDGE = "edge: outline (8-centre)"


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "lab.py"), default_timeout=90)
    return at.run()


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def output_size(at: AppTest) -> tuple[int, int]:
    found = re.search(r"\*\*Output size\*\* → \*\*(\d+) × (\d+)\*\*", markdown(at))
    assert found, markdown(at)
    return int(found.group(1)), int(found.group(2))


def step_value(at: AppTest, row: int, col: int) -> tuple[float, float, float]:
    """Σ products, bias and output value of the step-through, as shown."""
    found = re.search(
        rf"\*\*output\[{row}, {col}\]\*\* = Σ products \+ bias = (\S+) \+ (\S+) = \*\*(\S+)\*\*",
        markdown(at),
    )
    assert found, markdown(at)
    return float(found.group(1)), float(found.group(2)), float(found.group(3))


def torch_value(
    image: np.ndarray, kernel: np.ndarray, bias: float, stride: int, pad: int, row: int, col: int
) -> float:
    """Torch's conv2d of ``image`` (``(H, W)`` or ``(C, H, W)``) at one position."""
    x = torch.from_numpy(image if image.ndim == 3 else image[None])[None]
    w = torch.from_numpy(np.broadcast_to(kernel, (x.shape[1], *kernel.shape)).copy())[None]
    b = torch.tensor([bias], dtype=torch.float64)
    out = F.conv2d(x, w, b, stride=stride, padding=pad)
    return float(out[0, 0, row, col])


def tables(at: AppTest) -> list[pd.DataFrame]:
    """The read-only tables, in page order (AppTest keeps no key for them)."""
    return [d.value for d in at.dataframe if d.editing_mode == "read_only"]


def editor_key(at: AppTest) -> str:
    """The kernel table's key (it names the preset, so edits belong to one kernel)."""
    (editor,) = at.data_editor
    assert editor.key is not None and editor.key.startswith("lab_kernel_editor_")
    return editor.key


def test_default_is_the_box_blurred_square(app: AppTest) -> None:
    assert not app.exception
    assert output_size(app) == (5, 5)
    text = markdown(app)
    assert "rows: ⌊(W − F + 2P) / S⌋ + 1 = ⌊(7 − 3 + 2·0) / 1⌋ + 1 = 5" in text
    total, bias, value = step_value(app, 0, 0)
    assert (total, bias, value) == (0.1111, 0.0, 0.1111)
    assert "Σ products = 0·0.1111 + 0·0.1111" in " ".join(c.value for c in app.caption)
    app.slider(key="lab_row").set_value(2).run()
    app.slider(key="lab_col").set_value(1).run()
    assert step_value(app, 2, 1)[2] == pytest.approx(6 / 9, abs=5e-5)
    table = tables(app)[0]
    assert table.shape == (5, 5) and table.iloc[2, 2] == 1.0


def test_teaching_binary_picks_the_x_kernel_and_gives_the_classic_map(app: AppTest) -> None:
    app.selectbox(key="lab_input").set_value("5×5 binary").run()
    assert not app.exception
    assert app.selectbox(key="lab_kernel").value == "X (teaching)"
    assert output_size(app) == (3, 3)
    expected = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    np.testing.assert_array_equal(tables(app)[0], expected)
    app.slider(key="lab_row").set_value(1).run()
    app.slider(key="lab_col").set_value(0).run()
    assert step_value(app, 1, 0) == (2.0, 0.0, 2.0)


def expected_photo_map(case: str, photo: np.ndarray, kernel: np.ndarray, bias: float) -> np.ndarray:
    """The feature map each case should give, from torch or scipy (not from explorer.lab.maths)."""
    x = torch.from_numpy(photo)[None, None]
    w = torch.from_numpy(kernel.copy())[None, None]
    b = torch.tensor([bias], dtype=torch.float64)
    if case == "stride 2, padding 1, zero":
        return F.conv2d(x, w, b, stride=2, padding=1)[0, 0].numpy()
    if case == "stride 1, same, reflect":
        reflected: np.ndarray = ndi.correlate(photo, kernel, mode="reflect") + bias
        return reflected
    if case == "stride 2, same, zero":  # one pixel of padding, after: centres 1, 3, …, 299
        zeroed: np.ndarray = ndi.correlate(photo, kernel, mode="constant") + bias
        return zeroed[1::2, 1::2]
    if case == "stride 1, full, wrap":
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="circular"), w, b)[0, 0].numpy()
    raise AssertionError(case)


CASES = {
    "stride 2, padding 1, zero": (2, "number", "zero"),
    "stride 1, same, reflect": (1, "same", "reflect"),
    "stride 2, same, zero": (2, "same", "zero"),
    "stride 1, full, wrap": (1, "full", "wrap"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_photo_output_size_and_step_match_torch_and_scipy(app: AppTest, case: str) -> None:
    stride, padding, boundary = CASES[case]
    app.selectbox(key="lab_input").set_value("Photo").run()
    assert app.selectbox(key="lab_kernel").value == EDGE  # picked for photos
    app.selectbox(key="lab_kernel").set_value("Sobel x")
    app.slider(key="lab_stride").set_value(stride)
    app.selectbox(key="lab_padding").set_value(padding).run()
    if padding == "number":
        app.number_input(key="lab_pad_pixels").set_value(1)
    app.selectbox(key="lab_boundary").set_value(boundary)
    app.number_input(key="lab_bias").set_value(0.25).run()
    assert not app.exception
    photo = lab.prepare_image(PHOTO, side=300)
    expected = expected_photo_map(case, photo, lab.KERNELS["Sobel x"], 0.25)
    rows, cols = expected.shape
    assert output_size(app) == (rows, cols)
    text = markdown(app)
    assert f"⌋ + 1 = {rows}  \ncolumns: ⌊" in text
    assert f"⌋ + 1 = {cols}" in text.split("columns:")[1]
    row, col = rows // 3, cols - 1  # the last column touches the padding
    app.slider(key="lab_row").set_value(row).run()
    app.slider(key="lab_col").set_value(col).run()
    total, bias, value = step_value(app, row, col)
    assert bias == 0.25
    assert value == pytest.approx(expected[row, col], abs=1e-4)
    assert value == pytest.approx(total + bias, abs=2e-4)


def test_rgb_depth_sums_three_channels(app: AppTest) -> None:
    app.selectbox(key="lab_input").set_value("Photo").run()
    app.radio(key="lab_channel").set_value("rgb").run()
    assert not app.exception
    app.slider(key="lab_row").set_value(120).run()
    app.slider(key="lab_col").set_value(150).run()
    rgb = lab.prepare_image(PHOTO, side=300, channel="rgb")
    want = torch_value(rgb, lab.KERNELS[EDGE], 0.0, 1, 1, 120, 150)
    assert step_value(app, 120, 150)[2] == pytest.approx(want, abs=1e-4)
    patches = [c for c in app.get("plotly_chart") if "lab_step_patch_" in str(c.proto.id)]
    assert len(patches) == 3


def test_custom_kernel_edit_and_a_kernel_too_big(app: AppTest) -> None:
    app.selectbox(key="lab_input").set_value("5×5 binary").run()
    app.selectbox(key="lab_kernel").set_value("identity").run()
    app.session_state[editor_key(app)] = {
        "edited_rows": {0: {"0": 2.0}},
        "added_rows": [],
        "deleted_rows": [],
    }
    app.run()
    assert not app.exception
    kernel = lab.KERNELS["identity"].copy()
    kernel[0, 0] = 2.0
    want = lab.correlate2d(lab.teaching_binary(), kernel).output
    np.testing.assert_array_equal(tables(app)[0], want)
    app.selectbox(key="lab_kernel").set_value("custom (edit below)").run()
    app.segmented_control(key="lab_kernel_size").set_value(7).run()
    assert not app.exception
    assert any("larger than the padded input" in w.value for w in app.warning)
    app.selectbox(key="lab_padding").set_value("same").run()
    assert output_size(app) == (5, 5)


def test_play_moves_the_kernel_one_step_per_run(app: AppTest) -> None:
    app.toggle(key="lab_play").set_value(True).run()
    assert not app.exception
    assert (app.slider(key="lab_row").value, app.slider(key="lab_col").value) == (0, 0)
    for col in (1, 2, 3, 4):
        app.run()
        assert app.slider(key="lab_col").value == col
    app.run()  # past the end of the row: the next row
    assert (app.slider(key="lab_row").value, app.slider(key="lab_col").value) == (1, 0)
    assert step_value(app, 1, 0)[2] == pytest.approx(2 / 9, abs=5e-5)  # (2, 2) and (3, 2)


def test_flip_shows_where_convolution_differs(app: AppTest) -> None:
    app.selectbox(key="lab_kernel").set_value("Sobel x").run()
    app.toggle(key="lab_flip").set_value(True).run()
    assert not app.exception
    square, sobel = lab.teaching_square(), lab.KERNELS["Sobel x"]
    correlation = ndi.correlate(square, sobel, mode="constant")[1:-1, 1:-1]
    convolution = ndi.convolve(square, sobel, mode="constant")[1:-1, 1:-1]
    worst = np.abs(correlation - convolution).max()
    assert worst == 8.0  # Sobel x flipped is −Sobel x: ±4 on the edges of the square
    assert any(f"up to {worst:.4f}" in w.value for w in app.warning)
    app.selectbox(key="lab_kernel").set_value("Gaussian blur 3×3").run()
    assert any("same map" in s.value for s in app.success)


def test_activation_and_pooling_numbers(app: AppTest) -> None:
    app.selectbox(key="lab_kernel").set_value(EDGE).run()
    app.segmented_control(key="lab_view").set_value("Activation & pooling").run()
    assert not app.exception
    assert "**Pooled size** → **2 × 2**" in markdown(app)
    square = torch.from_numpy(lab.teaching_square())[None, None]
    edge = torch.from_numpy(lab.KERNELS[EDGE].copy())[None, None]
    conv = F.conv2d(square, edge)
    pooled, indices = F.max_pool2d(F.relu(conv), 2, 2, return_indices=True)
    app.slider(key="lab_pool_row").set_value(1).run()
    text = markdown(app)
    assert f"**pooled[1, 0]** = max of the window = **{float(pooled[0, 0, 1, 0]):.4f}**" in text
    winner_row, winner_col = divmod(int(indices[0, 0, 1, 0]), conv.shape[-1])
    assert f"won by input row {winner_row}, column {winner_col}" in text
    app.selectbox(key="lab_activation").set_value("leaky_relu").run()
    app.number_input(key="lab_leaky_slope").set_value(0.2)
    app.selectbox(key="lab_pool_mode").set_value("average")
    app.slider(key="lab_pool_size").set_value(3)
    app.slider(key="lab_pool_stride").set_value(1).run()
    assert not app.exception
    assert "**Pooled size** → **3 × 3**" in markdown(app)
    averaged = F.avg_pool2d(F.leaky_relu(conv, 0.2), 3, 1)
    app.slider(key="lab_pool_row").set_value(2).run()
    app.slider(key="lab_pool_col").set_value(1).run()
    want = float(averaged[0, 0, 2, 1])
    assert f"**pooled[2, 1]** = mean of the 9 values = **{want:.4f}**" in markdown(app)
    negatives = int((conv < -1e-9).sum())
    assert any(f"{negatives} of 25 values were negative" in c.value for c in app.caption)


def test_pipeline_shapes_and_numbers(app: AppTest) -> None:
    app.segmented_control(key="lab_view").set_value("Pipeline").run()
    assert not app.exception
    assert "**Shapes** 300 × 300 → 300 × 300 → 300 × 300 → 150 × 150" in markdown(app)
    photo = torch.from_numpy(lab.prepare_image(PHOTO, side=300))[None, None]
    edge = torch.from_numpy(lab.KERNELS[EDGE].copy())[None, None]
    conv = F.conv2d(photo, edge, padding="same")
    negatives = int((conv < -1e-9).sum())  # float noise around 0 is not negative
    assert f"{negatives} of 90000 conv outputs are negative" in markdown(app)
    assert f"Largest edge response {float(conv.max()):.4f}" in markdown(app)
    charts = {str(c.proto.id).split("-")[-1]: c for c in app.get("plotly_chart")}
    assert len([k for k in charts if "lab_pipe_" in k]) == 4


def test_1d_tables_are_numpy_and_scipy(app: AppTest) -> None:
    app.segmented_control(key="lab_view").set_value("1-D convolution").run()
    assert not app.exception
    step, third = lab.step_signal(), np.full(3, 1 / 3)
    numpy_table = tables(app)[0]
    for mode in ("full", "same", "valid"):
        shown = [v for v in numpy_table.loc[mode] if v != ""]
        assert shown == [f"{v:.4f}" for v in np.convolve(step, third, mode)]
    assert list(numpy_table.columns[:2]) == ["-1", "0"]  # full starts one position early
    assert numpy_table.loc["valid", "1"] == "0.0000" and numpy_table.loc["valid", "0"] == ""
    scipy_table = tables(app)[1]
    for mode in ("reflect", "constant", "nearest", "mirror", "wrap"):
        want = ndi.convolve(step, third, mode=mode)
        assert list(scipy_table.loc[mode]) == [f"{v:.4f}" for v in want]
    assert scipy_table.loc["reflect", "9"] == "1.0000"
    assert scipy_table.loc["constant", "9"] == "0.6667"
    app.text_input(key="lab_1d_kernel").set_value("1, 1/0").run()
    assert not app.exception
    assert any("Cannot convolve" in e.value for e in app.error)
    app.text_input(key="lab_1d_kernel").set_value("0.5 0.5").run()
    assert any("odd number" in i.value for i in app.info)


def test_drawn_digit_is_laid_out_like_mnist(app: AppTest) -> None:
    app.selectbox(key="lab_input").set_value("Draw a digit").run()
    assert not app.exception
    assert any("Draw a digit" in i.value for i in app.info)
    one = {"width": 24, "points": [112, 40, 112, 190]}  # a thick "1"
    app.session_state["lab_canvas"] = {"drawing": {"size": [224, 224], "strokes": [one]}}
    app.run()
    assert not app.exception
    assert any("Input 28 × 28" in c.value for c in app.caption)
    assert output_size(app) == (28, 28)  # the edge kernel with same padding


def test_digit_and_upload_inputs(app: AppTest) -> None:
    app.selectbox(key="lab_input").set_value("Sample digit").run()
    assert not app.exception
    assert any("Input 28 × 28" in c.value for c in app.caption)
    assert output_size(app) == (28, 28)
    app.selectbox(key="lab_input").set_value("Upload an image").run()
    assert any("Upload an image" in i.value for i in app.info)
    app.file_uploader(key="lab_upload").upload("junk.png", b"not an image", "image/png").run()
    assert not app.exception
    assert any("cannot be read" in e.value for e in app.error)
    image = Image.fromarray((np.arange(40 * 60).reshape(40, 60) % 256).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    app.file_uploader(key="lab_upload").set_value(("ramp.png", data, "image/png")).run()
    assert not app.exception
    assert any("Input 40 × 60" in c.value for c in app.caption)
    assert output_size(app) == (40, 60)
    assert hashlib.sha256(data).hexdigest()  # cached by content, not by array
