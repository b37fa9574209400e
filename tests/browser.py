"""Start the app with ``streamlit run`` and drive Debian's Chromium through Playwright.

Never ``playwright install``: the browser is ``/usr/bin/chromium`` (apt package ``chromium``).
The launcher and the browser flags are :mod:`explorer.hosting.server`'s, so the tests, the load
generator and ``python -m explorer bench`` start the app the same way.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from explorer.bench import served
from explorer.hosting import server as app_server

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = app_server.CHROMIUM
CHROMIUM_ARGS = app_server.CHROMIUM_ARGS
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DRAW_CANVAS = served.DRAW_CANVAS
CLEAR_CANVAS = served.CLEAR_CANVAS
_LOGS = itertools.count()


@contextmanager
def streamlit_server(timeout: float = 90.0) -> Iterator[str]:
    """Run the app on a free local port (CPU, offline) until the block ends; yields its URL.

    The server's log goes to ``artifacts/streamlit-<pid>-<n>.log``.
    """
    (REPO / "artifacts").mkdir(exist_ok=True)
    log = REPO / "artifacts" / f"streamlit-{os.getpid()}-{next(_LOGS)}.log"
    with app_server.streamlit_server(torch.device("cpu"), log, timeout) as server:
        yield server.url


def open_app(playwright: Any, url: str, height: int = 900) -> tuple[Any, Any]:
    """Headless Chromium on the app's home page, once its canvas is up: ``(browser, page)``."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": height})
    page.goto(url)
    page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
    return browser, page


def click_until(page: Any, target: Any, expect: str, x: float = 0.5, y: float = 0.5) -> None:
    """Click ``target`` at fractions ``(x, y)`` of its box until the text ``expect`` shows.

    Retried a few times: a click that lands while the page is still re-rendering is lost.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    target.wait_for(timeout=60_000)
    for _ in range(3):
        target.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        area = target.bounding_box()
        assert area is not None
        page.mouse.click(area["x"] + area["width"] * x, area["y"] + area["height"] * y)
        try:
            page.get_by_text(expect).first.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"clicking never showed {expect!r}")
