"""The app in a real browser: it starts, renders the overview page, shows no exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def test_overview_page_renders_a_prediction() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    offsite: list[str] = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on(
            "requestfailed",
            lambda r: offsite.append(r.url) if not r.url.startswith(url) else None,
        )
        page.goto(url)
        page.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
        metric = page.get_by_test_id("stMetric")
        metric.wait_for(timeout=60_000)
        assert "Prediction" in metric.inner_text()
        page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        assert page.get_by_test_id("stException").count() == 0
        assert "Traceback" not in page.content()
        page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
        browser.close()
    assert offsite == [], "the app must not fetch anything off-site (classrooms may be offline)"
    assert console_errors == []
