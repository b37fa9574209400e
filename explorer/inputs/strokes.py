"""Canvas drawings as strokes: the Draw page's canvas sends these, the server paints them.

The canvas component (``pages/canvas.py``) sends its drawing as a small JSON value instead of
a PNG of the whole canvas::

    {"size": [280, 280], "seq": 7, "final": true,
     "strokes": [{"width": 22, "points": [x0, y0, x1, y1, ...]}, ...]}

``final`` is false while a stroke is still being drawn (the live updates) and true once the
pointer is up; ``seq`` counts sends, so two sends are never the same value. A few hundred bytes
a stroke instead of ~30 kB of base64 PNG, and the server paints it in well under a millisecond.
The load generator (:mod:`explorer.bench.loadtest`) sends exactly this value, built by
:func:`drawing_value` from :data:`DIGIT_STROKES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

CANVAS_SIZE = 280
MAX_STROKES = 200
MAX_POINTS = 20_000  # in all strokes together
MIN_WIDTH, MAX_WIDTH = 1.0, 80.0


class DrawingError(ValueError):
    """A canvas value that is not a drawing, with a one-line message fit to show a user."""


@dataclass(frozen=True)
class Stroke:
    """One pen stroke: its width and its points in canvas pixels."""

    width: float
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Drawing:
    """The canvas's strokes, its size, and whether the last stroke is finished."""

    strokes: tuple[Stroke, ...]
    size: tuple[int, int] = (CANVAS_SIZE, CANVAS_SIZE)
    final: bool = True

    @property
    def is_empty(self) -> bool:
        """True when there is no stroke at all."""
        return not self.strokes


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DrawingError(f"{what} must be a finite number, not {value!r:.40}")
    return float(value)


def parse_drawing(value: Mapping[str, Any] | None) -> Drawing:
    """Check a canvas value and turn it into a :class:`Drawing` (None: an empty canvas).

    Raises:
        DrawingError: the value is not a drawing, or is too large (strokes, points, size).
    """
    if value is None:
        return Drawing(())
    if not isinstance(value, Mapping):
        raise DrawingError("the canvas sent something that is not a drawing")
    size = _canvas_size(value.get("size", [CANVAS_SIZE, CANVAS_SIZE]))
    strokes = _strokes(value.get("strokes", []))
    return Drawing(strokes, size, bool(value.get("final", True)))


def _canvas_size(raw_size: Any) -> tuple[int, int]:
    """The canvas's ``[width, height]``, checked to be 8–2000 pixels a side."""
    if not isinstance(raw_size, Sequence) or len(raw_size) != 2:
        raise DrawingError("the canvas size must be [width, height]")
    width, height = (int(_number(s, "the canvas size")) for s in raw_size)
    if not (8 <= width <= 2000 and 8 <= height <= 2000):
        raise DrawingError(f"a {width}×{height} canvas is out of range (8–2000 pixels a side)")
    return width, height


def _strokes(raw_strokes: Any) -> tuple[Stroke, ...]:
    """The strokes that have points, checked against :data:`MAX_STROKES` and :data:`MAX_POINTS`."""
    if not isinstance(raw_strokes, Sequence) or isinstance(raw_strokes, str):
        raise DrawingError("the strokes must be a list")
    if len(raw_strokes) > MAX_STROKES:
        raise DrawingError(f"{len(raw_strokes)} strokes: at most {MAX_STROKES}, clear the canvas")
    strokes: list[Stroke] = []
    total = 0
    for raw in raw_strokes:
        stroke, total = _stroke(raw, total)
        if stroke.points:
            strokes.append(stroke)
    return tuple(strokes)


def _stroke(raw: Any, total: int) -> tuple[Stroke, int]:
    """One stroke, its width clamped to ``MIN_WIDTH…MAX_WIDTH``, and the points counted so far."""
    if not isinstance(raw, Mapping):
        raise DrawingError("each stroke must be {width, points}")
    pen = _number(raw.get("width"), "a stroke's width")
    flat = raw.get("points", [])
    if not isinstance(flat, Sequence) or isinstance(flat, str) or len(flat) % 2:
        raise DrawingError("a stroke's points must be a flat list x0, y0, x1, y1, …")
    total += len(flat) // 2
    if total > MAX_POINTS:
        raise DrawingError(f"more than {MAX_POINTS:,} points: clear the canvas")
    coords = [_number(c, "a point") for c in flat]
    points = tuple(zip(coords[::2], coords[1::2], strict=True))
    return Stroke(min(max(pen, MIN_WIDTH), MAX_WIDTH), points), total


def render_drawing(drawing: Drawing) -> Image.Image:
    """Paint the strokes white on black, round caps and joins, as the canvas shows them.

    Returns:
        An 8-bit greyscale (``"L"``) image of the canvas's size.
    """
    image = Image.new("L", drawing.size, 0)
    pen = ImageDraw.Draw(image)
    for stroke in drawing.strokes:
        # Pillow puts pixel i's centre at i, the browser's canvas at i + 0.5.
        points = [(x - 0.5, y - 0.5) for x, y in stroke.points]
        if len(points) > 1:
            pen.line(points, fill=255, width=round(stroke.width))
        inner = stroke.width / 2 - 0.5  # Pillow's ellipse box includes its last pixel
        for x, y in points:  # round caps and joins, as the browser's canvas draws them
            pen.ellipse((x - inner, y - inner, x + inner, y + inner), fill=255)
    return image


# Digits as a person draws them on the 280×280 canvas (pen 22 px): the browser tests and the
# load generator draw these, and LeNet-5 reads each as its digit.
DIGIT_STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [[(140, 40), (200, 80), (210, 140), (195, 205), (140, 240), (85, 205), (70, 140),
           (80, 80), (140, 40)]],
    "1": [[(140, 40), (140, 240)]],
    "7": [[(70, 50), (210, 50), (120, 240)]],
}  # fmt: skip


def drawing_value(
    strokes: Sequence[Sequence[tuple[float, float]]],
    width: float = 22,
    seq: int = 1,
    final: bool = True,
) -> dict[str, Any]:
    """The canvas component's value for ``strokes``, exactly as the browser sends it."""
    return {
        "size": [CANVAS_SIZE, CANVAS_SIZE],
        "seq": seq,
        "final": final,
        "strokes": [
            {"width": width, "points": [c for point in stroke for c in point]} for stroke in strokes
        ],
    }
