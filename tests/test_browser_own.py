"""Your own model in headless Chromium: upload a .pt2 on the Image page and browse its layers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, DRAW_CANVAS, REPO, SCREENSHOTS, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def test_upload_a_pt2_and_see_its_layers() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    example = REPO / "assets" / "models" / "own" / "lenet5.pt2"
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)  # a first run on the server before the deep link (see test_browser_image)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
        page.goto(f"{url}/classify")
        page.get_by_text("what the network sees").first.wait_for(timeout=120_000)
        box = page.locator(".st-key-image_model input").first
        box.click()
        box.fill("Your model")
        page.get_by_role("option", name="Your model (.pt2 or .onnx)").first.click()
        page.locator(".st-key-image_own_source").get_by_text("Upload a file").click()
        uploader = page.locator(".st-key-image_own_upload input[type=file]")
        uploader.set_input_files(
            {"name": "mine.pt2", "mimeType": "application/zip", "buffer": example.read_bytes()}
        )
        page.get_by_text("The file says its input is 1×28×28.").first.wait_for(timeout=60_000)
        page.get_by_text("Your model (mine.pt2)").first.wait_for(timeout=60_000)
        layer = page.locator("[class*=st-key-image_layer_own-mine-pt2] input").first
        layer.wait_for(timeout=60_000)
        assert layer.input_value() == "0 · conv1 · conv · 6×28×28"
        page.get_by_text("13 layers in execution order").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "own_model.png"), full_page=True)
        browser.close()
