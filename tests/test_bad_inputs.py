"""Bad input end to end: a clear message, the page stays up, the next good input works.

Every file of the corpus gets a clear message (or simply works), the page stays up, and
the next good input works.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.inputs.strokes import DIGIT_STROKES, MAX_COORDINATE, drawing_value
from explorer.models.zoo import load_model
from tests.corpus import BadInput, image_corpus
from tests.test_preprocess import progressive_jpeg

REPO = Path(__file__).resolve().parents[1]
GOOD_PHOTO = (REPO / "assets" / "photos" / "rocket.jpg").read_bytes()
GOOD_DIGIT = REPO / "assets" / "digits" / "4_0.png"


@pytest.fixture(scope="module")
def image_page() -> AppTest:
    """One Image page session for the whole corpus, on the Upload input (as a person would)."""
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180).run()
    return at.segmented_control(key="image_source").set_value("Upload").run()


def _top5_rows(at: AppTest) -> int:
    tables = [d.value for d in at.dataframe if "rank" in d.value.columns]
    return len(tables[0]) if tables else 0


@pytest.mark.parametrize("item", image_corpus(), ids=lambda item: item.name)
def test_image_page_corpus(image_page: AppTest, item: BadInput) -> None:
    at = image_page
    at.file_uploader(key="image_upload").set_value((item.name, item.data, item.mime)).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    if item.refusal is None:
        assert errors == [] and _top5_rows(at) == 5  # unusual but valid: it just works
    else:
        assert len(errors) == 1 and item.refusal in errors[0]
        assert errors[0].startswith("That image cannot be used:")
        assert _top5_rows(at) == 0  # no stale prediction from an earlier image
    # the next good image works in the same session
    at.file_uploader(key="image_upload").set_value(("rocket.jpg", GOOD_PHOTO, "image/jpeg")).run()
    assert not at.exception and not at.error and _top5_rows(at) == 5


def test_image_page_refuses_a_jpeg_of_thousands_of_scans(image_page: AppTest) -> None:
    # 58 s of decoding on every rerun before, for a 392 kB file of 20,000 empty scans
    at = image_page
    data = progressive_jpeg(20_000)
    at.file_uploader(key="image_upload").set_value(("scans.jpg", data, "image/jpeg")).run()
    assert not at.exception and _top5_rows(at) == 0
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("That image cannot be used: the JPEG has")
    at.file_uploader(key="image_upload").set_value(("rocket.jpg", GOOD_PHOTO, "image/jpeg")).run()
    assert not at.exception and not at.error and _top5_rows(at) == 5


def _canvas(strokes: list[dict[str, Any]]) -> dict[str, Any]:
    """The canvas component's session-state value for these raw strokes."""
    return {"drawing": {"size": [280, 280], "seq": 1, "final": True, "strokes": strokes}}


@pytest.mark.parametrize(
    "strokes",
    [[], [{"width": 1, "points": [140, 140]}], [{"width": 8, "points": []}]],
    ids=["empty", "speck", "no-points"],
)
def test_draw_page_blank_canvases_are_nothing_drawn(strokes: list[dict[str, Any]]) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=90).run()
    at.session_state["draw_canvas"] = _canvas(strokes)
    at.run()
    assert not at.exception and len(at.metric) == 0
    assert any("Nothing drawn" in info.value for info in at.info)
    at.session_state["draw_canvas"] = {"drawing": drawing_value(DIGIT_STROKES["7"])}
    at.run()
    assert not at.exception and at.metric[0].value == "7"


@pytest.mark.parametrize(
    "value",
    [
        {"drawing": "not a drawing"},
        _canvas([{"width": 5, "points": [1, 2, 3]}]),
        _canvas([{"width": "wide", "points": [1, 2]}]),
        _canvas([{"width": 5, "points": [1, 2]}] * 1000),
        # hostile values (issue 22): a point too far off, a number too big for a float, too
        # much pen travel; the old code painted the first (seconds a segment further off),
        # raised OverflowError on the second and painted the third
        _canvas([{"width": 1, "points": [0, 0, MAX_COORDINATE + 1, 0]}]),
        _canvas([{"width": 5, "points": [10**400, 5]}]),
        _canvas([{"width": 8, "points": [0, 140, 280, 140] * 100}]),
    ],
    ids=["string", "odd-points", "bad-width", "too-many-strokes", "far", "huge-int", "travel"],
)
def test_draw_page_corrupt_canvas_data_is_a_message(value: dict[str, Any]) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=90).run()
    at.session_state["draw_canvas"] = value
    at.run()
    assert not at.exception and len(at.metric) == 0
    assert any("cannot be read" in e.value for e in at.error)


def test_weights_for_the_wrong_architecture_and_code_pickles(tmp_path: Path) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180).run()
    at.selectbox(key="image_model").set_value("alexnet").run()
    lenet = io.BytesIO()
    torch.save(load_model("lenet5").model.state_dict(), lenet)
    at.file_uploader(key="image_weights").set_value(
        ("lenet.pth", lenet.getvalue(), "application/octet-stream")
    ).run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "do not fit AlexNet" in message and "conv1.weight" in message
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {marker}",))

    # as torch.save writes it (a zip) and as a bare pickle: refused, nothing runs
    saved = io.BytesIO()
    torch.save({"features.0.weight": Payload()}, saved)
    at.file_uploader(key="image_weights").set_value(
        ("evil.pth", saved.getvalue(), "application/octet-stream")
    ).run()
    assert not at.exception and not marker.exists()
    assert any("refused" in e.value and "system" in e.value for e in at.error)
    bare = pickle.dumps({"features.0.weight": Payload()})
    at.file_uploader(key="image_weights").set_value(
        ("evil2.pth", bare, "application/octet-stream")
    ).run()
    assert not at.exception and not marker.exists()
    assert any("not a PyTorch weights file" in e.value for e in at.error)
    # without the file the pretrained (here: untrained, offline) model is back
    at.file_uploader(key="image_weights").set_value(None).run()
    assert not at.exception and not at.error and _top5_rows(at) == 5
