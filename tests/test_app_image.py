"""The Image page in AppTest: inputs, every zoo model, layer browser, filters, architecture."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis.explain import receptive_field
from explorer.models.zoo import ZOO, load_model

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "assets" / "digits"
PHOTOS = REPO / "assets" / "photos"


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180)
    return at.run()


def _upload(at: AppTest, key: str, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key=key).upload(name, data, mime)
    return at.run()


def _choose_upload(at: AppTest) -> AppTest:
    return at.segmented_control(key="image_source").set_value("Upload").run()


def _table(at: AppTest, key: str) -> pd.DataFrame:
    """The page's table ``key`` (found by a column only it has: AppTest keeps no key)."""
    column = {"image_top5": "rank", "image_architecture": "mult_adds"}[key]
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_default_sample_photo_on_untrained_resnet(app: AppTest) -> None:
    assert not app.exception
    assert any("UNTRAINED" in w.value for w in app.warning)
    assert "untrained (random weights)" in " ".join(c.value for c in app.caption)
    top5 = _table(app, "image_top5")
    assert list(top5["rank"]) == [1, 2, 3, 4, 5]
    probs = list(top5["probability"])
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    # the layer browser starts on the first layer with its statistics
    assert app.selectbox(key="image_layer_resnet18").value == "conv1"
    assert _metrics(app)["shape"] == "64×112×112"


def test_uploaded_digit_on_lenet_top5_and_layer_stats_match_an_independent_run(
    app: AppTest,
) -> None:
    app = _choose_upload(app)
    app.selectbox(key="image_model").set_value("lenet5").run()
    data = (DIGITS / "3_0.png").read_bytes()
    app = _upload(app, "image_upload", "three.png", data, "image/png")
    assert not app.exception
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(data))
    top5 = _table(app, "image_top5")
    assert top5["class"][0] == "3"
    expected = result.top(5)
    assert list(top5["class"]) == [loaded.categories[i] for i, _ in expected]
    np.testing.assert_allclose(list(top5["probability"]), [round(p, 4) for _, p in expected])
    # step through the layers: each one's statistics are its captured values'
    for name in ("conv2", "relu2", "pool2", "fc1", "softmax"):
        app.selectbox(key="image_layer_lenet5").set_value(name).run()
        assert not app.exception
        values = result[name].tensor
        shown = _metrics(app)
        assert shown["shape"] == "×".join(str(s) for s in values.shape)
        assert shown["max"] == f"{values.max().item():.4g}"
        assert shown["mean"] == f"{values.mean().item():.4g}"
        assert shown["zeros"] == f"{(values == 0).float().mean().item():.1%}"


def test_grid_click_picks_a_channel_and_unit_click_shows_its_receptive_field(
    app: AppTest,
) -> None:
    app = _choose_upload(app)
    app.selectbox(key="image_model").set_value("lenet5").run()
    data = (DIGITS / "7_1.png").read_bytes()
    app = _upload(app, "image_upload", "seven.png", data, "image/png")
    app.selectbox(key="image_layer_lenet5").set_value("pool2").run()
    # what the browser sends when the third tile of the grid is clicked
    tile = {"curve_number": 1, "point_index": 2}
    app.session_state["image_grid_pool2"] = {"selection": {"points": [tile]}}
    app.run()
    assert not app.exception
    assert app.number_input(key="image_channel_pool2").value == 2
    # then a unit of the large map: index 1 * 5 + 3 is row 1, col 3 of the 5×5 map
    unit = {"curve_number": 2, "point_index": 8}
    app.session_state["image_channel_fig_pool2_2"] = {"selection": {"points": [unit]}}
    app.run()
    assert not app.exception
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(data))
    text = " ".join(m.value for m in app.markdown)
    assert f"Unit pool2[2, 1, 3] = {result['pool2'].tensor[2, 1, 3].item():.6g}" in text
    box = receptive_field(loaded.model, "pool2", 1, 3, (28, 28))
    assert box.height == box.width == 16
    assert f"{box.height}×{box.width} input pixels" in text


def test_googlenet_lists_all_57_relus_and_every_layer(app: AppTest) -> None:
    app.selectbox(key="image_model").set_value("googlenet").run()
    assert not app.exception
    summary = next(c.value for c in app.caption if "layers in execution order" in c.value)
    assert "57 relu" in summary and "57 conv" in summary
    options = app.selectbox(key="image_layer_googlenet").options
    loaded = load_model("googlenet", "untrained")
    names = loaded.capture(torch.zeros(1, 3, 224, 224)).names
    assert len(options) == len(names) == int(summary.split()[0])
    assert sum(1 for o in options if " · relu · " in o) == 57


@pytest.mark.parametrize("name", [n for n in ZOO if n not in {"resnet18", "googlenet"}])
def test_every_zoo_model_runs_on_a_photo(app: AppTest, name: str) -> None:
    app.selectbox(key="image_model").set_value(name).run()
    assert not app.exception
    assert not app.error  # digit nets get MNIST samples, photo nets photos
    assert len(_table(app, "image_top5")) == 5
    loaded = load_model(name, "untrained")
    x = torch.zeros(1, *loaded.spec.input_size)
    assert len(app.selectbox(key=f"image_layer_{name}").options) == len(loaded.capture(x).names)
    assert any(loaded.spec.title in c.value for c in app.caption)


def test_architecture_totals_and_csv(app: AppTest) -> None:
    app.segmented_control(key="image_view").set_value("Architecture").run()
    assert not app.exception
    model = load_model("resnet18", "untrained").model
    total = sum(p.numel() for p in model.parameters())
    assert _metrics(app)["parameters"] == f"{total:,}"
    assert _metrics(app)["layers"] == "70"
    table = _table(app, "image_architecture")
    assert len(table) == 70 and int(table["parameters"].sum()) == total
    assert table["name"][0] == "conv1" and table["kernel"][0] == "7×7"


def test_filters_view_shows_rgb_filters_and_a_histogram_of_every_weight(app: AppTest) -> None:
    app.segmented_control(key="image_view").set_value("Filters").run()
    assert not app.exception
    charts = {str(c.proto.id): c for c in app.get("plotly_chart")}
    assert any("image_rgb_filters" in k for k in charts)
    app.selectbox(key="image_filter_layer_resnet18").set_value("layer1.0.conv1").run()
    hist = next(
        c
        for k, c in {str(c.proto.id): c for c in app.get("plotly_chart")}.items()
        if "image_weight_hist" in k
    )
    assert "36,864 weights" in hist.proto.spec  # 64 × 64 × 3 × 3


@pytest.mark.parametrize(
    ("filename", "payload", "message"),
    [
        ("notes.png", b"this is not an image at all", "cannot be used"),
        ("cut.png", (DIGITS / "3_0.png").read_bytes()[:60], "cannot be used"),
    ],
)
def test_bad_image_is_a_message_and_the_next_image_works(
    app: AppTest, filename: str, payload: bytes, message: str
) -> None:
    app = _choose_upload(app)
    app = _upload(app, "image_upload", filename, payload, "image/png")
    assert not app.exception
    assert any(message in e.value for e in app.error)
    app.file_uploader(key="image_upload").set_value(
        ("cat.jpg", (PHOTOS / "cat.jpg").read_bytes(), "image/jpeg")
    )
    app.run()
    assert not app.exception and not app.error
    assert len(_table(app, "image_top5")) == 5


def test_own_weights_load_and_wrong_ones_are_refused(app: AppTest, tmp_path: Path) -> None:
    app.selectbox(key="image_model").set_value("lenet5").run()
    # the right architecture: its weights are used and labelled as the user's
    good = io.BytesIO()
    torch.save(load_model("lenet5").model.state_dict(), good)
    app = _upload(app, "image_weights", "mine.pth", good.getvalue(), "application/octet-stream")
    assert not app.exception
    assert "own weights (mine.pth)" in " ".join(c.value for c in app.caption)
    # another architecture's state dict: a message listing the mismatch
    app.selectbox(key="image_model").set_value("harley").run()
    assert not app.exception
    assert any("do not fit" in e.value for e in app.error)


def test_pickle_that_runs_code_is_refused_in_the_page(app: AppTest, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {marker}",))

    app.selectbox(key="image_model").set_value("lenet5").run()
    data = pickle.dumps({"conv1.weight": Payload()})
    app = _upload(app, "image_weights", "evil.pth", data, "application/octet-stream")
    assert not app.exception
    assert any("do not fit" in e.value for e in app.error)
    assert not marker.exists()


def test_camera_snapshot_is_classified(app: AppTest) -> None:
    app = app.segmented_control(key="image_source").set_value("Camera").run()
    assert not app.exception
    assert any("take a photo to begin" in i.value for i in app.info)  # nothing to classify yet
    assert not [d for d in app.dataframe if "rank" in d.value.columns]
    snapshot = (PHOTOS / "coffee.jpg").read_bytes()
    app.camera_input(key="image_camera").upload("image.jpg", snapshot).run()
    assert not app.exception and not app.error
    loaded = load_model("resnet18", "untrained")  # seeded: the page's untrained weights
    expected = loaded.capture(loaded.prepare(snapshot)).top(5)
    top5 = _table(app, "image_top5")
    assert list(top5["class"]) == [loaded.categories[i] for i, _ in expected]
    np.testing.assert_allclose(list(top5["probability"]), [round(p, 4) for _, p in expected])
