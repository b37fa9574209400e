"""The Experiment page in headless Chromium: knock a filter out and see the passes differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser import CHROMIUM, SCREENSHOTS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

TRACE = """([key, curve, axis]) => Array.from(
  document.querySelector(`.st-key-${key} .js-plotly-plot`)._fullData[curve][axis])"""
"""A plotly chart's trace as the browser drew it (``_fullData``: typed arrays decoded)."""


def trace(page: Any, key: str, axis: str, curve: int = 0) -> list[Any]:
    """The ``axis`` values (``"x"``, ``"y"``, ``"text"``) of a chart's trace ``curve``."""
    return list(page.evaluate(TRACE, [key, curve, axis]))


def test_knock_out_a_channel_and_compare() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser, page = open_app(p, url, 1000)
        page.get_by_test_id("stSidebarNav").get_by_text("Experiment").click()
        page.get_by_text("What moved, layer by layer").first.wait_for(timeout=60_000)
        page.locator(".st-key-exp_mode").get_by_text("Knock out channels").click()
        box = page.locator(".st-key-exp_ko_ch_conv1 input").first
        box.click()
        page.get_by_role("option", name="3", exact=True).first.click()
        page.get_by_text("conv1 channels 3 knocked out (zero)").first.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => !document.querySelector('[data-test-script-state=running]')", timeout=60_000
        )
        page.wait_for_timeout(1000)  # the charts of the finished run drawn
        # what moved: conv1 and everything after it, measured between two different passes
        names = trace(page, "exp_changes", "x")
        moved = dict(zip(names, trace(page, "exp_changes", "y"), strict=True))
        assert names[0] == "conv1" and moved["conv1"] > 0 and moved["softmax"] > 0
        first, second = trace(page, "exp_softmax_0", "y"), trace(page, "exp_softmax_1", "y")
        assert trace(page, "exp_softmax_0", "x") == trace(page, "exp_softmax_1", "x")
        a, b = np.array(first, dtype=np.float64), np.array(second, dtype=np.float64)
        assert a.shape == (10,) and a.sum() == pytest.approx(1, abs=1e-5)
        assert np.abs(b - a).max() > 1e-3  # the two softmax outputs shown differ
        # and the change shown for the softmax is that difference: ‖b − a‖ / ‖a‖ and cos(a, b)
        cosine = dict(zip(names, trace(page, "exp_changes", "y", 1), strict=True))
        assert moved["softmax"] == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), 1e-4)
        assert cosine["softmax"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        # the layer compared: channel 3 moved most, so it is the first tile of all three
        labels = [trace(page, f"exp_stage_{i}", "text", 3)[0] for i in range(3)]
        assert labels == ["3", "3", "3"]
        page.get_by_text("What moved, layer by layer").first.evaluate("e => e.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "experiment.png"))
        browser.close()
