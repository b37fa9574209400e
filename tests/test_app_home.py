"""The landing page, run headless with Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.models.zoo import ZOO, load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "home.py"), default_timeout=60)
    return at.run()


def test_home_predicts_the_gallery_digit(app: AppTest) -> None:
    assert not app.exception
    picker = app.selectbox(key="home_digit")
    loaded = load_model("lenet5")
    for index in range(0, len(picker.options), 7):
        app = picker.select_index(index).run()
        assert not app.exception
        chosen_label = app.selectbox(key="home_digit").value
        assert chosen_label is not None
        digit = chosen_label.split()[0]
        sample = chosen_label.rstrip(")").split()[-1]
        chosen = REPO / "assets" / "digits" / f"{digit}_{int(sample) - 1}.png"
        metric = app.metric[0]
        assert metric.label == "Prediction"
        assert metric.value == digit
        expected = loaded.capture(loaded.prepare(chosen)).probs.max()
        assert metric.delta == f"{float(expected):.1%} probability"
        picker = app.selectbox(key="home_digit")


def test_home_lists_the_zoo(app: AppTest) -> None:
    table = app.dataframe[0].value
    assert list(table["name"]) == list(ZOO)
