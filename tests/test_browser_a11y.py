"""Accessibility in headless Chromium: axe-core's WCAG 2.0–2.2 A/AA rules on every page and view.

axe-core is pinned by ``tests/a11y/package-lock.json`` and installed by ``make axe``
(``npm ci``). One server serves every check; each page is opened by its URL path from
:data:`explorer.hosting.addresses.URL_PATHS`, read when the tests are collected, so a new page
is audited without a change here. The main views of each page (a drawn digit on Draw, the
Image page's views, the lab's views, the Experiment's modes) are audited as they show.

Every page and view is audited in the light and the dark theme (the app follows the browser's
``prefers-color-scheme``, Playwright's ``color_scheme``), and every lesson of the Lessons page
(``?lesson=<slug>``) in both. In the dark theme the figures' text must contrast with their
paper, and the sticky Prediction's background must be the theme's.

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
from explorer.views.lessons import load_lessons
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
SCHEMES = ["light", "dark"]
"""The browser's ``prefers-color-scheme``; the app's theme follows it (.streamlit/config.toml)."""
LESSONS = {lesson.slug: lesson.title for lesson in load_lessons()}
"""Each lesson's slug (its ``?lesson=``) and title."""
AA_TEXT = 4.5
"""WCAG 2.2 AA's least contrast for normal text (1.4.3)."""

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


def rgb(css: str) -> tuple[float, float, float, float]:
    """A computed CSS colour (``rgb(…)`` or ``rgba(…)``) as red, green, blue (0–255), alpha."""
    inside = css[css.index("(") + 1 : css.rindex(")")]
    parts = [float(part) for part in inside.replace("/", ",").replace(" ", ",").split(",") if part]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 1.0)


def over(colour: str, background: str, opacity: float = 1.0) -> tuple[float, float, float]:
    """``colour`` (times ``opacity``) as it shows over the opaque ``background``."""
    *front, alpha = rgb(colour)
    alpha *= opacity
    back = rgb(background)[:3]
    red, green, blue = (alpha * f + (1 - alpha) * b for f, b in zip(front, back, strict=True))
    return (red, green, blue)


def luminance(colour: tuple[float, float, float]) -> float:
    """WCAG 2.2's relative luminance of an sRGB colour (0–255 a channel)."""
    linear = [
        c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4
        for c in colour
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG's contrast ratio of two colours, 1 to 21."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


APP_BACKGROUND = "() => getComputedStyle(document.querySelector('.stApp')).backgroundColor"


def assert_theme(page: Page, scheme: str) -> None:
    """The app shows the ``scheme`` theme: a dark background for dark, a light one for light."""
    background = over(page.evaluate(APP_BACKGROUND), "rgb(255, 255, 255)")
    assert (luminance(background) < 0.05) == (scheme == "dark"), (scheme, background)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(URL_PATHS))
def test_axe_finds_no_serious_violation(
    browser: tuple[Browser, str], name: str, scheme: str
) -> None:
    """The page as it opens, then each main view: no serious or critical WCAG A/AA failure."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, URL_PATHS[name], color_scheme=scheme)
    assert_theme(page, scheme)
    found = [f"as it opens: {line}" for line in serious_violations(page)]
    for label, go in views(name):
        go(page)
        found += [f"{label}: {line}" for line in serious_violations(page)]
    suffix = "" if scheme == "light" else f"-{scheme}"
    page.screenshot(path=str(SCREENSHOTS / f"a11y-{name}{suffix}.png"), full_page=True)
    page.close()
    assert not found, f"axe on /{URL_PATHS[name]} ({scheme}):\n" + "\n".join(found)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("slug", list(LESSONS))
def test_axe_finds_no_serious_violation_in_a_lesson(
    browser: tuple[Browser, str], slug: str, scheme: str
) -> None:
    """Each lesson (``?lesson=<slug>``) as it opens, with its live view: no serious failure."""
    page = open_page(browser, f"{URL_PATHS['lessons']}?lesson={slug}", color_scheme=scheme)
    assert_theme(page, scheme)
    shown = page.get_by_test_id("stMain").locator("h3").first.inner_text()
    found = serious_violations(page)
    if slug == list(LESSONS)[-1] and scheme == "dark":
        page.screenshot(path=str(SCREENSHOTS / f"a11y-lesson-{slug}-dark.png"), full_page=True)
    page.close()
    assert LESSONS[slug] in shown, f"?lesson={slug} shows {shown!r}"
    assert not found, f"axe on lesson {slug} ({scheme}):\n" + "\n".join(found)


FIGURE_TEXT = """() => [...document.querySelectorAll('.js-plotly-plot')].map((plot) => ({
  paper: getComputedStyle(plot.querySelector('svg.main-svg')).backgroundColor,
  texts: [...plot.querySelectorAll(
    '.infolayer text, .xaxislayer-above text, .yaxislayer-above text')]
    .filter((text) => text.textContent.trim() && text.getBBox().width > 0)
    .map((text) => [text.textContent.trim().slice(0, 40), getComputedStyle(text).fill,
      Number(getComputedStyle(text).fillOpacity)]),
}))"""
"""Each figure's paper colour and the fill of its text that sits on the paper: title, axis
ticks and titles, colour-bar ticks and title, annotations, legend (not the numbers written
in a heatmap's cells, whose background is the cell)."""


@pytest.mark.parametrize("scheme", SCHEMES)
def test_figure_text_contrasts_with_its_paper(browser: tuple[Browser, str], scheme: str) -> None:
    """Every figure text on its paper, as rendered: 4.5:1 or more, in either theme.

    The figures of the lab page and of the Draw page with a 7 drawn.
    """
    low: list[str] = []
    checked = 0
    for name in ("lab", "draw"):
        page = open_page(browser, URL_PATHS[name], color_scheme=scheme)
        assert_theme(page, scheme)
        if name == "draw":
            draw_a_seven(page)
        page.locator(".js-plotly-plot text").first.wait_for(timeout=60_000)
        app = over(page.evaluate(APP_BACKGROUND), "rgb(255, 255, 255)")
        for figure in page.evaluate(FIGURE_TEXT):
            paper = over(figure["paper"], f"rgb{tuple(round(c) for c in app)}")
            for text, fill, opacity in figure["texts"]:
                checked += 1
                ink = over(fill, f"rgb{tuple(round(c) for c in paper)}", opacity)
                ratio = contrast(ink, paper)
                if ratio < AA_TEXT:
                    low.append(f"{name}: {text!r} {fill} on {paper}: {ratio:.2f}:1")
        page.close()
    assert checked > 50, f"only {checked} figure texts found"
    assert not low, "\n".join(low)


STICKY_BACKGROUND = """() => {
  const probe = document.createElement('div');
  probe.style.background = 'var(--cnn-background)';
  document.querySelector('[data-testid=stMain]').appendChild(probe);
  const colour = getComputedStyle(probe).backgroundColor;
  probe.remove();
  return colour;
}"""


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sticky_prediction_background_is_the_themes(
    browser: tuple[Browser, str], scheme: str
) -> None:
    """``--cnn-background`` (the Draw page's sticky Prediction on a phone) is the app's own."""
    page = open_page(browser, URL_PATHS["draw"], color_scheme=scheme)
    assert_theme(page, scheme)
    sticky, app = page.evaluate(STICKY_BACKGROUND), page.evaluate(APP_BACKGROUND)
    page.close()
    assert rgb(sticky) == rgb(app)


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
    assert any(text.startswith("input: 28 × 28 map, values −") for text in captions), captions
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
