"""The light and the dark theme (.streamlit/config.toml) and the figures' colours, by WCAG 2.2.

The contrast ratios are computed here from the colours' hex codes (WCAG's relative luminance),
for what Streamlit draws with them: body text, captions (text at 60 % opacity), the accent as
text on the page and on its own 10 % tint (a selected option), a primary button's label. The
browser checks of the same (axe-core, the rendered figures) are in tests/test_browser_a11y.py.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from explorer.bench.library import streamlit_spec
from explorer.figures.style import PAPER_COLOUR, TEXT_COLOUR, on_card
from tests.browser import REPO
from tests.test_figures_unvalidated import BUILDERS

CONFIG = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
THEMES = CONFIG["theme"]
AA_TEXT = 4.5
HIGH_CONTRAST = 7.0
"""WCAG's AAA ratio for text: what "high contrast" is held to for the dark theme's body text."""
CAPTION_OPACITY = 0.6
"""Streamlit draws captions and help text in the text colour at 60 % opacity."""
SELECTED_TINT = 0.1
"""A selected segmented-control option: the accent on the accent at 10 % over the page."""
LIGHT_SIDEBAR = "#f8f8f7"
"""Streamlit's light sidebar while the theme keeps the default backgrounds (the dark theme sets
its own: the sidebar is then its ``secondaryBackgroundColor``)."""


def rgb(colour: str) -> np.ndarray:
    """``#rrggbb`` (or ``white``) as three floats 0–255."""
    hex_code = {"white": "#ffffff", "black": "#000000"}.get(colour, colour).lstrip("#")
    return np.array([int(hex_code[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def blend(front: str, back: str, alpha: float) -> np.ndarray:
    """``front`` at opacity ``alpha`` over ``back``."""
    return alpha * rgb(front) + (1 - alpha) * rgb(back)


def contrast(a: np.ndarray, b: np.ndarray) -> float:
    """WCAG 2.2's contrast ratio of two sRGB colours (0–255 a channel), 1 to 21."""

    def luminance(colour: np.ndarray) -> float:
        c = colour / 255
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(linear @ np.array([0.2126, 0.7152, 0.0722]))

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def theme(name: str) -> dict[str, str]:
    """The colours of theme ``name``: Streamlit's defaults under the config's own."""
    defaults = {
        "light": {"backgroundColor": "#ffffff", "textColor": "#2f2d2b", "primaryColor": "#c53948"},
        "dark": {"backgroundColor": "#171614", "textColor": "#edebe8", "primaryColor": "#cf4250"},
    }[name]
    return {**defaults, **THEMES[name]}


def test_the_contrast_formula_matches_known_ratios() -> None:
    """Black on white is 21:1; the old caption grey on white is axe-core's 3.88:1 (2 d.p.)."""
    assert contrast(rgb("#000000"), rgb("#ffffff")) == pytest.approx(21.0)
    assert 3.88 <= contrast(rgb("#828180"), rgb("#ffffff")) < 3.89


def test_both_themes_exist_and_the_app_follows_the_browser() -> None:
    """Two themes, no ``base`` (which would pin one), today's light colours, a viewer's menu.

    System (the browser's choice) is then the default; toolbarMode "viewer" keeps the menu's
    theme chooser (checked in the browser: System, Light, Dark).
    """
    assert {"light", "dark"} <= set(THEMES)
    assert "base" not in THEMES
    assert CONFIG["client"]["toolbarMode"] == "viewer"
    assert THEMES["light"] == {"textColor": "#111111", "primaryColor": "#a8293a"}


@pytest.mark.parametrize("name", ["light", "dark"])
def test_text_and_captions_contrast_with_page_and_sidebar(name: str) -> None:
    colours = theme(name)
    page = colours["backgroundColor"]
    sidebar = colours.get("secondaryBackgroundColor", LIGHT_SIDEBAR)
    for background in (page, sidebar):
        text = contrast(rgb(colours["textColor"]), rgb(background))
        caption = contrast(
            blend(colours["textColor"], background, CAPTION_OPACITY), rgb(background)
        )
        assert text >= (HIGH_CONTRAST if name == "dark" else AA_TEXT), (background, text)
        assert caption >= AA_TEXT, (background, caption)


@pytest.mark.parametrize("name", ["light", "dark"])
def test_the_accent_reads_on_the_page_on_its_tint_and_under_a_label(name: str) -> None:
    """The accent as text on the page and on its own tint, and under a primary button's label.

    The label is white in the light theme, black in the dark one (pages/style.css).
    """
    colours = theme(name)
    page, accent = colours["backgroundColor"], colours["primaryColor"]
    tint = blend(accent, page, SELECTED_TINT)
    label = {"light": "#ffffff", "dark": "#000000"}[name]
    assert contrast(rgb(accent), rgb(page)) >= AA_TEXT
    assert contrast(rgb(accent), tint) >= AA_TEXT
    assert contrast(rgb(label), rgb(accent)) >= AA_TEXT


def test_the_dark_theme_is_dark_and_its_borders_show() -> None:
    """Near-black page, near-white text; widget borders 3:1 on page and widgets (WCAG 1.4.11)."""
    colours = theme("dark")
    assert rgb(colours["backgroundColor"]).max() <= 0x20
    assert rgb(colours["textColor"]).min() >= 0xE0
    for background in (colours["backgroundColor"], colours["secondaryBackgroundColor"]):
        assert contrast(rgb(colours["borderColor"]), rgb(background)) >= 3.0


def text_colours(layout: dict[str, Any], traces: list[dict[str, Any]]) -> Iterator[str]:
    """Every text colour a figure's JSON must set (a KeyError where one is missing).

    Font, title, hover label, each axis's ticks and title, each colour bar's ticks and title.
    """
    yield layout["font"]["color"]
    yield layout["title"]["font"]["color"]
    yield layout["hoverlabel"]["font"]["color"]
    bars = [trace["colorbar"] for trace in traces if "colorbar" in trace]
    axes = [axis for key, axis in layout.items() if key.startswith(("xaxis", "yaxis"))]
    assert axes, "a figure on axes"
    for part in axes + bars:
        yield part["tickfont"]["color"]
        yield part["title"]["font"]["color"]


def test_on_card_inks_what_the_figure_left_uncoloured_and_keeps_its_own() -> None:
    """Each text the figure left uncoloured gets TEXT_COLOUR; a colour it chose stays.

    A title font replaced without a colour, a trace on x2/y2 that the layout never named, a
    colour bar with a tick colour of its own.
    """
    traces: list[dict[str, Any]] = [
        {"type": "heatmap", "z": [[1]], "colorbar": {"tickfont": {"color": "#0000ff"}}},
        {"type": "scatter", "x": [0], "y": [0], "xaxis": "x2", "yaxis": "y2"},
    ]
    layout: dict[str, Any] = {
        "title": {"text": "t", "font": {"size": 12}},
        "xaxis": {"tickfont": {"size": 10}},
    }
    inked_traces, inked = on_card(traces, layout)
    assert inked["title"]["font"] == {"size": 12, "color": TEXT_COLOUR}
    assert inked["xaxis"]["tickfont"] == {"size": 10, "color": TEXT_COLOUR}
    assert set(inked) == {"title", "xaxis", "yaxis", "xaxis2", "yaxis2"}
    assert inked["yaxis2"]["title"]["font"]["color"] == TEXT_COLOUR
    assert inked_traces[0]["colorbar"]["tickfont"]["color"] == "#0000ff"
    assert inked_traces[0]["colorbar"]["title"]["font"]["color"] == TEXT_COLOUR
    assert layout["title"]["font"] == {"size": 12}  # the inputs are not changed
    assert "title" not in traces[0]["colorbar"] and "xaxis2" not in layout


def test_on_card_inks_a_scatters_point_labels_only() -> None:
    """Point labels (the lab's 1-D values) get TEXT_COLOUR; a colour the figure chose stays.

    A bar's labels keep plotly's own contrast with each bar.
    """
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines+markers+text", "text": ["1"], "textfont": {"size": 9}},
        {"mode": "text", "text": ["a"], "textfont": {"color": "#0000ff"}},
        {"type": "scatter", "mode": "lines"},
        {"type": "bar", "text": ["94%"]},
    ]
    inked, _ = on_card(traces, {})
    assert inked[0]["textfont"] == {"size": 9, "color": TEXT_COLOUR}
    assert inked[1]["textfont"] == {"color": "#0000ff"}
    assert "textfont" not in inked[2] and "textfont" not in inked[3]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_figure_is_dark_text_on_a_white_card(name: str) -> None:
    """What ``st.plotly_chart`` sends: a white card, every text colour on it 4.5:1 or more.

    So no theme's chart colours are needed to read it.
    """
    spec = json.loads(streamlit_spec(BUILDERS[name]()))
    layout = spec["layout"]
    assert layout["paper_bgcolor"] == layout["plot_bgcolor"] == PAPER_COLOUR
    assert layout["hoverlabel"]["bgcolor"] == PAPER_COLOUR
    colours = list(text_colours(layout, spec["data"]))
    assert TEXT_COLOUR in colours
    for colour in colours:
        assert contrast(rgb(colour), rgb(PAPER_COLOUR)) >= AA_TEXT, colour
