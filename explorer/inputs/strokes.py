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

The value arrives over the websocket from anyone, and painting holds the GIL, so
:func:`parse_drawing` bounds the work a value can cause, not only its size: a point more than
:data:`MAX_COORDINATE` pixels off is refused; the strokes are cut where they leave a margin of
one canvas size around the canvas (a pen dragged off the canvas draws to its edge, as the
browser shows it: nothing visible changes); and the points, the strokes, the pen's width and
the pen's travel within the margin are capped. Whatever passes paints in a few milliseconds:
:func:`worst_case_value` is the costliest value the caps admit, and ``canvas_worst_paint_ms``
in ``python -m explorer bench`` times it (target ≤ 10 ms).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

CANVAS_SIZE = 280
MIN_CANVAS, MAX_CANVAS = 8, 2000  # pixels a side
MAX_STROKES = 200
MAX_POINTS = 2_000  # in all strokes together: half a minute of drawing at 60 events a second
MAX_LENGTH = 50_000  # pixels of pen travel in all strokes together, once cut to the margin
MIN_WIDTH, MAX_WIDTH = 1.0, 40.0  # the canvas's brush goes from 8 to 40
MAX_COORDINATE = 1_000_000.0  # pixels: no pointer is further off the canvas than this

Point = tuple[float, float]


class DrawingError(ValueError):
    """A canvas value that is not a drawing, with a one-line message fit to show a user."""


@dataclass(frozen=True)
class Stroke:
    """One pen stroke, or its part inside the margin: its width and points in canvas pixels."""

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


def _number(value: Any, what: str, bound: float = MAX_COORDINATE) -> float:
    """``value`` as a float, refused unless it is a number within ``±bound``.

    A huge ``int`` (JSON has no size limit) is compared exactly, never turned into a float
    that overflows; NaN and the infinities fail the comparison too.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = repr(value[:20]) if isinstance(value, str) else type(value).__name__
        raise DrawingError(f"{what} must be a finite number, not {shown}")
    if not -bound <= value <= bound:
        raise DrawingError(f"{what} must be a finite number of pixels within ±{bound:,.0f}")
    return float(value)


def parse_drawing(value: Mapping[str, Any] | None) -> Drawing:
    """Check a canvas value and turn it into a :class:`Drawing` (None: an empty canvas).

    Strokes are cut to the canvas and a margin of one canvas size either side
    (:func:`clip_polyline`), so one stroke may come back as several, or as none.

    Raises:
        DrawingError: the value is not a drawing, is too large (strokes, points, size, pen
            travel), or has a point more than :data:`MAX_COORDINATE` pixels off.
    """
    if value is None:
        return Drawing(())
    if not isinstance(value, Mapping):
        raise DrawingError("the canvas sent something that is not a drawing")
    size = _canvas_size(value.get("size", [CANVAS_SIZE, CANVAS_SIZE]))
    strokes = _strokes(value.get("strokes", []), margin_box(size))
    return Drawing(strokes, size, bool(value.get("final", True)))


def _canvas_size(raw_size: Any) -> tuple[int, int]:
    """The canvas's ``[width, height]``, checked to be 8–2000 pixels a side."""
    if not isinstance(raw_size, Sequence) or isinstance(raw_size, str) or len(raw_size) != 2:
        raise DrawingError("the canvas size must be [width, height]")
    width, height = (int(_number(s, "the canvas size")) for s in raw_size)
    if not (MIN_CANVAS <= width <= MAX_CANVAS and MIN_CANVAS <= height <= MAX_CANVAS):
        raise DrawingError(
            f"a {width}×{height} canvas is out of range ({MIN_CANVAS}–{MAX_CANVAS} pixels a side)"
        )
    return width, height


def margin_box(size: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of the canvas and a margin of one canvas size around it.

    The margin is at least :data:`MAX_WIDTH`, so what lies beyond it is more than a pen's
    half width away from the canvas: cutting strokes there changes no pixel of the canvas.
    """
    width, height = size
    margin = max(width, height, MAX_WIDTH)
    return -margin, -margin, width + margin, height + margin


def _strokes(raw_strokes: Any, box: tuple[float, float, float, float]) -> tuple[Stroke, ...]:
    """The strokes' visible parts, checked against the caps on strokes, points and travel."""
    if not isinstance(raw_strokes, Sequence) or isinstance(raw_strokes, str):
        raise DrawingError("the strokes must be a list")
    if len(raw_strokes) > MAX_STROKES:
        raise DrawingError(f"{len(raw_strokes)} strokes: at most {MAX_STROKES}, clear the canvas")
    strokes: list[Stroke] = []
    points = 0
    travel = 0.0
    for raw in raw_strokes:
        width, flat = _stroke_fields(raw)
        points += len(flat) // 2
        if points > MAX_POINTS:  # counted before a number is read
            raise DrawingError(f"more than {MAX_POINTS:,} points: clear the canvas")
        coords = [_number(c, "a point") for c in flat]
        for piece in clip_polyline(list(zip(coords[::2], coords[1::2], strict=True)), box):
            travel += sum(math.dist(a, b) for a, b in itertools.pairwise(piece))
            strokes.append(Stroke(width, tuple(piece)))
        if travel > MAX_LENGTH:
            raise DrawingError(f"more than {MAX_LENGTH:,} pixels of strokes: clear the canvas")
    return tuple(strokes)


def _stroke_fields(raw: Any) -> tuple[float, Sequence[Any]]:
    """One raw stroke's width, clamped to ``MIN_WIDTH…MAX_WIDTH``, and its flat coordinates."""
    if not isinstance(raw, Mapping):
        raise DrawingError("each stroke must be {width, points}")
    pen = _number(raw.get("width"), "a stroke's width")
    flat = raw.get("points", [])
    if not isinstance(flat, Sequence) or isinstance(flat, str) or len(flat) % 2:
        raise DrawingError("a stroke's points must be a flat list x0, y0, x1, y1, …")
    return min(max(pen, MIN_WIDTH), MAX_WIDTH), flat


def clip_segment(
    a: Point, b: Point, box: tuple[float, float, float, float]
) -> tuple[Point, Point] | None:
    """The part of the segment ``a``–``b`` inside ``box`` (Liang–Barsky), or None.

    An end inside the box is returned as it is (the same object), an end outside is moved
    along the segment to the box's edge.
    """
    (x0, y0), (x1, y1) = a, b
    left, top, right, bottom = box
    dx, dy = x1 - x0, y1 - y0
    enter, leave = 0.0, 1.0
    for step, room in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if step == 0:
            if room < 0:  # parallel to this edge and outside it
                return None
        elif step < 0:
            enter = max(enter, room / step)
        else:
            leave = min(leave, room / step)
    if enter > leave:
        return None
    start = a if enter == 0.0 else (x0 + enter * dx, y0 + enter * dy)
    end = b if leave == 1.0 else (x0 + leave * dx, y0 + leave * dy)
    return start, end


def clip_polyline(
    points: Sequence[Point], box: tuple[float, float, float, float]
) -> list[list[Point]]:
    """The parts of a polyline inside ``box``: a new part starts wherever it comes back in.

    A polyline all inside (the usual case) comes back whole, as one part; a single point (a
    dot) outside the box is dropped.
    """
    left, top, right, bottom = box
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if xs and left <= min(xs) and max(xs) <= right and top <= min(ys) and max(ys) <= bottom:
        return [list(points)]  # all inside: what a pen on the canvas sends
    if len(points) <= 1:
        return []
    pieces: list[list[Point]] = []
    current: list[Point] | None = None
    for a, b in itertools.pairwise(points):
        clipped = clip_segment(a, b, box)
        if clipped is None:
            current = None
            continue
        start, end = clipped
        if current is None or start is not a:
            current = [start]
            pieces.append(current)
        current.append(end)
        if end is not b:  # it leaves the box here
            current = None
    return pieces


def render_drawing(drawing: Drawing) -> Image.Image:
    """Paint the strokes white on black, round caps and joins, as the canvas shows them.

    Returns:
        An 8-bit greyscale (``"L"``) image of the canvas's size.
    """
    image = Image.new("L", drawing.size, 0)
    pen = ImageDraw.Draw(image)
    width, height = drawing.size
    for stroke in drawing.strokes:
        # Pillow puts pixel i's centre at i, the browser's canvas at i + 0.5.
        points = [(x - 0.5, y - 0.5) for x, y in stroke.points]
        if len(points) > 1:
            pen.line(points, fill=255, width=round(stroke.width))
        inner = stroke.width / 2 - 0.5  # Pillow's ellipse box includes its last pixel
        reach = stroke.width / 2  # a disc further off the canvas than this paints nothing
        for x, y in points:  # round caps and joins, as the browser's canvas draws them
            if -reach <= x <= width + reach and -reach <= y <= height + reach:
                pen.ellipse((x - inner, y - inner, x + inner, y + inner), fill=255)
    return image


def worst_case_value(size: int = MAX_CANVAS) -> dict[str, Any]:
    """The canvas value that costs :func:`render_drawing` the most that the caps admit.

    Painting costs a disc per point (at most π·20² pixels), a polygon per segment (its length
    × the pen's width) and a few microseconds of Python for each; on a canvas bigger than
    the CPU's cache, ink spread all over it costs most. So: every cap at its limit —
    :data:`MAX_STROKES` strokes of the widest pen spread over a ``size``-pixel canvas,
    :data:`MAX_POINTS` points in all, zig-zagging at 30° in segments that share out all but
    0.1 % of :data:`MAX_LENGTH`, every disc and segment on the canvas (Pillow clips discs and
    wide lines to the canvas, so ink off it costs less; a one-pixel line steps along all of
    its length, ~2 ns a pixel, which the cap on travel bounds). Of the shapes tried (1, 10 or
    200 strokes; segments of 0 to 28 pixels at 0–90°; canvases of 280 to 2000 pixels; strokes
    cut into 2,000 pieces at the margin; one-pixel pens) this one took longest.
    ``canvas_worst_paint_ms`` times it.

    Args:
        size: The canvas's side in pixels, at least 120 (the strokes keep off its edges).
    """
    per_stroke = MAX_POINTS // MAX_STROKES
    step = MAX_LENGTH / (MAX_STROKES * (per_stroke - 1)) * 0.999
    dx, dy = step * math.cos(math.pi / 6), step * math.sin(math.pi / 6)
    room = size - 2 * MAX_WIDTH - step
    strokes = []
    for index in range(MAX_STROKES):
        # spread over the canvas in a scrambled order (7919, 104729: primes)
        x0 = MAX_WIDTH + (index * 7919) % room
        y0 = MAX_WIDTH + (index * 104729) % room
        strokes.append(
            [(x0 + (i % 2) * dx, y0 + (i % 2) * dy + i * 0.01) for i in range(per_stroke)]
        )
    return drawing_value(strokes, width=MAX_WIDTH) | {"size": [size, size]}


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
