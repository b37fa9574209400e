"""Links to a view: the strokes' encoding, clicked units and the parameters a page ignored."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis.capture import CaptureResult, LayerOutput
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
    clicked_unit,
    code_span,
    decode_linked_drawing,
    decode_strokes,
    encode_strokes,
    ignored_params,
    notice,
    param_kind,
    parse_unit,
    strokes_value,
    unit_exists,
    unit_param,
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


# A clicked unit in a link: which one a page shows for a capture, and what the URL holds.
MAPS = torch.arange(4 * 6 * 5, dtype=torch.float32).reshape(4, 6, 5)  # conv1: 4 × 6 × 5


def two_layers() -> CaptureResult:
    """A capture of a 4×6×5 map layer ``conv1`` and a flat layer ``fc`` of 3."""
    layers = [
        LayerOutput("conv1", "conv", "Conv2d", "conv1", MAPS),
        LayerOutput("fc", "linear", "Linear", "fc", torch.zeros(3)),
    ]
    return CaptureResult(torch.zeros(1, 6, 5), layers, torch.zeros(3), torch.full((3,), 1 / 3))


def numpy_has(values: np.ndarray, index: tuple[int, ...]) -> bool:
    """Whether numpy finds ``index`` in ``values`` without wrapping a negative one around."""
    if len(index) != values.ndim or min(index) < 0:
        return False
    try:
        values[index]
    except IndexError:
        return False
    return True


def test_a_unit_exists_where_numpy_finds_it() -> None:
    result = two_layers()
    for c, y, x in np.ndindex(7, 9, 8):
        unit = ("conv1", c - 1, y - 1, x - 1)  # -1 … one past the end, each way
        assert unit_exists(unit, result) == numpy_has(MAPS.numpy(), unit[1:]), unit
    assert not unit_exists(("fc", 0, 0, 0), result)  # a flat layer has no map units
    assert not unit_exists(("conv9", 0, 0, 0), result)


def test_a_linked_unit_is_shown_when_the_capture_has_it() -> None:
    result = two_layers()
    assert clicked_unit(None, "conv1:3:5:4", result, opening=True) == ("conv1", 3, 5, 4)
    assert clicked_unit(None, "conv1:0:0:0", result, opening=True) == ("conv1", 0, 0, 0)


@pytest.mark.parametrize(
    "linked",
    [
        None,
        "",
        "conv1:4:0:0",  # channel 4 of 4
        "conv1:0:6:0",  # row 6 of 6
        "conv1:0:0:5",  # column 5 of 5
        "conv1:999999:999999:999999",
        "conv1:0:0:99999999999999999999",
        "conv1:-1:0:0",
        "conv1:0:-0:0",
        "conv1:+1:0:0",
        "conv1: 1:0:0",
        "conv1:1.0:0:0",
        "conv1:0x1:0:0",
        "conv9:0:0:0",  # no such layer
        "fc:0:0:0",  # a flat layer
        "CONV1:0:0:0",
        "[Sign in](https://evil.io):0:0:0",
        "conv1\n:0:0:0",
        "conv1",
        "conv1:0:0",
        "conv1:0:0:0:0",
        ":0:0:0",
        "conv1:::",
    ],
)
def test_a_hostile_linked_unit_is_none(linked: str | None) -> None:
    assert clicked_unit(None, linked, two_layers(), opening=True) is None


def test_after_the_link_is_opened_the_session_says_which_unit() -> None:
    result, clicked = two_layers(), ("conv1", 1, 2, 3)
    # the student's click wins over the URL's (which the page rewrites to it) …
    assert clicked_unit(clicked, "conv1:0:0:0", result, opening=False) == clicked
    # … and a closed unit stays closed, whatever the URL still held
    assert clicked_unit(None, "conv1:0:0:0", result, opening=False) is None
    # a unit the session holds as the link opens (set before the page's first capture)
    assert clicked_unit(clicked, "conv1:0:0:0", result, opening=True) == clicked


def test_a_kept_unit_the_capture_lacks_is_dropped() -> None:
    # another model's layer, or a map smaller than the one it was clicked on
    result = two_layers()
    assert clicked_unit(("conv2", 0, 0, 0), None, result, opening=False) is None
    assert clicked_unit(("conv1", 0, 6, 0), None, result, opening=False) is None


def test_a_unit_off_the_shown_map_is_dropped() -> None:
    result = two_layers()
    unit = ("conv1", 2, 1, 1)
    assert clicked_unit(unit, None, result, opening=False, on=("conv1", 2)) == unit
    assert clicked_unit(unit, None, result, opening=False, on=("conv1", 3)) is None
    assert clicked_unit(None, "conv1:2:1:1", result, opening=True, on=("conv1", 0)) is None
    assert clicked_unit(unit, None, result, opening=False, on=("fc", None)) is None


def test_unit_param_round_trips_and_none_drops_it() -> None:
    result = two_layers()
    for c, y, x in np.ndindex(4, 6, 5):
        unit = ("conv1", c, y, x)
        text = unit_param(unit)
        assert text is not None
        assert clicked_unit(None, text, result, opening=True) == unit
    assert unit_param(None) is None


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


# A clicked unit in a link, on the Image page (LeNet-5 on its first sample digit) and the Draw page.
IMAGE_LINK = {
    "image_model": "LeNet-5 (1998)",
    "image_layer_lenet5": "5 · pool2 · pool · 16×5×5",
    "image_channel_pool2": "2",
}


def lenet_pool2(sample: str) -> torch.Tensor:
    """LeNet-5's pool2 maps on a shipped sample digit, from a run of the model outside the page."""
    from explorer.inputs.samples import samples_for
    from explorer.models.zoo import Family, load_model

    loaded = load_model("lenet5")
    return loaded.capture(loaded.prepare(samples_for(Family.DIGIT)[sample]))["pool2"].tensor


def unit_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Unit ")]


def test_a_link_to_an_image_unit_opens_it_with_its_numbers() -> None:
    at = opened("image.py", IMAGE_LINK)
    maps = lenet_pool2(str(at.selectbox(key="image_sample_digit").value))
    row, col = divmod(int(maps[2].argmax()), 5)  # the channel's strongest unit: not a 0
    at = opened("image.py", {**IMAGE_LINK, "image_unit": f"pool2:2:{row}:{col}"})
    assert not at.exception
    # pool2's unit (y, x) sees input rows 4y − 2 … 4y + 13 (conv1 5×5 pad 2, pool 2, conv2 5×5,
    # pool 2), cut to the 28×28 digit
    rows, cols = (f"{max(4 * i - 2, 0)}–{min(4 * i + 13, 27)}" for i in (row, col))
    assert unit_lines(at) == [
        f"**Unit pool2[2, {row}, {col}] = {maps[2, row, col].item():.6g}**  \n"
        f"Its receptive field: 16×16 input pixels, rows {rows}, columns {cols} (the orange box)."
    ]
    assert at.query_params["image_unit"] == f"pool2:2:{row}:{col}"
    assert not [c.value for c in at.caption if "Ignored" in c.value]
    # closed: gone from the page and from the link
    at.button(key="image_unit_close").click().run()
    assert not unit_lines(at) and "image_unit" not in at.query_params
    # a click on the large map (point 8 of the 5×5 map: row 1, column 3) writes it back
    click = {"selection": {"points": [{"curve_number": 2, "point_index": 8}]}}
    at.session_state["image_channel_fig_pool2_2"] = click
    at.run()
    assert unit_lines(at)[0].startswith(f"**Unit pool2[2, 1, 3] = {maps[2, 1, 3].item():.6g}**")
    assert at.query_params["image_unit"] == "pool2:2:1:3"
    # a double click clears the map's selection: that closes it too
    at.session_state["image_channel_fig_pool2_2"] = {"selection": {"points": []}}
    at.run()
    assert not unit_lines(at) and "image_unit" not in at.query_params
    at.session_state["image_channel_fig_pool2_2"] = click
    at.run()
    assert at.query_params["image_unit"] == "pool2:2:1:3"
    # another channel: the unit was on channel 2's map, so it closes, in the link too
    at.number_input(key="image_channel_pool2").set_value(3).run()
    assert not unit_lines(at) and "image_unit" not in at.query_params


@pytest.mark.parametrize(
    "value",
    [
        "pool2:3:1:1",  # another channel than the link's
        "conv1:2:1:1",  # another layer than the link's
        "pool2:2:5:0",  # off the 5×5 map
        "pool2:2:999999:999999",
        "pool2:2:-1:1",
        "pool2:2:1",
        "[Sign in](https://evil.io):2:1:1",
        "fc9:0:0:0",
    ],
)
def test_a_stale_image_unit_is_a_notice(value: str) -> None:
    at = opened("image.py", {**IMAGE_LINK, "image_unit": value})
    assert not at.exception
    assert not unit_lines(at)
    assert "image_unit" not in at.query_params
    notices = [c.value for c in at.caption if "Ignored" in c.value]
    assert notices == [
        f"Ignored {code_span('?image_unit=' + value)}: no such unit here, so the default is shown"
    ]


def test_a_link_to_a_draw_unit_opens_it_and_a_stale_one_is_a_notice() -> None:
    from explorer.inputs.samples import digit_samples
    from explorer.models.zoo import load_model

    link = {"draw_source": "Sample digit", "draw_unit": "conv1:2:10:12"}
    at = opened("draw.py", link)
    assert not at.exception
    loaded = load_model("lenet5")
    sample = digit_samples()[str(at.selectbox(key="draw_sample").value)]
    value = loaded.capture(loaded.prepare(sample))["conv1"].tensor[2, 10, 12].item()
    headers = [m.value for m in at.markdown if m.value.startswith("#### Unit")]
    assert headers == [f"#### Unit conv1[2, 10, 12] = {value:.4f}"]
    assert at.query_params["draw_unit"] == "conv1:2:10:12"
    at = opened("draw.py", {**link, "draw_unit": "conv1:6:0:0"})  # LeNet-5's conv1 has 6
    assert not at.exception
    assert not [m.value for m in at.markdown if m.value.startswith("#### Unit")]
    assert "draw_unit" not in at.query_params
    assert any("Ignored `?draw_unit=conv1:6:0:0`" in c.value for c in at.caption)
