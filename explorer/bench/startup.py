"""The server's start and memory: ``streamlit run`` driven by Chromium.

- ``cold_start_s``: ``streamlit run`` until the Draw page has rendered in Chromium.
- ``peak_rss_mb_resnet18``: peak memory of the ``streamlit run`` server after the Draw page
  and then the Image page with ResNet-18 (top-5 and a layer's channel grid) have rendered.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explorer.bench.served import DRAW_CANVAS
from explorer.bench.timing import median
from explorer.hosting.procfs import vm_hwm_mb
from explorer.hosting.server import APP_FILE, CHROMIUM, CHROMIUM_ARGS, streamlit_server

# The Draw page has rendered once its canvas is drawn and, the model loaded, its hint (empty
# canvas) or a prediction is on screen. Playwright's CSS locators pierce the canvas
# component's shadow DOM (document.querySelector does not).
PAGE_READY_SELECTORS = (
    DRAW_CANVAS,
    "[data-testid=stAlert], [data-testid=stMetric]",
)
IMAGE_PAGE_PATH = "classify"
IMAGE_READY_SELECTORS = ("text=top 5", "[class*=st-key-image_grid_] .nsewdrag")


def cold_start(
    device: torch.device, runs: int, timeout: float = 120.0
) -> tuple[float | None, str | None, dict[str, Any]]:
    """Median seconds from ``streamlit run`` to the Draw page rendered in Chromium.

    The browser is started first (it is the user's, already open); the clock starts when the
    server process is spawned and stops when the page shows the canvas and, once the model
    has loaded, its hint or prediction. Also reads the server's peak RSS after that page and,
    on the last run, after the Image page (ResNet-18's top-5 and its first layer's grid).
    """
    if not APP_FILE.is_file():
        return None, f"{APP_FILE} not found (run from the source checkout)", {}
    if not Path(CHROMIUM).exists():
        return None, f"{CHROMIUM} not installed (apt-get install chromium)", {}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "playwright is not installed (pip install playwright)", {}
    starts = _ColdStarts()
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for run in range(runs):
                log = Path(folder) / f"streamlit-{run}.log"
                problem = _cold_start_run(browser, device, log, timeout, starts, run == runs - 1)
                if problem is not None:
                    return None, problem, {}
        except Exception as exc:  # a browser or server failure is a missing figure, not a crash
            return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", {}
        finally:
            browser.close()
    return median(starts.times), None, starts.detail()


@dataclass
class _ColdStarts:
    """What the runs of :func:`cold_start` measured.

    Attributes:
        times: Seconds from spawning the server to the Draw page rendered, one per run.
        server_mb: The server's peak RSS after the Draw page, for the runs where it was read.
        image_rss: The server's peak RSS after the Image page (last run), if read.
    """

    times: list[float] = field(default_factory=list)
    server_mb: list[float] = field(default_factory=list)
    image_rss: float | None = None

    def detail(self) -> dict[str, Any]:
        """The runs' times and the peak RSS read, rounded, for the notes."""
        detail: dict[str, Any] = {"runs": [round(t, 2) for t in self.times]}
        if self.server_mb:
            detail["server_peak_rss_mb_draw_page"] = round(max(self.server_mb), 1)
        if self.image_rss is not None:
            detail["server_peak_rss_mb_image_page"] = self.image_rss
        return detail


def _cold_start_run(
    browser: Any, device: torch.device, log: Path, timeout: float, starts: _ColdStarts, last: bool
) -> str | None:
    """One run: start a server, time the Draw page, read its RSS (``last``: the Image page's).

    Returns:
        What went wrong (the page shows an exception), or None.
    """
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    start = time.perf_counter()
    with streamlit_server(device, log, timeout) as server:
        page.goto(server.url)
        _wait_for(page, PAGE_READY_SELECTORS, timeout)
        starts.times.append(time.perf_counter() - start)
        if page.get_by_test_id("stException").count():
            return "the first page shows an exception"
        rss = vm_hwm_mb(server.process.pid)
        if rss is not None:
            starts.server_mb.append(rss)
        if last:  # then a full Image page: ResNet-18, top-5, a grid
            page.goto(f"{server.url}/{IMAGE_PAGE_PATH}")
            _wait_for(page, IMAGE_READY_SELECTORS, timeout)
            starts.image_rss = vm_hwm_mb(server.process.pid)
    page.close()
    return None


def _wait_for(page: Any, selectors: tuple[str, ...], timeout: float) -> None:
    """Wait until each of ``selectors`` is on the page, at most ``timeout`` seconds each."""
    for selector in selectors:
        page.locator(selector).first.wait_for(timeout=timeout * 1000)
