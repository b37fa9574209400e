"""Links to a view: the Draw page's strokes in a URL, and the parameters a page ignored.

Every widget that defines a view is bound to the URL's query string (Streamlit's
``bind="query-params"``: the widget's key is the parameter's name). Two things that binding
cannot do live here:

* The Draw page's drawing is a custom component, so its strokes travel as one parameter,
  :data:`STROKES_PARAM`, written by :func:`encode_strokes` and read by
  :func:`decode_strokes` (:func:`decode_linked_drawing` also refuses a drawing made on a
  canvas of another size). The encoding is compact (points on the canvas's 0.1-pixel grid,
  each after the first as its difference from the last, as variable-length integers, in
  base64url) and lossless for what the canvas sends, so the same link paints the same
  pixels and the network predicts the same. It is bounded twice: at most
  :data:`MAX_STROKES_CHARS` characters are read, and what they decode to passes
  :func:`explorer.inputs.strokes.parse_drawing`'s caps (points, strokes, travel).
* A clicked unit (the Draw page's, the Image page's) is no widget either: it travels as
  ``layer:channel:row:column`` in :data:`UNIT_PARAM` or :data:`IMAGE_UNIT_PARAM`
  (:func:`unit_text`, :func:`parse_unit`). Both pages keep it in step with the URL the same
  way: :func:`clicked_unit` says which unit to show for a capture (the link's on the run that
  opens it, the session's after), :func:`unit_param` what the parameter then holds.
* Streamlit drops a bound parameter it cannot use (an unknown layer, a channel out of range)
  without a word; :func:`ignored_params` finds what was dropped, by comparing the query string
  at the start of a run with what is left after the widgets ran, and :func:`notice` says so.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.inputs.strokes import (
    CANVAS_SIZE,
    MAX_POINTS,
    MAX_STROKES,
    MAX_WIDTH,
    MIN_WIDTH,
    Drawing,
    DrawingError,
    parse_drawing,
)

if TYPE_CHECKING:
    from explorer.analysis.capture import CaptureResult

STROKES_PARAM = "draw_strokes"
"""The Draw page's query parameter that holds its drawing."""
GRID = 10
"""Points per pixel: the canvas rounds its points to 0.1 pixel, so this grid loses nothing."""
VERSION = 1
"""The first byte of an encoding; a link of another version is refused, not misread."""
MAX_STROKES_CHARS = 16_000
"""The longest encoding read or written: the caps' worst drawing (2,000 points far apart)."""
MAX_VARINT_BYTES = 4  # 28 bits: far more than the ±3 million grid steps a point may move
SHOWN_CHARS = 40  # of an ignored value, in the notice
UNIT_PARAM = "draw_unit"
"""The Draw page's query parameter that holds the clicked unit: ``layer:channel:row:column``."""
IMAGE_UNIT_PARAM = "image_unit"
"""The Image page's query parameter that holds the clicked unit, in the same form."""
MAX_LAYER_CHARS = 200  # a layer's dotted name
MAX_INDEX_DIGITS = 6  # a channel, row or column: far beyond any map

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _varint(value: int) -> bytes:
    """``value`` (zigzag: small negatives stay short) as 7 bits a byte, low bits first."""
    number = value * 2 if value >= 0 else -value * 2 - 1
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def encode_strokes(drawing: Drawing) -> str | None:
    """The drawing as a short URL-safe string; None when empty or longer than the cap.

    Each stroke: its pen width (whole pixels, as the canvas's brush sets it), its number of
    points, then its points on the 0.1-pixel grid, each after the first as the step from the
    one before.
    """
    if drawing.is_empty:
        return None
    data = bytearray([VERSION])
    data += _varint(drawing.size[0]) + _varint(drawing.size[1]) + _varint(len(drawing.strokes))
    for stroke in drawing.strokes:
        data += _varint(round(stroke.width)) + _varint(len(stroke.points))
        last = (0, 0)
        for x, y in stroke.points:
            here = (round(x * GRID), round(y * GRID))
            data += _varint(here[0] - last[0]) + _varint(here[1] - last[1])
            last = here
    text = base64.urlsafe_b64encode(bytes(data)).decode("ascii").rstrip("=")
    return text if len(text) <= MAX_STROKES_CHARS else None


class _Reader:
    """Reads zigzag varints from bytes, refusing any that run on or past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def number(self) -> int:
        value = shift = 0
        for _ in range(MAX_VARINT_BYTES):
            if self.at >= len(self.data):
                raise DrawingError("the drawing in the link is cut short")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value // 2 if value % 2 == 0 else -(value + 1) // 2
        raise DrawingError("the drawing in the link has a number that is too long")

    def count(self, most: int, what: str) -> int:
        value = self.number()
        if not 0 <= value <= most:
            raise DrawingError(f"the drawing in the link has {value} {what}: at most {most}")
        return value


def decode_strokes(text: str) -> Drawing:
    """The drawing :func:`encode_strokes` wrote, checked like any canvas value.

    Raises:
        DrawingError: ``text`` is too long, not base64url, of another version, cut short, has
            trailing bytes, or decodes to a drawing :func:`parse_drawing` refuses.
    """
    if len(text) > MAX_STROKES_CHARS:
        raise DrawingError(f"the drawing in the link is over {MAX_STROKES_CHARS:,} characters")
    if not _BASE64URL.fullmatch(text):
        raise DrawingError("the drawing in the link is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DrawingError("the drawing in the link is not base64url") from exc
    if not data or data[0] != VERSION:
        raise DrawingError("the drawing in the link is of an unknown version")
    reader = _Reader(data)
    reader.at = 1
    size = [reader.number(), reader.number()]
    strokes: list[dict[str, Any]] = []
    points_left = MAX_POINTS
    for _ in range(reader.count(MAX_STROKES, "strokes")):
        width = reader.count(math.ceil(MAX_WIDTH), "pixels of pen")
        count = reader.count(points_left, "points")
        points_left -= count
        flat: list[float] = []
        x = y = 0
        for _ in range(count):
            x, y = x + reader.number(), y + reader.number()
            flat += [x / GRID, y / GRID]
        strokes.append({"width": max(width, MIN_WIDTH), "points": flat})
    if reader.at != len(data):
        raise DrawingError("the drawing in the link has bytes left over")
    return parse_drawing({"size": size, "strokes": strokes})


def decode_linked_drawing(text: str, size: tuple[int, int] = (CANVAS_SIZE, CANVAS_SIZE)) -> Drawing:
    """The drawing in the Draw page's link, for a canvas of ``size``.

    A drawing made on a canvas of another size is refused, not rescaled: the canvas would
    show it cut off or shrunk into a corner, and rescaled pens would paint other pixels, so
    the network would not predict what the link's author saw.

    Raises:
        DrawingError: :func:`decode_strokes` refuses ``text``, or its canvas is not ``size``.
    """
    drawing = decode_strokes(text)
    if drawing.size != size:
        raise DrawingError(
            f"the drawing in the link is for a {drawing.size[0]}×{drawing.size[1]} canvas, "
            f"not this page's {size[0]}×{size[1]}"
        )
    return drawing


def strokes_value(drawing: Drawing) -> list[dict[str, Any]]:
    """The drawing's strokes as the canvas component holds them (its initial drawing)."""
    return [
        {"width": stroke.width, "points": [c for point in stroke.points for c in point]}
        for stroke in drawing.strokes
    ]


@dataclass(frozen=True)
class Ignored:
    """A query parameter the page could not use: its name, its value and what it got."""

    key: str
    value: str
    kept: str | None


def _same(url_value: str, shown: Any) -> bool:
    """Whether the URL's text means the widget's value (numbers compared as numbers)."""
    if isinstance(shown, bool):
        return url_value.lower() == str(shown).lower()
    if isinstance(shown, int | float):
        try:
            return math.isclose(float(url_value), float(shown))
        except ValueError:
            return False
    return url_value == str(shown)


def ignored_params(
    before: Mapping[str, str], after: Mapping[str, str], shown: Mapping[str, Any]
) -> list[Ignored]:
    """The parameters of ``before`` that the run dropped or changed, not by meaning the same.

    Args:
        before: The query string when the run started (a value a key).
        after: The query string after the widgets ran.
        shown: The value each widget shows now, by key (``st.session_state``): a parameter
            dropped because it equals its widget's default is not ignored.
    """
    found = []
    for key, value in before.items():
        if after.get(key) == value:
            continue
        if key in shown and _same(value, shown[key]) and key not in after:
            continue  # the default, written out: Streamlit drops it from the URL
        found.append(Ignored(key, value, after.get(key)))
    return found


def code_span(text: str) -> str:
    """``text`` as a Markdown code span: shown as typed, never a link, image or formula.

    The text comes from a URL anyone can write. Characters that are not printable (line
    breaks, which would end the span, and bidirectional overrides) become ``�``; the span's
    fence is one backtick longer than the longest run of backticks inside it (CommonMark),
    padded with spaces when the text starts or ends with a backtick.
    """
    text = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def notice(ignored: Ignored, what: str = "value") -> str:
    """One Markdown line for the page: ``Ignored `?image_layer_resnet18=foo`: no such layer``.

    The parameter is shown in a :func:`code_span`, so a link's text cannot write Markdown
    into the page (a link of its own, a remote image).
    """
    param = code_span(f"?{_shown(ignored.key)}={_shown(ignored.value)}")
    if ignored.kept is not None:
        return f"Changed {param} to {code_span(_shown(ignored.kept))}: out of range here"
    return f"Ignored {param}: no such {what} here, so the default is shown"


KINDS = {
    "_layer": "layer",
    "_channel": "channel",
    "_model": "model",
    "_sample": "sample",
    "_method": "method",
    "_ko_ch": "channel",
    "_strokes": "readable drawing",
    "_unit": "unit",
}
"""A key's part → the thing it names, for a notice (the first match wins)."""


def param_kind(key: str) -> str:
    """What a parameter names, from its key: ``image_layer_resnet18`` → ``layer``."""
    return next((kind for part, kind in KINDS.items() if part in key), "value")


Unit = tuple[str, int, int, int]
"""A clicked unit: its layer's name, channel, row and column."""


def unit_text(unit: Unit) -> str:
    """A clicked unit as its parameter's value: ``conv1:3:5:7`` (layer, channel, row, column)."""
    return ":".join(map(str, unit))


def parse_unit(text: str) -> Unit | None:
    """The unit :func:`unit_text` wrote; None if ``text`` is not one.

    Only its form is checked here; whether the model shown has it is :func:`clicked_unit`'s
    question.
    """
    parts = text.split(":")
    if len(parts) != 4 or not 0 < len(parts[0]) <= MAX_LAYER_CHARS:
        return None
    numbers = parts[1:]
    if not all(n.isascii() and n.isdigit() and len(n) <= MAX_INDEX_DIGITS for n in numbers):
        return None
    channel, row, column = (int(n) for n in numbers)
    return parts[0], channel, row, column


def unit_exists(unit: Unit, result: CaptureResult) -> bool:
    """Whether ``result`` has a map layer (channels × rows × columns) holding ``unit``."""
    name, channel, row, column = unit
    if name not in result:
        return False
    shape = result[name].shape
    return len(shape) == 3 and all(
        0 <= i < n for i, n in zip((channel, row, column), shape, strict=True)
    )


def clicked_unit(
    kept: Unit | None,
    linked: str | None,
    result: CaptureResult,
    *,
    opening: bool,
    on: tuple[str, int | None] | None = None,
) -> Unit | None:
    """The clicked unit a page shows for ``result``; None when there is none to show.

    Args:
        kept: The unit the session holds (the student's last click), if any.
        linked: The unit parameter's value in the URL, if any.
        result: The capture the page shows (the model and input the unit must exist in).
        opening: Whether this is the session's first run that shows a capture (the run that
            opens a link): the URL's unit is taken then, unless the session holds one.
        on: The layer and channel the page shows its unit on (the Image page's large map;
            channel None for a flat layer, which has no units); a unit anywhere else is none.
            None (the Draw page): any layer of ``result``.
    """
    unit = kept if kept is not None or not opening else parse_unit(linked or "")
    if unit is None or not unit_exists(unit, result):
        return None
    if on is not None and unit[:2] != on:
        return None
    return unit


def unit_param(unit: Unit | None) -> str | None:
    """What the unit's parameter holds for ``unit``: its text, or None (no parameter)."""
    return None if unit is None else unit_text(unit)
