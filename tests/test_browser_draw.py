"""The Draw page in headless Chromium: mouse strokes on the canvas become a prediction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.bench.served import draw_strokes
from explorer.inputs.strokes import DIGIT_STROKES
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CLEAR_CANVAS,
    DRAW_CANVAS,
    SCREENSHOTS,
    click_until,
    streamlit_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def test_the_prediction_follows_the_pen_before_it_lifts() -> None:
    """Live drawing: while the pen is still down, the Prediction and the live maps update."""
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        draw_strokes(page, DIGIT_STROKES["7"], lift=False)
        page.wait_for_function(
            "() => { const m = document.querySelector('[data-testid=stMetricValue]');"
            " return m && m.innerText.trim() === '7'; }",
            timeout=60_000,
        )
        live = page.get_by_text("relu1 · 6 maps of 28×28")
        live.first.wait_for(timeout=30_000)
        assert page.get_by_test_id("stException").count() == 0
        # the stages below wait for the pen to lift: none is drawn yet
        assert page.locator(".st-key-stage_0").count() == 0
        page.mouse.up()
        page.locator(".st-key-stage_0").first.wait_for(timeout=60_000)
        assert prediction(page) == "7"
        browser.close()


def click_map(page: Page, key: str, expect: str) -> None:
    """Click a pixel a fifth of the way across and a third down a feature-map chart."""
    click_until(page, page.locator(f".st-key-{key} .nsewdrag").first, expect, 0.2, 0.3)


def prediction(page: Page) -> str:
    metric = page.get_by_test_id("stMetric").first
    metric.wait_for(timeout=60_000)
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def test_drawn_digits_are_predicted_and_clear_empties() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for digit in ("1", "7", "0"):
            strokes = DIGIT_STROKES[digit]
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.goto(url)
            page.locator(DRAW_CANVAS).first.wait_for(timeout=60_000)
            assert page.get_by_test_id("stMetric").count() == 0
            draw_strokes(page, strokes)
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=stMetric]').length > 0",
                timeout=60_000,
            )
            page.wait_for_timeout(1500)
            assert prediction(page) == digit
            assert page.get_by_test_id("stException").count() == 0
            if digit == "1":
                # the canvas's Clear empties it: the prediction goes away
                page.locator(CLEAR_CANVAS).click()
                page.wait_for_function(
                    "() => document.querySelectorAll('[data-testid=stMetric]').length === 0",
                    timeout=60_000,
                )
                hint = re.compile("Nothing drawn yet|Draw a digit in the black box")
                page.get_by_text(hint).first.wait_for(timeout=30_000)
                draw_strokes(page, strokes)  # and drawing again predicts again
                page.get_by_test_id("stMetric").first.wait_for(timeout=60_000)
                page.wait_for_timeout(1000)
                assert prediction(page) == digit
            if digit == "7":
                page.screenshot(path=str(SCREENSHOTS / "draw.png"), full_page=False)
                # click a pixel of conv1's maps (stage 0), then of pool1's (stage 2)
                click_map(page, "stage_0", "Unit conv1[")
                assert page.get_by_text("Σ products =").count() == 1
                click_map(page, "stage_2", "Unit pool1[")
                page.wait_for_timeout(1000)
                assert page.get_by_text("Unit conv1[").count() == 0
                assert page.get_by_test_id("stException").count() == 0
                click_map(page, "stage_0", "Unit conv1[")
                page.get_by_text("Unit conv1[").first.evaluate("e => e.scrollIntoView()")
                page.wait_for_timeout(2000)
                page.screenshot(path=str(SCREENSHOTS / "draw-unit.png"), full_page=False)
                page.screenshot(path=str(SCREENSHOTS / "draw-full.png"), full_page=True)
                page.set_viewport_size({"width": 420, "height": 900})
                page.wait_for_timeout(800)
                page.screenshot(path=str(SCREENSHOTS / "draw-narrow.png"), full_page=False)
            page.close()
        browser.close()
    assert console_errors == []
