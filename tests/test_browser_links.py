"""Every view is a link: change a view, copy its link, open it in a fresh browser, same view.

One server for the module. Each test changes a page through its widgets as a student would,
reads the link from the page's "Link to this view" box, opens it in a new browser context (no
cookies, no session: what a classmate gets) and checks that the widgets and the numbers
shown are the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from explorer.bench.served import draw_strokes
from explorer.hosting.addresses import PREDICTION_LABEL, VIEW_LINK_URL
from explorer.hosting.addresses import key_selector as css_class
from explorer.inputs.strokes import DIGIT_STROKES, MAX_POINTS, drawing_value, parse_drawing
from explorer.views.lessons import load_lessons
from explorer.views.links import decode_strokes, encode_strokes
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAW_CANVAS,
    SCREENSHOTS,
    click_until,
    streamlit_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

LONG_MS = 120_000


def key_selector(key: str) -> str:
    """The widget of ``key``: Streamlit's CSS class has a ``-`` for each ``.`` of the key."""
    return css_class(re.sub(r"[^A-Za-z0-9_-]", "-", key))


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[str, Browser]]:
    """The server's URL and one browser; the app's root opened once (its first run)."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = fresh_page(browser, url)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=LONG_MS)
        page.context.close()
        yield url, browser
        browser.close()


def fresh_page(browser: Browser, url: str) -> Page:
    """A page in a new browser context (a new session, nothing shared) at ``url``."""
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(url)
    return page


def no_exception(page: Page) -> None:
    assert page.get_by_test_id("stException").count() == 0


def run_over(page: Page) -> None:
    """Wait until the page's script run is over (call once its result has started to show)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-test-script-state=running]')", timeout=LONG_MS
    )


def copy_link(page: Page, holds: str) -> str:
    """The link in the page's "Link to this view" box, as a student copies it.

    Read once the address holds ``holds``: the widgets write their parameters as they change.
    """
    page.wait_for_function("s => window.location.href.includes(s)", arg=holds, timeout=LONG_MS)
    page.locator(".cnn-link summary").first.click()
    field = page.locator(VIEW_LINK_URL).first
    field.wait_for(timeout=10_000)
    # the box fills its field on the "toggle" event, which fires after the click returns (in
    # the component's shadow root: Playwright's locators reach it, document.querySelector not)
    from playwright.sync_api import expect

    expect(field).to_have_value(re.compile(re.escape(holds)), timeout=10_000)
    link = field.input_value()
    page.locator(".cnn-link summary").first.click()
    assert holds in link
    return link


SHOWN = """([selector, text, exact]) => {
  const widget = document.querySelector(selector);
  const field = widget && widget.querySelector("input:not([type=range])");
  const shown = field && field.value ? field.value : widget ? widget.innerText.trim() : null;
  return shown !== null && (exact ? shown === text : shown.includes(text));
}"""
"""True once a widget shows a text: its text field's value (a number, a selectbox's option's
label), else its text (a segmented control's)."""


def shows(page: Page, key: str, text: str, exact: bool = False) -> None:
    """Wait until the widget of ``key`` shows ``text`` (all of it, with ``exact``)."""
    page.wait_for_function(SHOWN, arg=[key_selector(key), text, exact], timeout=LONG_MS)


def choose(page: Page, key: str, typed: str, option: str) -> None:
    """Type ``typed`` into the selectbox of ``key`` and pick the option that holds ``option``."""
    box = page.locator(f"{key_selector(key)} input").first
    box.wait_for(timeout=LONG_MS)
    run_over(page)  # the run that made the box is done: no later frame redraws it while typed
    box.click()
    box.fill(typed)
    page.get_by_role("option").filter(has_text=option).first.click()
    shows(page, key, option.strip(" ·"))


def text_of(page: Page, pattern: str) -> str:
    """The first text on the page that matches ``pattern`` (a regular expression)."""
    found = page.get_by_text(re.compile(pattern)).first
    found.wait_for(timeout=LONG_MS)
    return str(found.inner_text())


def prediction(page: Page) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text=PREDICTION_LABEL).first
    metric.wait_for(timeout=LONG_MS)
    return str(metric.inner_text())


def test_image_model_layer_and_channel(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, f"{url}/classify")
    choose(page, "image_model", "SqueezeNet", "SqueezeNet")
    choose(page, "image_layer_squeezenet1_1", "features.3.expand3x3 ", "features.3.expand3x3 ·")
    channel = page.locator(f"{key_selector('image_channel_features.3.expand3x3')} input").first
    channel.wait_for(timeout=LONG_MS)
    channel.fill("42")
    channel.press("Enter")
    stats = text_of(page, r"channel 42: min")
    link = copy_link(page, "image_channel_features.3.expand3x3=42")
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    assert text_of(again, r"channel 42: min") == stats  # the same numbers, computed anew
    shows(again, "image_model", "SqueezeNet")
    shows(again, "image_layer_squeezenet1_1", "features.3.expand3x3")
    shows(again, "image_channel_features.3.expand3x3", "42", exact=True)
    no_exception(again)
    again.screenshot(path=str(SCREENSHOTS / "links-image.png"))
    again.context.close()


def markdown_of(page: Page, pattern: str) -> str:
    """The text of the first Markdown block that matches ``pattern``, all its lines."""
    block = page.get_by_test_id("stMarkdown").filter(has_text=re.compile(pattern)).first
    block.wait_for(timeout=LONG_MS)
    return str(block.inner_text()).strip()


def test_image_clicked_unit(app: tuple[str, Browser]) -> None:
    """The unit clicked on a channel's map travels: its value and receptive field come back."""
    url, browser = app
    page = fresh_page(browser, f"{url}/classify")
    choose(page, "image_model", "LeNet", "LeNet-5")
    choose(page, "image_sample_digit", "7 (sample 2)", "7 (sample 2)")
    choose(page, "image_layer_lenet5", "pool2 ", "pool2 ·")
    figure = page.locator("[class*='st-key-image_channel_fig_pool2_0'] .nsewdrag").first
    click_until(page, figure, "Unit pool2[0,", 0.1, 0.3)  # row 1, column 0: the channel's peak
    unit = markdown_of(page, r"Unit pool2\[0, \d, \d\] = ")
    assert "Its receptive field: 16×16 input pixels" in unit
    # closed, then ONE click on the same point opens it again (the chart's old selection
    # must not swallow it)
    page.locator(".st-key-image_unit_close button").first.click()
    page.wait_for_function("() => !window.location.href.includes('image_unit=')")
    run_over(page)
    box = figure.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 0.1 * box["width"], box["y"] + 0.3 * box["height"])
    assert markdown_of(page, r"Unit pool2\[0, \d, \d\] = ") == unit
    link = copy_link(page, "image_unit=pool2")
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    assert markdown_of(again, r"Unit pool2\[0, \d, \d\] = ") == unit  # computed anew
    shows(again, "image_model", "LeNet-5")
    shows(again, "image_sample_digit", "7 (sample 2)")
    shows(again, "image_layer_lenet5", "pool2")
    run_over(again)
    assert again.get_by_text(re.compile(r"Ignored \?image_unit")).count() == 0
    no_exception(again)
    again.get_by_text("Unit pool2[0,").first.scroll_into_view_if_needed()
    again.get_by_text(re.compile(r"pool2 · channel 0 ·")).first.wait_for(timeout=LONG_MS)
    again.wait_for_timeout(1000)  # the map's box and colour bar are drawn after its title
    again.screenshot(path=str(SCREENSHOTS / "links-image-unit.png"))
    # closed: gone from the page and from its link
    again.locator(".st-key-image_unit_close button").first.click()
    again.wait_for_function("() => !window.location.href.includes('image_unit=')")
    assert again.get_by_text("Unit pool2[0,").count() == 0
    no_exception(again)
    again.context.close()


def output_size(page: Page, size: str) -> str:
    """The lab's "Output size → …" block, once it reads ``size`` (``"2 × 2"``)."""
    block = page.get_by_test_id("stMarkdown").filter(has_text=f"Output size → {size}").first
    block.wait_for(timeout=LONG_MS)
    return str(block.inner_text()).strip()


def test_lab_stride(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, f"{url}/convolution-lab")
    output_size(page, "5 × 5")  # the 7×7 square, a 3×3 kernel, stride 1
    thumb = page.locator(f"{key_selector('lab_stride')} input[type=range]").first
    thumb.focus()
    thumb.press("ArrowRight")
    thumb.press("ArrowRight")
    after = output_size(page, "2 × 2")  # ⌊(7 − 3) / 3⌋ + 1
    link = copy_link(page, "lab_stride=3")
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    assert output_size(again, "2 × 2") == after
    thumb = again.locator(f"{key_selector('lab_stride')} input[type=range]").first
    assert thumb.input_value() == "3"
    no_exception(again)
    again.context.close()


def test_train_settings(app: tuple[str, Browser]) -> None:
    """The Train page's settings travel: a teacher sends the class one training recipe."""
    url, browser = app
    page = fresh_page(browser, f"{url}/train")
    thumb = page.locator(f"{key_selector('train_epochs')} input[type=range]").first
    thumb.wait_for(timeout=LONG_MS)
    thumb.focus()
    thumb.press("ArrowLeft")
    thumb.press("ArrowLeft")  # 5 → 3 epochs
    seed = page.locator(f"{key_selector('train_seed')} input").first
    seed.fill("42")
    seed.press("Enter")
    link = copy_link(page, "train_seed=42")
    assert "train_epochs=3" in link
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    shows(again, "train_seed", "42", exact=True)
    thumb = again.locator(f"{key_selector('train_epochs')} input[type=range]").first
    thumb.wait_for(timeout=LONG_MS)
    assert thumb.input_value() == "3"
    no_exception(again)
    again.context.close()


def test_overview_digit(app: tuple[str, Browser]) -> None:
    """The Overview's sample digit travels, and the prediction shown with it."""
    url, browser = app
    page = fresh_page(browser, f"{url}/overview")
    box = page.locator(f"{key_selector('home_digit')} input").first
    box.wait_for(timeout=LONG_MS)
    run_over(page)
    box.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=LONG_MS)
    last = str(options.last.inner_text()).strip()
    options.last.click()
    shows(page, "home_digit", last)
    link = copy_link(page, "home_digit=")

    again = fresh_page(browser, link)  # its first run is the linked digit's: no stale metric
    shows(again, "home_digit", last)
    shown = prediction(again)
    # the student's page comes to show the very same prediction (class and probability)
    page.wait_for_function(
        """([label, text]) => [...document.querySelectorAll('[data-testid=stMetric]')]
             .some(m => m.innerText.includes(label) && m.innerText === text)""",
        arg=[PREDICTION_LABEL, shown],
        timeout=LONG_MS,
    )
    no_exception(page)
    no_exception(again)
    page.context.close()
    again.context.close()


def test_lab_identity_kernel(app: tuple[str, Browser]) -> None:
    """The selectbox's first option, which Streamlit leaves out of the URL as its default."""
    url, browser = app
    page = fresh_page(browser, f"{url}/convolution-lab?lab_kernel=identity")
    shows(page, "lab_kernel", "identity")
    output_size(page, "5 × 5")
    no_exception(page)
    page.context.close()


SOFTMAX_1 = (
    "() => [...document.querySelectorAll('.st-key-exp_softmax_1 .js-plotly-plot')]"
    ".map(p => p._fullData ? Array.from(p._fullData[0].y) : null).filter(y => y)"
)


def softmax_shown(page: Page) -> list[Any]:
    """The second pass's softmax as its chart drew it (once drawn and the run is over)."""
    page.wait_for_function(f"() => ({SOFTMAX_1})().length > 0", timeout=LONG_MS)
    run_over(page)
    return list(page.evaluate(SOFTMAX_1))


def test_experiment_knockout(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, f"{url}/experiment")
    page.locator(".st-key-exp_mode").get_by_text("Knock out channels").first.click()
    choose(page, "exp_ko_layer_lenet5", "conv2", "conv2")
    for channel, shown in (("3", "3"), ("5", "3, 5")):
        box = page.locator(f"{key_selector('exp_ko_ch_conv2')} input").first
        box.click()
        page.get_by_role("option", name=channel, exact=True).first.click()
        page.keyboard.press("Escape")  # close the list: the next click opens it afresh
        text_of(page, rf"conv2 channels? {shown} knocked out")
    knocked = text_of(page, r"conv2 channels 3, 5 knocked out")
    softmax = softmax_shown(page)
    assert softmax
    link = copy_link(page, "exp_ko_ch_conv2=")
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    assert text_of(again, r"conv2 channels 3, 5 knocked out") == knocked
    assert softmax_shown(again) == softmax
    no_exception(again)
    again.context.close()


INK = """c => {
  const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const ink = [];
  for (let i = 0; i < pixels.length; i += 4) ink.push(pixels[i] > 127 ? 1 : 0);
  return ink;
}"""


def canvas_ink(page: Page) -> np.ndarray:
    """Which of the canvas's pixels are ink (what the student sees painted)."""
    return np.array(page.locator(DRAW_CANVAS).first.evaluate(INK), dtype=bool)


def test_draw_strokes_and_layer(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, url)
    page.locator(DRAW_CANVAS).first.wait_for(timeout=LONG_MS)
    draw_strokes(page, DIGIT_STROKES["7"])
    page.get_by_test_id("stMetric").filter(has_text=re.compile(r"Prediction\s*7")).first.wait_for(
        timeout=LONG_MS
    )
    page.locator(".st-key-draw_view").get_by_text("What a channel looks for").first.click()
    choose(page, "draw_card_layer_lenet5", "conv2", "conv2")
    link = copy_link(page, "draw_card_layer_lenet5=")
    run_over(page)
    shown, painted = prediction(page), canvas_ink(page)
    assert "7" in shown
    assert "draw_strokes=" in link and len(link) < 2_000
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    assert prediction(again) == shown  # the class and its probability, to the digit
    # the drawing is back on the canvas, painted once when the canvas is made
    again.wait_for_function(
        f"c => ({INK})(c).reduce((a, b) => a + b, 0) > 5000",
        arg=again.locator(DRAW_CANVAS).first.element_handle(),
        timeout=LONG_MS,
    )
    restored = canvas_ink(again)
    # the same ink, but for the anti-aliased edges (painted a segment at a time while drawn,
    # at once when restored)
    assert painted.sum() > 5_000
    assert (restored & painted).sum() / (restored | painted).sum() > 0.97
    shows(again, "draw_card_layer_lenet5", "conv2")
    no_exception(again)
    again.screenshot(path=str(SCREENSHOTS / "links-draw.png"))
    again.context.close()

    # a clicked unit travels too (the stages view): its numbers under its map
    strokes = re.search(r"draw_strokes=[A-Za-z0-9_-]+", link)
    assert strokes is not None
    unit = fresh_page(browser, f"{url}/?{strokes.group()}&draw_unit=conv1:2:10:12")
    text_of(unit, r"Unit conv1\[2, 10, 12\] = ")
    no_exception(unit)
    unit.context.close()


def test_keyboard_pen_stops_at_the_point_cap(app: tuple[str, Browser]) -> None:
    """Arrow presses past the drawing's cap on points: the pen lifts, the link keeps it all."""
    url, browser = app
    page = fresh_page(browser, url)
    canvas = page.locator(DRAW_CANVAS).first
    canvas.wait_for(timeout=LONG_MS)
    canvas.focus()
    # Space puts the pen down, then 10 px steps right and left: a point each, far past the cap
    # (travel stays 21,000 px, under its own cap); then Space again, which may not start more
    canvas.evaluate(
        """(c, n) => {
          const key = (k) => c.dispatchEvent(new KeyboardEvent("keydown", {key: k, bubbles: true}));
          key(" ");
          for (let i = 0; i < n; i++) key(i % 2 ? "ArrowLeft" : "ArrowRight");
          key(" ");
        }""",
        MAX_POINTS + 100,
    )
    canvas.blur()
    link = copy_link(page, "draw_strokes=")
    prediction(page)
    run_over(page)
    assert page.get_by_text("That drawing cannot be read").count() == 0
    strokes = re.search(r"draw_strokes=([A-Za-z0-9_-]+)", link)
    assert strokes is not None
    drawing = decode_strokes(strokes.group(1))
    assert sum(len(stroke.points) for stroke in drawing.strokes) == MAX_POINTS
    no_exception(page)
    page.context.close()


def test_lessons_lesson(app: tuple[str, Browser]) -> None:
    url, browser = app
    second = load_lessons()[1]
    page = fresh_page(browser, f"{url}/lessons")
    page.locator(".st-key-lesson_next button").first.click()
    text_of(page, re.escape(second.question.text.replace("*", "")))
    link = copy_link(page, f"lesson={second.slug}")
    no_exception(page)
    page.context.close()

    again = fresh_page(browser, link)
    text_of(again, re.escape(second.question.text.replace("*", "")))
    shows(again, "lesson", second.title)
    no_exception(again)
    again.context.close()


def test_stale_links_say_what_they_ignored(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, f"{url}/classify?image_layer_resnet18=foo&image_model=bogus")
    text_of(page, r"Ignored \?image_layer_resnet18=foo: no such layer")
    text_of(page, r"Ignored \?image_model=bogus: no such model")
    no_exception(page)
    page.context.close()
    page = fresh_page(browser, f"{url}/?draw_strokes={'A' * 20_000}")
    text_of(page, r"Ignored \?draw_strokes=A+…: no such readable drawing")
    no_exception(page)
    page.context.close()
    seven = encode_strokes(parse_drawing(drawing_value(DIGIT_STROKES["7"])))
    page = fresh_page(
        browser,
        f"{url}/?draw_strokes={seven}&draw_view=What+a+channel+looks+for&draw_card_channel=x",
    )
    text_of(page, r"Ignored \?draw_card_channel=x: no such channel")
    shows(page, "draw_card_channel", "0", exact=True)
    no_exception(page)
    page.context.close()
    # a drawing made on a canvas of another size: refused, not shown shrunk into a corner
    big = encode_strokes(parse_drawing(drawing_value(DIGIT_STROKES["7"]) | {"size": [560, 560]}))
    page = fresh_page(browser, f"{url}/?draw_strokes={big}")
    text_of(page, r"Ignored \?draw_strokes=.*: no such readable drawing")
    no_exception(page)
    page.context.close()
    page = fresh_page(browser, f"{url}/?draw_strokes={seven}&draw_unit=conv9:0:0:0")
    text_of(page, r"Ignored \?draw_unit=conv9:0:0:0")
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "links-stale.png"))
    page.context.close()


def test_markdown_in_a_link_is_shown_as_text(app: tuple[str, Browser]) -> None:
    url, browser = app
    page = fresh_page(browser, f"{url}/classify?image_model=%5BSign+in%5D(https://evil.io)")
    text_of(page, r"Ignored \?image_model=\[Sign in\]\(https://evil.io\)")
    assert page.locator("a[href*='evil.io']").count() == 0
    no_exception(page)
    page.context.close()


CURSOR_AT = """c => {
  const canvas = c.getBoundingClientRect();
  const ring = c.parentElement.querySelector(".cursor").getBoundingClientRect();
  return [canvas.width, (ring.x + ring.width / 2 - canvas.x) / canvas.width,
    (ring.y + ring.height / 2 - canvas.y) / canvas.height];
}"""


def test_keyboard_cursor_follows_a_resized_canvas(app: tuple[str, Browser]) -> None:
    """The keyboard's pen ring stays on its canvas point when the canvas is shown smaller."""
    url, browser = app
    page = fresh_page(browser, url)
    canvas = page.locator(DRAW_CANVAS).first
    canvas.wait_for(timeout=LONG_MS)
    canvas.focus()
    canvas.press("ArrowRight")  # the pen at (150, 140) of the 280-px canvas
    width, x, y = canvas.evaluate(CURSOR_AT)
    assert width == 280 and (x, y) == pytest.approx((150 / 280, 0.5), abs=0.01)
    page.set_viewport_size({"width": 240, "height": 900})  # the canvas shrinks to fit
    page.wait_for_function(f"c => ({CURSOR_AT})(c)[0] < 250", arg=canvas.element_handle())
    page.wait_for_function(
        f"c => Math.abs(({CURSOR_AT})(c)[1] - 150 / 280) < 0.01", arg=canvas.element_handle()
    )
    assert canvas.evaluate(CURSOR_AT)[2] == pytest.approx(0.5, abs=0.01)
    page.context.close()
