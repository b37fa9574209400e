"""The Convolution lab in headless Chromium: deep link, kernel preset, output size, views.

A deep link, a kernel preset, the output size as the stride changes, and a screenshot of
each of the four views.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, DRAW_CANVAS, SCREENSHOTS, streamlit_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

W = 28  # a gallery digit is 28×28
F = 3  # Sobel x is 3×3
P = 0  # "valid" padding


def expected_size(w: int, f: int, p: int, s: int) -> int:
    """⌊(W − F + 2P) / S⌋ + 1, computed here, not by the app."""
    return (w - f + 2 * p) // s + 1


def formula(w: int, f: int, p: int, s: int) -> str:
    return f"⌊(W − F + 2P) / S⌋ + 1 = ⌊({w} − {f} + 2·{p}) / {s}⌋ + 1 = {expected_size(w, f, p, s)}"


def choose(page: Page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox with widget key ``key`` by typing it."""
    box = page.locator(f".st-key-{key} input").first
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).first.click()


def healthy(page: Page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert "Traceback" not in page.content()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def output_size_text(page: Page) -> str:
    """The '**Output size** → …' block as shown (bold gone, line breaks kept)."""
    block = page.get_by_test_id("stMarkdown").filter(has_text="Output size →")
    return block.first.inner_text().strip() if block.count() else ""


def set_stride(page: Page, stride: int) -> None:
    """Move the Stride slider with the keyboard (one arrow press per step)."""
    thumb = page.locator(".st-key-lab_stride input[type=range]").first
    thumb.focus()
    current = int(thumb.input_value())
    key = "ArrowRight" if stride > current else "ArrowLeft"
    for _ in range(abs(stride - current)):
        thumb.press(key)
    wait_until(lambda: thumb.input_value() == str(stride), f"the slider at {stride}")


def show_view(page: Page, name: str, marker: str) -> None:
    """Click a View of the segmented control and wait for a text only that view shows."""
    page.locator(".st-key-lab_view").get_by_role("radio", name=name, exact=True).click()
    page.get_by_text(marker).first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # let the plotly figures draw


def open_lab(page: Page, url: str) -> None:
    """Open the lab by its deep link and wait for its default output size."""
    # The root first: until st.navigation has run once, a deep link finds a legacy page.
    page.goto(url)
    page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
    page.goto(f"{url}/convolution-lab")
    page.get_by_text("Output size →").first.wait_for(timeout=120_000)
    healthy(page)
    # default: the 7×7 square, box blur, valid, stride 1 → 5 × 5
    wait_until(lambda: "5 × 5" in output_size_text(page), "the default 5 × 5")


def check_output_size(page: Page, stride: int) -> None:
    """Set the stride and check the output size and its formula, as shown."""
    set_stride(page, stride)
    size = expected_size(W, F, P, stride)
    want = f"Output size → {size} × {size}\nrows: {formula(W, F, P, stride)}\n"
    want += f"columns: {formula(W, F, P, stride)}"
    wait_until(lambda: output_size_text(page) == want, repr(want))
    page.get_by_text(f"Input {W} × {W} · kernel {F} × {F}").first.wait_for(timeout=5_000)
    healthy(page)


def check_sobel_digit_per_stride(page: Page) -> None:
    """A gallery digit, the Sobel x preset and valid padding (by their widgets), strides 1–3."""
    choose(page, "lab_input", "Sample digit")
    page.locator(".st-key-lab_digit").wait_for(timeout=60_000)
    choose(page, "lab_kernel", "Sobel x")
    choose(page, "lab_padding", "valid")
    for stride in (1, 2, 3):
        check_output_size(page, stride)
    assert expected_size(W, F, P, 2) == 13  # the formula's ⌊25 / 2⌋ + 1, by hand
    set_stride(page, 2)
    wait_until(lambda: output_size_text(page).startswith("Output size → 13 × 13"), "13 × 13")
    page.wait_for_timeout(1500)
    healthy(page)
    page.screenshot(path=str(SCREENSHOTS / "lab-convolution.png"))


def check_other_views(page: Page) -> None:
    """The pooling, pipeline and 1-D views: their texts, and a screenshot of each."""
    # activation & pooling: the 13×13 map, 2×2 windows, stride 2 → 6 × 6
    show_view(page, "Activation & pooling", "Pooled size →")
    pooled = page.get_by_test_id("stMarkdown").filter(has_text="Pooled size →").first
    assert pooled.inner_text().startswith("Pooled size → 6 × 6"), pooled.inner_text()
    assert "⌊(13 − 2 + 2·0) / 2⌋ + 1 = 6" in pooled.inner_text()
    healthy(page)
    page.screenshot(path=str(SCREENSHOTS / "lab-pooling.png"))
    show_view(page, "Pipeline", "300 × 300 → 300 × 300 → 300 × 300 → 150 × 150")
    healthy(page)
    page.screenshot(path=str(SCREENSHOTS / "lab-pipeline.png"))
    show_view(page, "1-D convolution", "scipy.ndimage.convolve: what the padding holds")
    assert page.get_by_text("full: 10 + 3 − 1 = 12").count() == 1
    healthy(page)
    page.screenshot(path=str(SCREENSHOTS / "lab-1d.png"))


def test_kernel_preset_output_size_per_stride_and_all_views() -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    failed: list[str] = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        open_lab(page, url)
        check_sobel_digit_per_stride(page)
        check_other_views(page)
        browser.close()
    # Opening a deep link, Streamlit's front end first looks for the server under that path
    # (/convolution-lab/_stcore/health, /host-config): two expected 404s. Nothing else may fail.
    probes = [u for u in failed if u.startswith(f"{url}/convolution-lab/_stcore/")]
    assert failed == probes and len(probes) <= 2
    not_found = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert [e for e in console_errors if e != not_found] == []
    assert console_errors.count(not_found) == len(probes)
