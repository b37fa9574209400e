"""Accessibility in headless Chromium: axe-core's WCAG 2.0–2.2 A/AA rules on every page and view.

axe-core is pinned by ``tests/a11y/package-lock.json`` and installed by ``make axe``
(``npm ci``). One server serves every check; each page is opened by its URL path from
:data:`explorer.hosting.addresses.URL_PATHS`, read when the tests are collected, so a new page
is audited without a change here. The main views of each page (a drawn digit on Draw, the
Image page's views, the lab's views, the Experiment's modes) are audited as they show.

Also here: every control is reachable with Tab (the Draw canvas included), the canvas draws
from the keyboard and with a single click, and the lab's ▶ Play shows its last frame at once
when the browser asks for reduced motion.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from explorer.bench.served import draw_strokes
from explorer.hosting.addresses import URL_PATHS, key_selector
from explorer.inputs.strokes import DIGIT_STROKES
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAW_CANVAS,
    REPO,
    SCREENSHOTS,
    streamlit_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

AXE = REPO / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
"""axe's tags for WCAG 2.0, 2.1 and 2.2 at levels A and AA (2.2 added no level-A rule)."""
SERIOUS = {"serious", "critical"}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
if not AXE.is_file():
    pytest.skip(f"{AXE} missing: run `make axe` (npm ci in tests/a11y)", allow_module_level=True)


def settle(page: Page, quiet_ms: int = 1500, timeout_ms: int = 120_000) -> None:
    """Wait until the app's script has stopped running and the page has been still a moment."""
    # A running script shows the status widget's running icon, a spinner or faded (stale)
    # elements, whose greyed text would fail the contrast check for the wrong reason.
    busy = (
        "() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon],"
        " [data-testid=stSpinner], [data-stale=true]')"
    )
    page.wait_for_timeout(300)
    page.wait_for_function(busy, timeout=timeout_ms)
    page.wait_for_timeout(quiet_ms)
    page.wait_for_function(busy, timeout=timeout_ms)


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical WCAG A/AA violations on ``page``, one line a node."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    lines = []
    for rule in results["violations"]:
        for node in rule["nodes"]:
            if node["impact"] in SERIOUS:
                lines.append(f"{rule['id']} ({node['impact']}) {shown(node)}")
    return lines


def shown(node: dict[str, Any]) -> str:
    """A failing node in one line: the end of its selector, its text, what axe measured."""
    target = " ".join(str(t) for t in node["target"])
    text = node["html"].replace("\n", " ")
    line = f"…{target[-70:]} {text[:90]!r}"
    for check in node["any"]:
        data = check.get("data") or {}
        if isinstance(data, dict) and "contrastRatio" in data:
            line += f" {data['fgColor']} on {data['bgColor']}: {data['contrastRatio']}:1"
    return line


def pick(page: Page, key: str, option: str) -> None:
    """Click ``option`` of the segmented control or radio with widget key ``key``."""
    page.locator(key_selector(key)).get_by_text(option, exact=True).first.click()
    settle(page)


def draw_a_seven(page: Page) -> None:
    page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
    draw_strokes(page, DIGIT_STROKES["7"])
    page.locator(".st-key-stage_0").first.wait_for(timeout=120_000)
    settle(page)


VIEWS = {
    "draw": ("draw_view", ["Learned filters", "What a channel looks for"]),
    "image": ("image_view", ["Filters", "Architecture", "Layers"]),
    "lab": ("lab_view", ["Activation & pooling", "Pipeline", "1-D convolution"]),
    "experiment": ("exp_mode", ["Knock out channels", "Two digits", "Two models"]),
}
"""Each page's main views after the one it opens on: ``(widget key, options)``."""


def views(name: str) -> list[tuple[str, Callable[[Page], None]]]:
    """The views of page ``name`` to audit after it opens: ``(label, how to get there)``."""
    shown: list[tuple[str, Callable[[Page], None]]] = []
    if name == "draw":
        shown.append(("a drawn 7", draw_a_seven))
    key, options = VIEWS.get(name, ("", []))
    shown += [(option, functools.partial(pick, key=key, option=option)) for option in options]
    return shown


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[Browser, str]]:
    """One server and one Chromium for the module; the server has run its script once."""
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)  # until st.navigation has run once, deep links are "Page not found"
        page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
        page.close()
        yield chromium, url
        chromium.close()


def open_page(browser: tuple[Browser, str], path: str, **options: Any) -> Page:
    chromium, url = browser
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, **options)
    page.goto(f"{url}/{path}")
    page.get_by_test_id("stSidebarNav").wait_for(timeout=120_000)
    settle(page)
    return page


@pytest.mark.parametrize("name", sorted(URL_PATHS))
def test_axe_finds_no_serious_violation(browser: tuple[Browser, str], name: str) -> None:
    """The page as it opens, then each main view: no serious or critical WCAG A/AA failure."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, URL_PATHS[name])
    found = [f"as it opens: {line}" for line in serious_violations(page)]
    for label, go in views(name):
        go(page)
        found += [f"{label}: {line}" for line in serious_violations(page)]
    page.screenshot(path=str(SCREENSHOTS / f"a11y-{name}.png"), full_page=True)
    page.close()
    assert not found, f"axe on /{URL_PATHS[name]}:\n" + "\n".join(found)


def test_axe_reports_a_contrast_failure(browser: tuple[Browser, str]) -> None:
    """The audit can fail: Streamlit's old caption grey on white (3.88:1) is a violation."""
    html = (
        "<html lang='en'><head><title>t</title></head><body><main>"
        "<p style='color:#828180;background:#fff'>caption text</p></main></body></html>"
    )
    page = browser[0].new_page()
    page.set_content(html)
    found = serious_violations(page)
    page.close()
    assert len(found) == 1 and found[0].startswith("color-contrast (serious)"), found
    assert "#828180 on #ffffff: 3.88:1" in found[0]


IDENTITY = """(el) => [el.tagName, el.getAttribute("role") || el.type || "",
  (el.getAttribute("aria-label") || el.innerText || el.getAttribute("title") || "")
    .trim().replace(/\\s+/g, " ").slice(0, 60)].join(" | ")"""
"""A control's name that survives a re-render (Streamlit may rebuild an element): tag, role
and accessible label."""
CONTROLS = (
    """() => {
  // Every control a keyboard user needs: visible, enabled, and not a radio option (a radio
  // group or a segmented control takes one Tab; arrows pick within). Also how many elements
  // Tab stops at in all (plotly's modebar buttons too), to bound the presses.
  const identity = """
    + IDENTITY
    + """;
  const needed = new Set();
  let stops = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) walk(el.shadowRoot);
      // tabindex=-1: out of the Tab order on purpose (the other options of a group)
      const focusable = el.matches(
        "button, input, select, textarea, a[href], summary, [tabindex]") &&
        el.getAttribute("tabindex") !== "-1";
      if (!focusable || el.disabled || el.type === "hidden") continue;
      // not shown: hidden, or inside a closed <details> (content-visibility: hidden)
      if (!el.checkVisibility({ contentVisibilityAuto: true, visibilityProperty: true })) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue;
      stops += 1;
      const radio = el.type === "radio" || el.getAttribute("role") === "radio";
      if (radio || el.closest("[aria-hidden=true], .modebar")) continue;
      needed.add(identity(el));
    }
  };
  walk(document);
  return { needed: [...needed], stops };
}"""
)
FOCUSED = (
    """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  return el && el !== document.body ? ("""
    + IDENTITY
    + """)(el) : "";
}"""
)


@pytest.mark.parametrize("name", sorted(URL_PATHS))
def test_every_control_is_reached_with_tab(browser: tuple[Browser, str], name: str) -> None:
    """Tab from the top reaches every control (the Draw canvas too), and never gets stuck.

    Stuck: focus on one element for 20 presses in a row, a keyboard trap.
    """
    page = open_page(browser, URL_PATHS[name])
    controls = page.evaluate(CONTROLS)
    needed, stops = set(controls["needed"]), controls["stops"]
    assert needed, "the page has controls"
    reached: set[str] = set()
    previous, stuck = "", 0
    for _ in range(2 * stops + 30):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        reached.add(focused)
        # a data grid's canvas keeps focus for a few Tabs (it moves between cells), then lets go
        stuck = stuck + 1 if focused == previous and focused else 0
        assert stuck < 20, f"focus is trapped on {focused!r}"
        previous = focused
        if needed <= reached:
            break
    page.close()
    assert needed <= reached, f"/{URL_PATHS[name]}: Tab never reaches {sorted(needed - reached)}"
    if name == "draw":
        assert any("Drawing canvas" in control for control in needed)


def test_the_canvas_draws_from_the_keyboard(browser: tuple[Browser, str]) -> None:
    """Focus the canvas, put the pen down with Space, move it with the arrows: a 1."""
    page = open_page(browser, URL_PATHS["draw"])
    canvas = page.locator(DRAW_CANVAS).first
    canvas.wait_for(timeout=120_000)
    canvas.focus()
    assert page.locator(f"{key_selector('draw_canvas')} .cursor").first.is_visible()
    for _ in range(8):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    for _ in range(16):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    page.locator(".st-key-stage_0").first.wait_for(timeout=120_000)
    settle(page)
    value = page.get_by_test_id("stMetricValue").first.inner_text().strip()
    page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-one.png"))
    page.close()
    assert value == "1"


def test_a_single_click_paints_a_dot(browser: tuple[Browser, str]) -> None:
    """No drag needed: one click on the canvas is ink the page predicts from."""
    page = open_page(browser, URL_PATHS["draw"])
    canvas = page.locator(DRAW_CANVAS).first
    canvas.wait_for(timeout=120_000)
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator(".st-key-stage_0").first.wait_for(timeout=120_000)
    settle(page)
    # the server painted it: the input the network sees has ink (its text alternative says so)
    captions = page.get_by_test_id("stCaptionContainer").all_inner_texts()
    assert any(text.startswith("input: 28×28 map, values −") for text in captions), captions
    page.close()


@pytest.mark.parametrize("reduce", [True, False])
def test_play_respects_reduced_motion(browser: tuple[Browser, str], reduce: bool) -> None:
    """Asked for reduced motion, the lab offers no ▶ Play animation, only the step sliders."""
    page = open_page(
        browser, URL_PATHS["lab"], reduced_motion="reduce" if reduce else "no-preference"
    )
    page.get_by_text("Output size").first.wait_for(timeout=60_000)
    settle(page)
    play = page.locator(key_selector("lab_play")).count()
    note = page.get_by_text("asks for reduced motion").count()
    page.close()
    assert (play, note) == ((0, 1) if reduce else (1, 0))
