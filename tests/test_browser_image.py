"""The Image page in headless Chromium: a direct link, an upload, a layer, a channel, a unit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAW_CANVAS,
    REPO,
    SCREENSHOTS,
    click_until,
    streamlit_server,
)
from tests.corpus import image_corpus

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def choose(page: Page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox with widget key ``key`` by typing it."""
    box = page.locator(f".st-key-{key} input").first
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option).first.click()


def test_upload_top5_layer_channel_and_unit() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        # A direct link runs the page inside the app's navigation. (Not as the server's very
        # first run: until st.navigation has run once, Streamlit treats pages/ as a legacy
        # pages folder and shows "Page not found" for a link it does not know.)
        page.goto(url)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
        page.goto(f"{url}/classify")
        page.get_by_text("what the network sees").first.wait_for(timeout=120_000)
        nav = page.get_by_test_id("stSidebarNav").inner_text()
        assert "Image classifier" in nav and "Draw a digit" in nav and "common" not in nav
        # upload a photo
        page.locator(".st-key-image_source").get_by_text("Upload").click()
        uploader = page.locator(".st-key-image_upload input[type=file]")
        uploader.wait_for(state="attached", timeout=30_000)
        # bad files first, through the real uploader: a clear message each, the page stays up
        for bad in image_corpus():
            if bad.refusal is None or not bad.data:
                continue  # valid files are covered in AppTest; the browser refuses empty files
            payload: FilePayload = {"name": bad.name, "mimeType": bad.mime, "buffer": bad.data}
            uploader.set_input_files(files=[payload])
            page.get_by_text(bad.refusal).first.wait_for(timeout=60_000)
            assert page.get_by_test_id("stException").count() == 0
            assert page.get_by_text("top 5").count() == 0
            page.wait_for_timeout(1000)  # let the upload settle, as a person would
        uploader.set_input_files(str(REPO / "assets" / "photos" / "coffee.jpg"))
        page.get_by_text("top 5").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "image.png"))
        # choose a deeper layer; its grid and the first channel large appear
        choose(page, "image_layer_resnet18", "layer1.0.relu · relu")
        grid = page.locator(".st-key-image_grid_layer1-0-relu .nsewdrag").first
        grid.wait_for(timeout=60_000)
        # the title wraps at its " · ": "layer1.0.relu · channel 0 ·" / "56×56 over the input"
        page.get_by_text("56×56 over the input").first.wait_for(timeout=60_000)
        # click a unit of the large map: its receptive field is reported
        figure = page.locator("[class*='st-key-image_channel_fig_layer1'] .nsewdrag").first
        click_until(page, figure, "Unit layer1.0.relu[0,")
        assert page.get_by_text("Its receptive field").count() == 1
        assert page.get_by_test_id("stException").count() == 0
        assert "Traceback" not in page.content()
        page.screenshot(path=str(SCREENSHOTS / "image-unit.png"))
        page.screenshot(path=str(SCREENSHOTS / "image-full.png"), full_page=True)
        browser.close()
    # Opening a deep link, Streamlit's front end first looks for the server under that path
    # (/classify/_stcore/health, /host-config): two expected 404s. Nothing else may fail.
    probes = [u for u in failed if u.startswith(f"{url}/classify/_stcore/")]
    assert failed == probes and len(probes) <= 2
    not_found = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert [e for e in console_errors if e != not_found] == []
    assert console_errors.count(not_found) == len(probes)


def test_a_deep_link_works_for_the_very_first_browser() -> None:
    """The launcher's start-up check runs the app's script once, so /classify is found."""
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/classify")  # the first page any browser asks this server for
        page.get_by_text("what the network sees").first.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_text("Look inside an image classifier").count() == 1
        browser.close()
