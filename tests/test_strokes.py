"""Canvas strokes: parsing refuses what is not a drawing, painting matches the geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.inputs.strokes import (
    DIGIT_STROKES,
    MAX_POINTS,
    MAX_STROKES,
    DrawingError,
    drawing_value,
    parse_drawing,
    render_drawing,
)
from explorer.models.zoo import load_model


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
    assert drawing.strokes[0].width == 80.0


@pytest.mark.parametrize("digit", sorted(DIGIT_STROKES))
def test_digit_strokes_read_as_their_digit(digit: str) -> None:
    """The load generator and browser tests rely on LeNet-5 reading these right."""
    loaded = load_model("lenet5")
    image = render_drawing(parse_drawing(drawing_value(DIGIT_STROKES[digit])))
    best, prob = loaded.capture(loaded.prepare(image)).top(1)[0]
    assert loaded.categories[best] == digit
    assert prob > 0.5
