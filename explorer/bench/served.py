"""What a person gets from the served app: the benchmark's figures taken on a real server.

Each measurement starts ``streamlit run`` (:mod:`explorer.hosting.server`) and drives it as
users do: Streamlit's own websocket protocol (:mod:`explorer.bench.loadtest`'s sessions) for
server CPU and latency under load, headless Chromium for a stroke's latency on screen.
Nothing here copies the pages' work.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explorer.bench.loadplan import LoadPlan
from explorer.bench.loadtest import run_load
from explorer.bench.timing import percentile
from explorer.hosting.addresses import DRAW_CANVAS_KEY, key_selector
from explorer.hosting.client import stream_url
from explorer.hosting.server import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from explorer.inputs.strokes import DIGIT_STROKES

P95_TARGET_MS = 250.0
"""The latency a class's server must hold at its 95th percentile (issue: ≤ 250 ms)."""
SESSION_LADDER = (30, 45, 60, 75, 90, 120)
"""Session counts tried, in order, for the most simulated students one server holds."""
BROWSER_DIGITS = ("1", "7", "0")
DRAW_CANVAS = f"{key_selector(DRAW_CANVAS_KEY)} canvas"
"""The Draw page's canvas (pages/canvas.js) for Playwright (its locators pierce shadow roots)."""
CLEAR_CANVAS = f"{key_selector(DRAW_CANVAS_KEY)} button.clear"
# In-page clocks: pointer-up on the canvas, and every change of Streamlit's run state.
_BROWSER_PROBE = """
window.__strokeUp = null;
window.__runStates = [];
document.addEventListener('pointerup', () => { window.__strokeUp = performance.now(); }, true);
new MutationObserver((records) => {
  // Records come in batches: a quick run's running → notRunning can land in one callback,
  // so each record's old value counts too.
  const now = performance.now();
  for (const r of records) if (r.oldValue) window.__runStates.push([r.oldValue, now]);
  const app = document.querySelector('[data-test-script-state]');
  const state = app && app.getAttribute('data-test-script-state');
  if (state) window.__runStates.push([state, now]);
}).observe(document, {
  attributes: true, attributeOldValue: true, subtree: true,
  attributeFilter: ['data-test-script-state'],
});
"""
_PREDICTION_SHOWS = """(digit) => {
  const m = document.querySelector('[data-testid=stMetricValue]');
  return m && m.innerText.trim() === digit ? performance.now() : null;
}"""
# Settled: after the pointer-up a run started, and the app has been idle for QUIET_MS since
# the last run ended (a live run in flight can end first; the full run follows it).
QUIET_MS = 400
_PAGE_SETTLED = """(quiet) => {
  const up = window.__strokeUp;
  const states = window.__runStates.filter(([, t]) => up !== null && t >= up);
  if (!states.some(([state]) => state === 'running')) return null;
  const [state, t] = states[states.length - 1];
  return state === 'notRunning' && performance.now() - t >= quiet ? t : null;
}"""


@dataclass(frozen=True)
class ServedSettings:
    """How long each served measurement runs (``--quick`` shortens them)."""

    stroke_s: float
    class_s: float
    ladder_s: float
    image_s: float
    browser_strokes: int
    ladder: tuple[int, ...]

    @classmethod
    def for_mode(cls, quick: bool) -> ServedSettings:
        """The full settings, or the quick ones (enough to check every key works)."""
        if quick:
            return cls(4.0, 6.0, 0.0, 4.0, 3, ())
        return cls(20.0, 60.0, 30.0, 30.0, 12, SESSION_LADDER)


def _load(plan: LoadPlan, url: str, pid: int) -> dict[str, Any]:
    ws_url, page_url = stream_url(url)
    return asyncio.run(run_load(plan, ws_url, page_url, pid))


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("sessions", "reruns", "errors", "late_sends", "p50_ms", "p95_ms", "max_ms")
    return {key: report[key] for key in (*keys, "server_cpu_ms_per_rerun")}


def _holds(report: dict[str, Any]) -> bool:
    p95 = report["p95_ms"]
    return (
        report["errors"] == 0
        and report["late_sends"] == 0
        and p95 is not None
        and (p95 <= P95_TARGET_MS)
    )


def served_load(device: torch.device, settings: ServedSettings) -> dict[str, Any]:
    """Server CPU per stroke, 30 students' p95, the most students held, the Image page's load.

    One server for all of them (warmed by the load generator before each window):

    - ``server_cpu_ms_per_stroke``: one session, a finished stroke every 0.5 s; the server's
      own CPU time (``/proc``) ÷ strokes. A stroke is what the canvas sends on pointer-up.
    - ``server_p95_ms_30_sessions``: 30 sessions, a stroke each every 2 s, for 60 s.
    - ``max_sessions_p95_250``: the largest of :data:`SESSION_LADDER` (30 s each) at which the
      p95 stays ≤ 250 ms with no error and no session falling behind its schedule.
    - ``image_p50_ms`` / ``image_p95_ms``: 10 sessions on the Image page (ResNet-18), a layer
      switch each every 2 s.

    Returns:
        ``{"results": {key: value}, "notes": {key: detail}}``.
    """
    results: dict[str, float | None] = {}
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="explorer-served-") as folder:
        log = Path(folder) / "streamlit.log"
        with streamlit_server(device, log) as server:
            pid = server.process.pid
            one = _load(LoadPlan("draw", 1, settings.stroke_s, 0.5), server.url, pid)
            results["server_cpu_ms_per_stroke"] = one["server_cpu_ms_per_rerun"]
            notes["server_cpu_ms_per_stroke"] = _summary(one)
            thirty = _load(LoadPlan("draw", 30, settings.class_s, 2.0), server.url, pid)
            results["server_p95_ms_30_sessions"] = (
                thirty["p95_ms"] if not thirty["errors"] else None
            )
            notes["server_p95_ms_30_sessions"] = _summary(thirty)
            held: int | None = 30 if _holds(thirty) else None
            ladder: list[dict[str, Any]] = []
            for sessions in settings.ladder:
                if sessions <= 30:
                    continue
                report = _load(LoadPlan("draw", sessions, settings.ladder_s, 2.0), server.url, pid)
                ladder.append(_summary(report))
                if not _holds(report):
                    break
                held = sessions
            if settings.ladder:
                results["max_sessions_p95_250"] = held
                notes["max_sessions_p95_250"] = ladder
            image = _load(LoadPlan("classify", 10, settings.image_s, 2.0), server.url, pid)
            results["image_p50_ms"] = image["p50_ms"]
            results["image_p95_ms"] = image["p95_ms"]
            notes["image_p95_ms"] = _summary(image)
    return {"results": results, "notes": notes}


def draw_strokes(
    page: Any,
    strokes: Sequence[Sequence[tuple[float, float]]],
    pace_ms: int = 0,
    lift: bool = True,
) -> None:
    """Mouse strokes on the Draw page's canvas, in canvas pixels (Playwright ``page``).

    Ten moves per segment, ``pace_ms`` apart (a hand's pace: ~12); with ``lift=False`` the
    pen stays down at the end of the last stroke.
    """
    box = page.locator(DRAW_CANVAS).first.bounding_box()
    for index, stroke in enumerate(strokes):
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        for (xa, ya), (xb, yb) in itertools.pairwise(stroke):
            for t in range(1, 11):
                page.mouse.move(
                    box["x"] + xa + (xb - xa) * t / 10, box["y"] + ya + (yb - ya) * t / 10
                )
                if pace_ms:
                    page.wait_for_timeout(pace_ms)
        if lift or index < len(strokes) - 1:
            page.mouse.up()


_BROWSER_KEYS = ("browser_stroke_p50_ms", "browser_stroke_p95_ms", "browser_settled_p50_ms")


def browser_strokes(device: torch.device, strokes: int, pace_ms: int = 12) -> dict[str, Any]:
    """Headless Chromium, one session: mouse-up → the Prediction shows the digit drawn.

    Each stroke starts from a cleared canvas and draws 1, 7 or 0 at a hand's pace; the clock
    is the page's own (``performance.now()`` at the pointer-up, then at the first frame where
    the Prediction reads the digit). The canvas sends live values while the pen moves, so the
    prediction is often right *before* the pen lifts: such strokes count 0 ms. Also timed:
    pointer-up → the page settled (the run the pointer-up started has ended: every stage
    redrawn), and the same without live values (the canvas's live sends switched off).

    Returns:
        ``{"results": {...}, "notes": {...}}``; with no browser, the keys are None and the
        notes say why.
    """
    if not Path(CHROMIUM).exists():
        return _no_browser_figures(f"{CHROMIUM} not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        return _no_browser_figures("playwright is not installed (pip install playwright)")
    times = _StrokeTimes()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="explorer-browser-") as folder,
            streamlit_server(device, Path(folder) / "streamlit.log") as server,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for live in (True, False):
                    _time_strokes(browser, server.url, live, strokes, times, PlaywrightTimeout)
            finally:
                browser.close()
    except Exception as exc:  # a browser or server failure is a missing figure, not a crash
        return _no_browser_figures(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    if not times.shown[True] or not times.shown[False]:
        return _no_browser_figures("no stroke was timed")
    return _browser_figures(times)


def _no_browser_figures(reason: str) -> dict[str, Any]:
    """:func:`browser_strokes`'s answer when it could not time strokes: no values, and why."""
    return {"results": dict.fromkeys(_BROWSER_KEYS), "notes": dict.fromkeys(_BROWSER_KEYS, reason)}


@dataclass
class _StrokeTimes:
    """What :func:`browser_strokes` measured, in ms after each pointer-up.

    Attributes:
        shown: When the Prediction showed the digit, with live values (True) and without.
        settled: When the page settled (with live values), for the strokes where it was seen.
        missed: Strokes whose settling the probe did not see.
    """

    shown: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})
    settled: list[float] = field(default_factory=list)
    missed: int = 0


def _time_strokes(
    browser: Any,
    url: str,
    live: bool,
    strokes: int,
    times: _StrokeTimes,
    timeout_error: type[Exception],
) -> None:
    """A warm-up stroke, then ``strokes`` timed ones in a new page (``live``: live values)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(_BROWSER_PROBE)
    if not live:
        page.add_init_script("window.__cnnCanvasLiveMs = 0;")
    page.goto(url)
    page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
    for index in range(strokes + 1):  # the first is a warm-up
        digit = BROWSER_DIGITS[index % len(BROWSER_DIGITS)]
        _clear_canvas(page)
        up, at, done = _stroke_clocks(page, digit, times, timeout_error)
        if index == 0:
            continue
        times.shown[live].append(max(0.0, float(at) - float(up)))
        if live and done is not None:
            times.settled.append(float(done) - float(up))
    page.close()


def _clear_canvas(page: Any) -> None:
    """Clear the canvas if a prediction shows, and wait until the page has redrawn."""
    if page.get_by_test_id("stMetric").count():
        page.locator(CLEAR_CANVAS).click()
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=stMetric]')",
            timeout=60_000,
        )
        page.wait_for_timeout(QUIET_MS + 300)  # its full run's redraw


def _stroke_clocks(
    page: Any, digit: str, times: _StrokeTimes, timeout_error: type[Exception]
) -> tuple[Any, Any, Any | None]:
    """Draw ``digit``; the page's clock at the pointer-up, at the prediction and once settled.

    The settled time is None (and counted as missed) when the probe did not see it: Playwright
    raised ``timeout_error``.
    """
    page.evaluate("window.__strokeUp = null; window.__runStates = [];")
    draw_strokes(page, DIGIT_STROKES[digit], pace_ms=12)
    at = page.wait_for_function(
        _PREDICTION_SHOWS, arg=digit, polling="raf", timeout=60_000
    ).json_value()
    try:
        done = page.wait_for_function(_PAGE_SETTLED, arg=QUIET_MS, timeout=30_000).json_value()
    except timeout_error:  # a run-state change the probe missed
        done = None
        times.missed += 1
    up = page.evaluate("window.__strokeUp")
    return up, at, done


def _browser_figures(times: _StrokeTimes) -> dict[str, Any]:
    """:func:`browser_strokes`'s results and notes from the strokes timed."""
    live_times, plain_times, settled = times.shown[True], times.shown[False], times.settled
    results = {
        "browser_stroke_p50_ms": round(statistics.median(live_times), 1),
        "browser_stroke_p95_ms": round(percentile(live_times, 95) or 0.0, 1),
        "browser_settled_p50_ms": round(statistics.median(settled), 1) if settled else None,
    }
    notes = {
        "browser_stroke_p50_ms": {
            "strokes": len(live_times),
            "ms": [round(t) for t in live_times],
            "without_live_values_ms": [round(t) for t in plain_times],
            "without_live_values_p50_ms": round(statistics.median(plain_times), 1),
            "without_live_values_p95_ms": round(percentile(plain_times, 95) or 0.0, 1),
        },
        "browser_settled_p50_ms": {"ms": [round(t) for t in settled], "not_seen": times.missed},
    }
    return {"results": results, "notes": notes}
