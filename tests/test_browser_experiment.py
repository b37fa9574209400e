"""The Experiment page in headless Chromium: knock a filter out and see the passes differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, SCREENSHOTS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


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
        page.get_by_text("What moved, layer by layer").first.evaluate("e => e.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "experiment.png"))
        browser.close()
