"""Your pictures in headless Chromium: upload 3 classes, train, use the model to classify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explorer.hosting.addresses import URL_PATHS
from explorer.models.shapes import SHAPES, shape_picture
from tests.browser import SCREENSHOTS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path("/usr/bin/chromium").exists():
    pytest.skip(
        "/usr/bin/chromium not installed (apt-get install chromium)", allow_module_level=True
    )


def files(shape: str, count: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [
        {"name": f"{shape}-{i}.png", "mimeType": "image/png", "buffer": shape_picture(shape, rng)}
        for i in range(count)
    ]


def give_classes(page: Any) -> None:
    """Three classes named after the shapes, 12 uploaded pictures each."""
    classes = page.locator(".st-key-pictures_classes input")
    classes.fill("3")
    classes.press("Enter")
    page.locator(".st-key-pictures_name_2 input").wait_for(timeout=30_000)
    for index, shape in enumerate(SHAPES[:3]):
        name = page.locator(f".st-key-pictures_name_{index} input")
        name.fill(shape)
        name.press("Enter")
        uploader = page.locator(f".st-key-pictures_upload_{index}_0 input[type=file]")
        uploader.set_input_files(files(shape, 12, index))
        page.get_by_text("12 picture(s)").nth(index).wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "your_pictures_classes.png"))


def train_and_watch(page: Any) -> Any:
    """Train 40 epochs, watch an epoch's views while it trains; the "Use this model" button."""
    epochs = page.locator(".st-key-pictures_epochs_small input[type=range]").first
    epochs.focus()
    epochs.press("End")  # 40 epochs: a few seconds of training to watch
    page.wait_for_function(
        "() => document.querySelector('.st-key-pictures_epochs_small input[type=range]')"
        ".value === '40'",
        timeout=30_000,
    )
    page.locator(".st-key-pictures_train button").click()
    page.get_by_text("Training:").first.wait_for(timeout=60_000)
    # while it trains, each epoch's views: the accuracy so far, curves, filters, matrix
    live = page.get_by_text("Held-out accuracy after epoch").first
    live.wait_for(timeout=120_000)
    live.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "your_pictures_training.png"))
    # a rerun while it trains (a name typed): the training goes on, on the pictures given
    name = page.locator(".st-key-pictures_name_0 input")
    name.fill("circles")
    name.press("Enter")
    use = page.locator(".st-key-pictures_use button")
    use.wait_for(timeout=240_000)
    assert page.get_by_text("Held-out accuracy after epoch").count() == 0  # replaced
    return use


def test_upload_train_and_classify_with_your_classes() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser, page = open_app(p, url, height=1000)
        page.get_by_role("link", name="Your pictures").first.click()
        page.get_by_text("Teach it your classes").first.wait_for(timeout=60_000)
        give_classes(page)
        use = train_and_watch(page)
        use.click()
        page.get_by_text("now on the Image classifier page").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "your_pictures.png"), full_page=True)
        # the same session (no reload): the sidebar's link keeps session state
        page.get_by_role("link", name="Image classifier").first.click()
        page.wait_for_url(f"**/{URL_PATHS['image']}**", timeout=60_000)
        box = page.locator(".st-key-image_model input").first
        box.click()
        box.fill("Your pictures")
        page.get_by_role("option", name="Your pictures: circle, square, triangle").first.click()
        page.get_by_text("Your pictures: circle, square, triangle").first.wait_for(timeout=60_000)
        try:
            page.get_by_text("what the network sees").first.wait_for(timeout=120_000)
        finally:
            page.wait_for_timeout(2000)
            shot = SCREENSHOTS / "your_pictures_on_image_page.png"
            page.screenshot(path=str(shot), full_page=True)
        # the top-k table names your classes only (the grid's accessible cells hold its text)
        table = page.locator('table:has(th:text-is("rank"))').first
        table.wait_for(state="attached", timeout=60_000)
        text = table.text_content(timeout=30_000) or ""
        assert all(shape in text for shape in SHAPES[:3]) and "tabby" not in text
        assert any(text.startswith(f"rankclassprobability1{shape}") for shape in SHAPES[:3])
        browser.close()
