"""The "Why this class?" view in headless Chromium: a sample digit, Grad-CAM, then occlusion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, SCREENSHOTS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def test_why_this_class_on_a_sample_digit() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser, page = open_app(p, url, 900)
        page.locator(".st-key-draw_source").get_by_text("Sample digit").click()
        page.get_by_text("Prediction").first.wait_for(timeout=60_000)
        page.locator(".st-key-draw_view").get_by_text("Why this class?").click()
        hidden = page.get_by_text("with the top 10% hidden")
        hidden.first.wait_for(timeout=60_000)
        chart = page.locator(".st-key-draw_why_map")
        chart.locator(".heatmaplayer image, .heatmaplayer").first.wait_for(timeout=30_000)
        assert page.get_by_text("Grad-CAM ·").count() >= 1  # the figure's title
        assert page.get_by_text("Layer: pool2.").count() == 1
        # Another method: occlusion, with its window and stride, shows its own map.
        box = page.locator(".st-key-draw_why_method input").first
        box.click()
        box.fill("Occlusion")
        page.get_by_role("option", name="Occlusion").first.click()
        page.get_by_text("Window (px)").first.wait_for(timeout=30_000)
        page.get_by_text("Occlusion ·").first.wait_for(timeout=60_000)
        hidden.first.wait_for(timeout=60_000)
        chart.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "why_this_class.png"))
        browser.close()
