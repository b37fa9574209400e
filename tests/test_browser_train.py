"""The Train page in headless Chromium: a short run, Use this model, then draw on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, SCREENSHOTS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def test_train_then_draw_on_the_trained_model() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser, page = open_app(p, url, 1000)
        nav = page.get_by_test_id("stSidebarNav")
        nav.get_by_text("Train a CNN").click()
        page.get_by_text("Start training").first.wait_for(timeout=60_000)
        page.get_by_text("Start training").first.click()
        page.get_by_text("Done:").first.wait_for(timeout=120_000)  # 5 epochs: a few seconds
        page.locator(".st-key-train_confusion").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "train.png"), full_page=True)
        page.get_by_text("Use this model").first.click()
        page.get_by_text("now on the Draw and Image pages").first.wait_for(timeout=30_000)
        nav.get_by_text("Draw a digit").click()
        page.locator(".st-key-draw_model").get_by_text("Your trained model").click()
        page.locator(".st-key-draw_source").get_by_text("Sample digit").click()
        page.get_by_text("Your trained LeNet-5").first.wait_for(timeout=60_000)
        page.get_by_text("Prediction").first.wait_for(timeout=60_000)
        assert page.get_by_text("trained by you, on the Train page").count() >= 1
        browser.close()
