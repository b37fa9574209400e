"""What a screen reader is given: Chromium's accessibility tree of the Draw page, in order.

No screen reader runs here (NVDA, VoiceOver and Orca need a desktop), but they all read the
browser's accessibility tree. Playwright's ARIA snapshot is that tree as text: the roles, the
names and the text, in reading order. These tests read it after a digit is drawn and check
what a student who cannot see the pictures hears: how to draw without a mouse, the
prediction right after the canvas, and every stage's one-line description, in network order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from explorer.bench.served import draw_strokes
from explorer.inputs.strokes import DIGIT_STROKES
from tests.browser import CHROMIUM, DRAW_CANVAS, open_app, streamlit_server

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

STAGES = ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
"""LeNet-5's map stages, in the order the page shows them."""


@pytest.fixture(scope="module")
def tree() -> list[str]:
    """The Draw page's main region as a screen reader gets it, after a 7 is drawn."""
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser, page = open_app(p, url)
        page.locator(DRAW_CANVAS).first.wait_for(timeout=120_000)
        draw_strokes(page, DIGIT_STROKES["7"])
        page.locator(".st-key-stage_6").first.wait_for(timeout=120_000)
        page.get_by_text("pool2: 16 maps of 5 × 5").first.wait_for(timeout=120_000)
        snapshot = page.get_by_role("main").aria_snapshot()
        browser.close()
    return [unquoted(line.strip()) for line in snapshot.splitlines()]


def unquoted(line: str) -> str:
    """A snapshot line without YAML's quotes around it (``- 'img "a: b"'`` → ``- img "a: b"``)."""
    if line.startswith("- '") and line.endswith("'"):
        return "- " + line[3:-1].replace("''", "'")
    return line


def index_of(lines: list[str], pattern: str, start: int = 0) -> int:
    """The first line at or after ``start`` that matches ``pattern`` (a regex)."""
    for index in range(start, len(lines)):
        if re.search(pattern, lines[index]):
            return index
    raise AssertionError(f"no line matches {pattern!r} after line {start}")


def test_the_canvas_says_how_to_draw_without_a_mouse(tree: list[str]) -> None:
    canvas = tree[index_of(tree, r"^- .*application \"Drawing canvas")]
    for words in ("Click to paint a dot", "arrow keys move the pen", "Space puts the pen down"):
        assert words in canvas


def test_the_prediction_is_read_right_after_the_canvas(tree: list[str]) -> None:
    canvas = index_of(tree, r"application \"Drawing canvas")
    label = index_of(tree, r"^- paragraph: Prediction$", canvas)
    stages = index_of(tree, r"strong: 0\. input")
    assert label < stages  # heard before the network's stages
    digit = index_of(tree, r"^- paragraph: ", label + 1)
    assert re.fullmatch(r'- paragraph: "?7"?', tree[digit]), tree[digit]
    probability = re.search(r"(\d+\.\d)% probability", tree[digit + 1])
    assert probability and 50 < float(probability.group(1)) <= 100


def test_every_stage_is_described_in_words_in_network_order(tree: list[str]) -> None:
    place = index_of(tree, r"strong: 0\. input")
    for number, stage in enumerate(STAGES):
        heading = index_of(tree, rf"strong: {number}\. {stage}$", place)
        described = index_of(tree, rf"^- paragraph: \"?{stage}: .*values .* to ", heading)
        shape = r"(\d+ maps of )?\d+ × \d+( map)?"
        values = r"values −?[\d.]+ to −?[\d.]+, strongest (in channel \d+ )?at row \d+, column \d+"
        assert re.search(rf"{stage}: {shape}, {values}", tree[described]), tree[described]
        place = described


def test_the_pictures_are_read_by_their_alt_text(tree: list[str]) -> None:
    """``st.image`` pictures carry their ``alt``: read as what they show, not as "image"."""
    named = [line for line in tree if line.startswith('- img "')]
    assert any("digit the model sees: cropped, scaled and centred" in line for line in named)
    assert any("Your drawing, white ink on black" in line for line in named)
