"""Links to a view: the strokes' encoding and the parameters a page ignored."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.inputs.strokes import (
    CANVAS_SIZE,
    DIGIT_STROKES,
    MAX_POINTS,
    Drawing,
    DrawingError,
    Stroke,
    drawing_value,
    parse_drawing,
    render_drawing,
)
from explorer.views.links import (
    MAX_STROKES_CHARS,
    Ignored,
    code_span,
    decode_linked_drawing,
    decode_strokes,
    encode_strokes,
    ignored_params,
    notice,
    param_kind,
    parse_unit,
    strokes_value,
    unit_text,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def canvas_drawing() -> Drawing:
    """A drawing as the canvas sends it: points rounded to 0.1 px, two pens, a dot."""
    rng = np.random.default_rng(0)
    walk = np.round(np.cumsum(rng.normal(0, 3, (150, 2)), axis=0) + 140, 1)
    return parse_drawing(
        {
            "size": [280, 280],
            "strokes": [
                {"width": 22, "points": walk.ravel().tolist()},
                {"width": 9, "points": [12.3, 250.7]},
                {"width": 40, "points": [-30.5, 20.1, 300.2, 20.1]},  # off the canvas and back
            ],
        }
    )


def test_canvas_drawings_come_back_exactly() -> None:
    drawing = canvas_drawing()
    text = encode_strokes(drawing)
    assert text is not None and len(text) < 1_000  # ~2 bytes a point, not JSON's ~12
    back = decode_strokes(text)
    assert back == drawing  # every point, width and the size, to the float
    assert np.array_equal(np.asarray(render_drawing(back)), np.asarray(render_drawing(drawing)))


def test_shipped_digits_survive_and_paint_the_same() -> None:
    for strokes in DIGIT_STROKES.values():
        drawing = parse_drawing(drawing_value(strokes))
        assert decode_strokes(encode_strokes(drawing) or "") == drawing


def test_points_off_the_grid_are_rounded_to_it() -> None:
    drawing = Drawing((Stroke(22.4, ((10.04, 20.06), (30.0, 40.0))),))
    back = decode_strokes(encode_strokes(drawing) or "")
    assert back.strokes[0].points == ((10.0, 20.1), (30.0, 40.0))
    assert back.strokes[0].width == 22


@pytest.mark.parametrize("size", [[8, 8], [2000, 2000], [280, 281], [560, 560]])
def test_a_drawing_for_another_canvas_size_is_refused(size: list[int]) -> None:
    # decode_strokes admits any canvas of 8 to 2,000 px; the page's canvas is 280 px
    other = parse_drawing({"size": size, "strokes": [{"width": 9, "points": [4, 4, 6, 7]}]})
    text = encode_strokes(other) or ""
    assert decode_strokes(text).size == tuple(size)
    with pytest.raises(DrawingError, match=f"{size[0]}×{size[1]} canvas, not this page's 280"):
        decode_linked_drawing(text)


def test_a_drawing_for_the_canvas_is_read() -> None:
    drawing = canvas_drawing()
    assert drawing.size == (CANVAS_SIZE, CANVAS_SIZE)
    assert decode_linked_drawing(encode_strokes(drawing) or "") == drawing
    with pytest.raises(DrawingError, match="not base64url"):
        decode_linked_drawing("not base64!")


def test_empty_drawing_has_no_link() -> None:
    assert encode_strokes(Drawing(())) is None


def test_strokes_value_is_what_the_canvas_holds() -> None:
    drawing = parse_drawing(drawing_value(DIGIT_STROKES["7"]))
    assert strokes_value(drawing) == drawing_value(DIGIT_STROKES["7"])["strokes"]


def test_the_largest_drawing_the_caps_admit_fits_the_cap() -> None:
    # MAX_POINTS points in long jumps: the longest encoding parse_drawing lets through
    zigzag = [(0.0, 0.0) if i % 2 else (279.9, 279.9) for i in range(MAX_POINTS // 100)]
    drawing = Drawing(tuple(Stroke(40, tuple(zigzag)) for _ in range(100)))
    text = encode_strokes(drawing)
    assert text is not None and len(text) <= MAX_STROKES_CHARS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A" * (MAX_STROKES_CHARS + 1), "over 16,000 characters"),
        ("not base64!", "not base64url"),
        ("%00", "not base64url"),
        ("", "unknown version"),
        (b64(b"\x07"), "unknown version"),
        (b64(b"\x01"), "cut short"),
        (b64(b"\x01\xff\xff\xff\xff\xff"), "too long"),
        (b64(bytes([1, 0xB0, 4, 0xB0, 4, 2])), "cut short"),  # a stroke promised, none there
        (b64(bytes([1, 0xB0, 4, 0xB0, 4, 0])) + "AAAA", "left over"),
        (b64(bytes([1, 0xB0, 4, 0xB0, 4, 0xA0, 0x1F])), "strokes: at most"),  # 2,000 strokes
        (b64(bytes([1, 0xB0, 4, 0xB0, 4, 2, 2, 0xA2, 0x1F])), "points: at most"),  # 2,001
        (b64(bytes([1, 0xB0, 4, 0xB0, 4, 2, 100, 0])), "pixels of pen"),  # 50 px
        (b64(bytes([1, 0, 0, 0])), "out of range"),  # a 0×0 canvas
    ],
)
def test_hostile_links_are_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(DrawingError, match=message):
        decode_strokes(text)


def test_a_point_flung_far_off_is_refused() -> None:
    # one stroke of one point at x = +13,421,772 px (a four-byte varint, 0x0FFFFFFF / 2 / 10)
    far = bytes([1, 0xB0, 4, 0xB0, 4, 2, 44, 2, 0xFE, 0xFF, 0xFF, 0x7F, 0])
    with pytest.raises(DrawingError, match="within"):
        decode_strokes(b64(far))


def test_ignored_params_finds_what_was_dropped_or_changed() -> None:
    before = {"lab_stride": "9", "image_layer_resnet18": "foo", "lab_bias": "0.0", "x": "1"}
    after = {"lab_stride": "4", "x": "1"}
    shown = {"lab_stride": 4, "image_layer_resnet18": "conv1", "lab_bias": 0.0}
    assert ignored_params(before, after, shown) == [
        Ignored("lab_stride", "9", "4"),
        Ignored("image_layer_resnet18", "foo", None),
    ]  # lab_bias=0.0 is the default written out; x is no widget's and stays


def test_a_dropped_default_is_not_ignored() -> None:
    before = {"draw_scale": "layer", "image_card": "False", "lab_stride": "1"}
    assert (
        ignored_params(before, {}, {"draw_scale": "layer", "image_card": False, "lab_stride": 1})
        == []
    )


def test_notices_read_as_one_line() -> None:
    assert (
        notice(Ignored("image_layer_resnet18", "foo", None), param_kind("image_layer_resnet18"))
        == "Ignored `?image_layer_resnet18=foo`: no such layer here, so the default is shown"
    )
    assert (
        notice(Ignored("lab_stride", "9", "4"))
        == "Changed `?lab_stride=9` to `4`: out of range here"
    )
    long = notice(Ignored("draw_strokes", "x" * 10_000, None))
    assert len(long) < 120
    assert param_kind("exp_ko_ch_features.0") == "channel"
    assert param_kind("lab_stride") == "value"
    assert param_kind("draw_unit") == "unit"


def test_units_travel_as_layer_channel_row_column() -> None:
    assert unit_text(("conv1", 3, 5, 7)) == "conv1:3:5:7"
    assert parse_unit("conv1:3:5:7") == ("conv1", 3, 5, 7)
    assert parse_unit("layer3.1.conv2:42:0:13") == ("layer3.1.conv2", 42, 0, 13)


@pytest.mark.parametrize(
    "text",
    ["", "conv1", "conv1:3:5", "conv1:3:5:7:9", ":3:5:7", "conv1:-3:5:7", "conv1:3:5:x",
     "conv1:3:5:1e3", "conv1:٣:5:7", "conv1:9999999:5:7", "x" * 201 + ":1:2:3"],
)  # fmt: skip
def test_hostile_units_are_none(text: str) -> None:
    assert parse_unit(text) is None


def outside_code_spans(text: str) -> str:
    """``text`` less its code spans, by CommonMark's rule.

    A run of n backticks opens a span and the next run of exactly n closes it; a run with no
    closer is literal text.
    """
    runs = list(re.finditer("`+", text))
    out, at, i = [], 0, 0
    while i < len(runs):
        closer = next(
            (j for j in range(i + 1, len(runs)) if runs[j].group() == runs[i].group()), None
        )
        if closer is None:
            i += 1
            continue
        out.append(text[at : runs[i].start()])
        at = runs[closer].end()
        i = closer + 1
    return "".join(out) + text[at:]


@pytest.mark.parametrize(
    "value",
    [
        "[Sign in](https://evil.io)",
        "![](https://x/y.png)",
        "`[Sign in](https://evil.io)`",
        "``![](https://x/y.png)` `",
        "a\n\n[Sign in](https://evil.io)",
        "<img src=x onerror=alert(1)>",
        "$\\href{https://evil.io}{x}$",
        "\u202e[ni ngiS](https://evil.io)",
    ],
)
def test_a_hostile_value_is_shown_as_code_never_as_markdown(value: str) -> None:
    for ignored in (Ignored("draw_model", value, None), Ignored(value, "1", value)):
        line = notice(ignored, "model")
        outside = outside_code_spans(line)
        # what is left is the notice's own words: no link, image, HTML, formula or line break
        assert not set(outside) & set("[]()!<>$`\n\u202e"), outside
        assert "\n" not in line and "\u202e" not in line
    assert outside_code_spans(code_span("`x``")) == ""  # the span holds all of it


def test_code_span_keeps_what_was_typed() -> None:
    assert code_span("foo") == "`foo`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`a") == "`` `a ``"


# Opening a link: the page shows what its URL asks for, the widget's default included.
REPO = Path(__file__).resolve().parents[1]


def opened(page: str, query: dict[str, str]) -> AppTest:
    """``page`` run once as a link with ``query`` opens it."""
    at = AppTest.from_file(str(REPO / "pages" / page), default_timeout=180)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.parametrize("kernel", ["identity", "box blur (1/9)", "edge: outline (8-centre)"])
def test_a_link_to_any_lab_kernel_opens_it(kernel: str) -> None:
    # "identity" is the selectbox's first option: Streamlit drops it from the URL as the
    # widget's default, so a page default kept in session state used to show box blur
    at = opened("lab.py", {"lab_kernel": kernel})
    assert not at.exception
    assert at.selectbox(key="lab_kernel").value == kernel


def test_the_lab_opens_on_box_blur_without_a_link() -> None:
    at = opened("lab.py", {})
    assert at.selectbox(key="lab_kernel").value == "box blur (1/9)"


def test_a_link_to_channel_0_on_a_later_grid_page_opens_it() -> None:
    # channel 0 is the number input's own 0 default, which Streamlit drops from the URL:
    # a page's first tile kept in session state used to win over it on page 2
    layer = "layer4.1.relu#2"  # resnet18's last map: 512 channels, two pages of the grid
    label = next(o for o in opened("image.py", {}).selectbox(key="image_layer_resnet18").options
                 if f" · {layer} · " in o)  # fmt: skip
    link = {"image_layer_resnet18": label, f"image_page_{layer}": "2"}
    at = opened("image.py", {**link, f"image_channel_{layer}": "0"})
    assert not at.exception
    assert at.number_input(key=f"image_page_{layer}").value == 2
    assert at.number_input(key=f"image_channel_{layer}").value == 0
    # without a channel in the link, page 2 shows its first tile: 512 / 2 pages
    at = opened("image.py", link)
    assert at.number_input(key=f"image_channel_{layer}").value == 256
