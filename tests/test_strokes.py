"""Canvas strokes: parsing refuses what is not a drawing, painting matches the geometry."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from explorer.inputs.strokes import (
    DIGIT_STROKES,
    MAX_COORDINATE,
    MAX_LENGTH,
    MAX_POINTS,
    MAX_STROKES,
    MAX_WIDTH,
    Drawing,
    DrawingError,
    clip_polyline,
    drawing_value,
    margin_box,
    parse_drawing,
    render_drawing,
    worst_case_value,
)
from explorer.models.zoo import load_model

Segment = tuple[tuple[float, float], tuple[float, float]]


def segment_distance(shape: tuple[int, int], segments: Sequence[Segment]) -> np.ndarray:
    """Each pixel centre's distance to the nearest segment (inf beyond 60 px of all of them)."""
    height, width = shape
    distance = np.full(shape, np.inf)
    for (x0, y0), (x1, y1) in segments:
        left, right = max(0, int(min(x0, x1)) - 60), min(width, int(max(x0, x1)) + 61)
        top, bottom = max(0, int(min(y0, y1)) - 60), min(height, int(max(y0, y1)) + 61)
        if left >= right or top >= bottom:
            continue
        yy, xx = np.mgrid[top:bottom, left:right] + 0.5  # the browser's pixel centres
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        here = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        window = distance[top:bottom, left:right]
        np.minimum(window, here, out=window)
    return distance


def assert_paints_its_capsules(drawing: Drawing, segments: Sequence[Segment], pen: float) -> None:
    """Ink on every pixel well inside the strokes' capsules, and none well outside them.

    "Well": 2 px, as Pillow draws a wide line between its ends cut to whole pixels.
    """
    ink = np.asarray(render_drawing(drawing)) > 127
    distance = segment_distance(ink.shape, segments)
    assert ink[distance < pen / 2 - 2].all()
    assert not ink[distance > pen / 2 + 2].any()
    assert ink.sum() > 0.9 * (distance <= pen / 2).sum()


def segments_of(points: Sequence[tuple[float, float]]) -> list[Segment]:
    """A polyline's segments (a dot: one segment of length 0)."""
    return list(itertools.pairwise(points)) if len(points) > 1 else [(points[0], points[0])]


def test_empty_and_none_are_empty_drawings() -> None:
    assert parse_drawing(None).is_empty
    drawing = parse_drawing({"size": [280, 280], "strokes": []})
    assert drawing.is_empty
    assert np.asarray(render_drawing(drawing)).max() == 0


def test_value_round_trips_through_json() -> None:
    value = drawing_value(DIGIT_STROKES["7"], width=18, seq=5, final=False)
    drawing = parse_drawing(json.loads(json.dumps(value)))
    assert drawing.final is False
    assert drawing.size == (280, 280)
    assert [s.width for s in drawing.strokes] == [18.0]
    assert drawing.strokes[0].points == tuple(
        (float(x), float(y)) for x, y in DIGIT_STROKES["7"][0]
    )


def test_a_dot_is_a_disc_of_the_pen_width() -> None:
    drawing = parse_drawing({"strokes": [{"width": 20, "points": [100, 60]}]})
    ink = np.asarray(render_drawing(drawing)) > 127
    ys, xs = np.nonzero(ink)
    assert abs(ys.mean() - 60) < 0.6 and abs(xs.mean() - 100) < 0.6
    # area of a disc of radius 10 (pixel-rounding allowed)
    assert abs(ink.sum() - np.pi * 10**2) / (np.pi * 10**2) < 0.1


def test_a_line_covers_its_capsule_and_nothing_else() -> None:
    drawing = parse_drawing({"strokes": [{"width": 10, "points": [40, 100, 200, 100]}]})
    ink = np.asarray(render_drawing(drawing)) > 127
    yy, xx = np.mgrid[0:280, 0:280]
    # distance of every pixel centre to the segment (40,100)-(200,100)
    dx = np.clip(xx, 40, 200) - xx
    distance = np.hypot(dx, yy - 100)
    inside, outside = distance < 4, distance > 6.5
    assert ink[inside].all()
    assert not ink[outside].any()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a string", "not a drawing"),
        ({"strokes": "nope"}, "must be a list"),
        ({"strokes": [{"width": 5, "points": [1, 2, 3]}]}, "flat list"),
        ({"strokes": [{"width": float("nan"), "points": [1, 2]}]}, "finite number"),
        ({"strokes": [{"width": 5, "points": [1, "x"]}]}, "finite number"),
        ({"strokes": [{"width": True, "points": [1, 2]}]}, "finite number"),
        ({"size": [1, 1]}, "out of range"),
        ({"size": [280]}, "[width, height]"),
        ({"strokes": [{"width": 5, "points": [1, 2]}] * (MAX_STROKES + 1)}, "at most"),
        ({"strokes": [{"width": 5, "points": [1.0] * (2 * MAX_POINTS + 2)}]}, "points"),
    ],
)
def test_bad_values_are_refused_with_a_message(value: object, message: str) -> None:
    with pytest.raises(DrawingError, match=message.replace("[", r"\[")):
        parse_drawing(value)  # type: ignore[arg-type]


def test_pen_width_is_clamped() -> None:
    drawing = parse_drawing({"strokes": [{"width": 1000, "points": [10, 10]}]})
    assert drawing.strokes[0].width == MAX_WIDTH == 40.0  # the canvas's brush goes to 40


# ------------------------------------------------------------ hostile values (issue 22)


@pytest.mark.parametrize(
    "value",
    [
        # width-1 strokes through points a billion pixels off: seconds of GIL-held painting
        # a segment before; refused now (the test paints nothing, so the old code fails fast)
        {"strokes": [{"width": 1, "points": [-1e9, -1e9, 1e9, 1e9, -1e9, 1e9]}]},
        {"strokes": [{"width": 1, "points": [140, 140, 140, -(MAX_COORDINATE + 1)]}]},
    ],
    ids=["billion", "just-over"],
)
def test_points_far_off_the_canvas_are_refused(value: object) -> None:
    with pytest.raises(DrawingError, match="within ±1,000,000"):
        parse_drawing(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        {"strokes": [{"width": 5, "points": [10**400, 5]}]},
        {"strokes": [{"width": 5, "points": [5, -(10**400)]}]},
        {"strokes": [{"width": 10**400, "points": [5, 5]}]},
        {"size": [10**400, 280]},
        {"strokes": [{"width": 5, "points": [float("inf"), 5]}]},
    ],
    ids=["x", "negative-y", "width", "size", "inf"],
)
def test_huge_numbers_are_a_drawing_error_not_an_overflow(value: object) -> None:
    with pytest.raises(DrawingError, match="finite number"):
        parse_drawing(value)  # type: ignore[arg-type]


def test_a_stroke_dragged_off_the_canvas_is_cut_at_the_margin() -> None:
    # out to 5,000 px on a slope of 1/2, back in from 20,000 px to the left
    value = {"strokes": [{"width": 12, "points": [140, 140, 5140, 2640, -19860, 200, 100, 220]}]}
    drawing = parse_drawing(value)
    left, top, right, bottom = margin_box((280, 280))
    assert (left, top, right, bottom) == (-280, -280, 560, 560)
    assert len(drawing.strokes) == 2
    (out_x, out_y), (back_x, back_y) = drawing.strokes[0].points[-1], drawing.strokes[1].points[0]
    assert (out_x, out_y) == pytest.approx((560, 350))  # on the margin, on the same line
    assert back_x == pytest.approx(-280) and 200 < back_y < 220
    for stroke in drawing.strokes:
        assert all(left <= x <= right and top <= y <= bottom for x, y in stroke.points)
    # the canvas shows the same lines as the uncut stroke would
    points = [(140, 140), (5140, 2640), (-19860, 200), (100, 220)]
    assert_paints_its_capsules(drawing, segments_of(points), 12)


def test_clip_polyline_keeps_what_is_inside() -> None:
    box = (0.0, 0.0, 10.0, 10.0)
    inside = [(1.0, 1.0), (9.0, 9.0)]
    assert clip_polyline(inside, box) == [inside]
    assert clip_polyline([(20.0, 5.0)], box) == []  # a dot outside
    assert clip_polyline([(-5.0, -5.0), (-5.0, 20.0)], box) == []  # a segment missing the box
    assert clip_polyline([(-10.0, 5.0), (20.0, 5.0)], box) == [[(0.0, 5.0), (10.0, 5.0)]]
    assert clip_polyline([], box) == []


def test_pen_travel_is_capped() -> None:
    back_and_forth = [0, 140, 280, 140] * (MAX_LENGTH // 560 + 1)
    with pytest.raises(DrawingError, match="pixels of strokes"):
        parse_drawing({"strokes": [{"width": 8, "points": back_and_forth}]})
    # travel beyond the margin is not counted: a pen dragged far off costs what it paints
    far = {"strokes": [{"width": 8, "points": [-900_000, 140, 900_000, 140]}]}
    (start, end) = parse_drawing(far).strokes[0].points
    assert [*start, *end] == pytest.approx([-280, 140, 560, 140])


@pytest.mark.parametrize("size", [280, 2000])
def test_the_costliest_value_the_caps_admit_is_accepted_and_painted_right(size: int) -> None:
    drawing = parse_drawing(worst_case_value(size))
    assert drawing.size == (size, size)
    assert len(drawing.strokes) == MAX_STROKES
    assert sum(len(s.points) for s in drawing.strokes) == MAX_POINTS
    assert {s.width for s in drawing.strokes} == {MAX_WIDTH}
    travel = sum(math.dist(a, b) for s in drawing.strokes for a, b in segments_of(s.points))
    assert 0.99 * MAX_LENGTH < travel <= MAX_LENGTH
    segments = [seg for s in drawing.strokes for seg in segments_of(s.points)]
    assert_paints_its_capsules(drawing, segments, MAX_WIDTH)


@pytest.mark.parametrize("digit", sorted(DIGIT_STROKES))
def test_digit_strokes_read_as_their_digit(digit: str) -> None:
    """The load generator and browser tests rely on LeNet-5 reading these right."""
    loaded = load_model("lenet5")
    image = render_drawing(parse_drawing(drawing_value(DIGIT_STROKES[digit])))
    best, prob = loaded.capture(loaded.prepare(image)).top(1)[0]
    assert loaded.categories[best] == digit
    assert prob > 0.5
