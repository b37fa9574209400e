"""Every page at a phone's, a tablet's and a laptop's size: nothing sticks out or is cut off.

One server and one browser for the module; a test per size, each in a fresh browser context
(a phone is ``is_mobile`` with touch at a device scale of 3), opens every page of
:data:`explorer.hosting.addresses.URL_PATHS` (read now, so a new page is covered) and the views
known to have been cut off, and checks in the page itself: no sideways scroll, no element's box
past the viewport's sides, no text clipped by its own box (a segmented control's button, a
metric's label), every plotly title and axis title inside its figure. Every page is checked
even when an earlier one fails; the test lists them all. On the Draw page a finger (touch
events, not a mouse) draws a 7 on a canvas that fits the screen; the Prediction stays on screen
while the finger is still down, and reads 7 once it lifts. A screenshot of each page and size
goes to ``artifacts/screenshots/layout-<page>-<size>.png`` (the page's whole height).

No fixed sleeps: an in-page probe counts Streamlit's finished runs, and each step waits for a
new one to end, the app to stay idle :data:`QUIET_MS`, and its charts and images to be drawn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from explorer.hosting.addresses import PREDICTION_LABEL, URL_PATHS, key_selector
from explorer.inputs.strokes import CANVAS_SIZE, DIGIT_STROKES
from tests.browser import CHROMIUM, CHROMIUM_ARGS, DRAW_CANVAS, SCREENSHOTS, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

SIZES: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
    "tablet": {"viewport": {"width": 820, "height": 1180}, "has_touch": True},
    "laptop": {"viewport": {"width": 1280, "height": 900}},
}

LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const width = window.innerWidth;
  const name = (e) => {
    const owner = e.closest('[class*=st-key-]');
    const key = owner ? [...owner.classList].find((c) => c.startsWith('st-key-')) : '';
    const text = (e.innerText || e.textContent || e.getAttribute('aria-label') || '').trim();
    return `${e.tagName.toLowerCase()}[${e.getAttribute('data-testid') || ''}] ${key}`
      + ` "${text.slice(0, 40)}"`;
  };
  const ancestors = (e) => {
    const found = [];
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) found.push(p);
    return found;
  };
  const root = document.documentElement;
  if (root.scrollWidth > width) problems.push(`the page scrolls sideways: ${root.scrollWidth}`);
  for (const box of document.querySelectorAll('[data-testid=stMain]')) {
    if (box.scrollWidth > box.clientWidth + 1)
      problems.push(`the main area scrolls sideways: ${box.scrollWidth} > ${box.clientWidth}`);
  }
  // Not a problem: a collapsed sidebar, plotly's off-screen measuring box (left of 0), a
  // screen reader's copy (clipped to nothing), nothing to see (a progress bar's fill), or a
  // box that scrolls by itself (a data frame: its content is seen by scrolling it).
  const content = 'img, canvas, svg, video, input, button, select, textarea';
  const exempt = (e, r) => r.right <= 0
    || e.closest('[data-testid=stSidebar][aria-expanded=false]')
    || !e.checkVisibility({ opacityProperty: true, visibilityProperty: true })
    || (!e.matches(content) && !e.querySelector(content) && !(e.innerText || '').trim())
    || ancestors(e).some((p) => {
      const style = getComputedStyle(p);
      return style.clip.startsWith('rect(0px') || (p.getAttribute('data-testid') !== 'stMain'
        && ['auto', 'scroll'].includes(style.overflowX));
    });
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const outside = r.left < -1 || r.right > width + 1;
    const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const cut = ownText && getComputedStyle(e).overflowX !== 'visible'
      && e.scrollWidth > e.clientWidth + 1;
    if ((outside || cut) && !exempt(e, r))
      problems.push(outside
        ? `${name(e)} spans ${Math.round(r.left)}..${Math.round(r.right)} of ${width}`
        : `${name(e)} is cut off: ${e.scrollWidth} > ${e.clientWidth}`);
  }
  // A segmented control scrolls its buttons inside itself, with no scroll bar to see.
  for (const group of document.querySelectorAll('[data-testid=stButtonGroup]')) {
    const edge = group.getBoundingClientRect();
    for (const button of group.querySelectorAll('button')) {
      const r = button.getBoundingClientRect();
      if (r.right > edge.right + 1 || button.scrollWidth > button.clientWidth + 1)
        problems.push(`${name(button)} is cut off by its control`);
    }
  }
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const frame = plot.querySelector('.main-svg').getBoundingClientRect();
    for (const text of plot.querySelectorAll('.infolayer text')) {
      const r = text.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1
          || r.bottom > frame.bottom + 1)
        problems.push(`plotly text "${text.textContent.slice(0, 40)}" leaves its figure`);
    }
  }
  return problems;
}"""

QUIET_MS = 400
"""How long the app must stay idle after a run for the page to count as settled."""
RUN_PROBE = """
window.__runsEnded = 0;
window.__lastChange = performance.now();
new MutationObserver((records) => {
  // a quick run's running → notRunning can come in one batch: each record's old value counts
  for (const r of records) if (r.oldValue === 'running') window.__runsEnded += 1;
  window.__lastChange = performance.now();
}).observe(document, {
  attributes: true, attributeOldValue: true, subtree: true,
  attributeFilter: ['data-test-script-state'],
});
"""
SETTLED = """([runs, quiet]) => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || window.__runsEnded <= runs) return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (performance.now() - window.__lastChange < quiet) return false;
  if (document.querySelector('[data-stale=true], [data-testid=stSkeleton]')) return false;
  const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
  if (!charts.every((c) => c.querySelector('.js-plotly-plot .main-svg'))) return false;
  return [...document.images].every((i) => i.complete);
}"""
ON_SCREEN = """(e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight
    && r.right <= window.innerWidth;
}"""
PREDICTION = f"[data-testid=stMetric]:has-text('{PREDICTION_LABEL}')"


def runs_ended(page: Any) -> int:
    """Streamlit runs that have ended since the page was loaded."""
    return int(page.evaluate("() => window.__runsEnded"))


def settle(page: Any, runs: int = 0) -> None:
    """Wait until a run after the first ``runs`` has ended and the page is drawn and quiet."""
    page.wait_for_function(SETTLED, arg=[runs, QUIET_MS], timeout=120_000)


def assert_fits(page: Any, where: str) -> None:
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], f"{where}: {problems[:8]}"


def next_frame(page: Any) -> None:
    """Wait for the browser to lay out and paint twice (after a resize or a scroll)."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def screenshot(page: Any, name: str) -> None:
    """The whole page (Streamlit scrolls inside its main area, so grow the viewport)."""
    size = page.viewport_size
    tall = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(tall, 6000)})
    next_frame(page)
    page.wait_for_function(SETTLED, arg=[0, 0], timeout=30_000)  # charts redrawn at the size
    page.screenshot(path=str(SCREENSHOTS / f"layout-{name}.png"))
    page.set_viewport_size(size)
    next_frame(page)


class Pen:
    """A finger (touch events through CDP) or a mouse on the Draw page's canvas."""

    def __init__(self, page: Any, touch: bool) -> None:
        self.page = page
        self.touch = touch
        box = page.locator(DRAW_CANVAS).first.bounding_box()
        self.left, self.top, self.scale = box["x"], box["y"], box["width"] / CANVAS_SIZE
        self.cdp = page.context.new_cdp_session(page) if touch else None

    def _at(self, x: float, y: float) -> tuple[float, float]:
        return self.left + x * self.scale, self.top + y * self.scale

    def down(self, x: float, y: float) -> None:
        if self.cdp:
            self._send("touchStart", x, y)
        else:
            self._mouse(x, y, down=True)

    def move(self, x: float, y: float) -> None:
        if self.cdp:
            self._send("touchMove", x, y)
        else:
            self._mouse(x, y)

    def up(self) -> None:
        if self.cdp:
            self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        else:
            self.page.mouse.up()

    def close(self) -> None:
        if self.cdp:
            self.cdp.detach()

    def _send(self, kind: str, x: float, y: float) -> None:
        px, py = self._at(x, y)
        assert self.cdp is not None
        self.cdp.send(
            "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": px, "y": py}]}
        )

    def _mouse(self, x: float, y: float, down: bool = False) -> None:
        self.page.mouse.move(*self._at(x, y))
        if down:
            self.page.mouse.down()


def draw(pen: Pen, strokes: list[list[tuple[float, float]]], midway: Callable[[], None]) -> None:
    """Draw ``strokes`` (canvas pixels), ten moves a segment.

    ``midway()`` is called halfway through the last stroke's moves, the pen still down.
    """
    for number, stroke in enumerate(strokes):
        pen.down(*stroke[0])
        points = [
            (xa + (xb - xa) * t / 10, ya + (yb - ya) * t / 10)
            for (xa, ya), (xb, yb) in itertools.pairwise(stroke)
            for t in range(1, 11)
        ]
        for i, point in enumerate(points):
            pen.move(*point)
            if number == len(strokes) - 1 and i == len(points) // 2:
                midway()
        pen.up()


def check_draw_page(page: Any, size: str) -> None:
    """The canvas fits the screen, a finger draws a 7, the Prediction shows it, on screen."""
    canvas = page.locator(DRAW_CANVAS).first
    canvas.wait_for(timeout=120_000)
    canvas.scroll_into_view_if_needed()
    next_frame(page)
    box = canvas.bounding_box()
    width = page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{size}: canvas {box}"
    prediction = page.locator(PREDICTION).first
    runs = [runs_ended(page)]

    def on_screen_while_drawing() -> None:
        # a stroke still being drawn sends live values: the Prediction they show must be seen
        prediction.wait_for(timeout=60_000)
        settle(page, runs[0])
        assert prediction.evaluate(ON_SCREEN), (
            f"{size}: the Prediction is off screen while drawing: {prediction.bounding_box()}"
        )
        runs[0] = runs_ended(page)

    pen = Pen(page, touch=bool(SIZES[size].get("has_touch")))
    try:
        draw(pen, DIGIT_STROKES["7"], on_screen_while_drawing)
    finally:
        pen.close()
    page.wait_for_function(
        "() => { const m = document.querySelector('[data-testid=stMetricValue]');"
        " return m && m.innerText.trim() === '7'; }",
        timeout=60_000,
    )
    settle(page, runs[0])  # the run of the finished stroke
    value = page.get_by_test_id("stMetricValue").first
    seen = value.bounding_box()
    height = page.viewport_size["height"]
    assert seen is not None and seen["y"] >= 0 and seen["y"] + seen["height"] <= height, (
        f"{size}: the Prediction is off screen after drawing: {seen}"
    )


def open_view(page: Any, control: str, label: str) -> None:
    runs = runs_ended(page)
    page.locator(key_selector(control)).get_by_text(label, exact=True).first.click()
    settle(page, runs)


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[Any, str]]:
    """One server and one headless Chromium for every size: ``(browser, url)``."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium, url
        finally:
            chromium.close()


def check_page(page: Any, url: str, name: str, path: str, size: str) -> None:
    """One page at one size: it fits, and so do its views known to have been cut off."""
    page.goto(f"{url}/{path}")
    settle(page)
    if name == "draw":
        check_draw_page(page, size)
    assert_fits(page, f"{name} at {size}")
    screenshot(page, f"{name}-{size}")
    if name == "draw":
        open_view(page, "draw_view", "Learned filters")
        assert_fits(page, f"draw, learned filters, at {size}")
    if name == "train" and size == "laptop":  # one short run: the confusion matrix
        runs = runs_ended(page)
        page.get_by_text("Start training").first.click()
        page.get_by_text("Done:").first.wait_for(timeout=180_000)
        settle(page, runs)
        assert_fits(page, "train, after a run, at laptop")
        screenshot(page, "train-trained-laptop")


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_fits(browser: tuple[Any, str], size: str) -> None:
    from playwright.sync_api import Error as PlaywrightError

    chromium, url = browser
    context = chromium.new_context(**SIZES[size])
    context.add_init_script(RUN_PROBE)
    failures = []
    try:
        for name, path in URL_PATHS.items():
            page = context.new_page()
            try:  # every page is checked: one failing does not hide the others
                check_page(page, url, name, path, size)
            except (AssertionError, PlaywrightError) as exc:
                failures.append(f"{name}: {' '.join(str(exc).split())[:600]}")
            finally:
                page.close()
    finally:
        context.close()
    assert not failures, f"at {size}:\n" + "\n".join(failures)
