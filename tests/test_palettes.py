"""The colour scales read without colour vision: lightness orders them, and red/blue survive.

Computed here, independently of explorer/figures/colour.py: sRGB → CIELAB (D65), and
colour-vision deficiency simulated with Machado, Oliveira & Fernandes (2009)'s matrices at
severity 1 (dichromacy), applied to linear RGB.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.figures.colour import colourscale, palette
from explorer.figures.style import OTHER_COLOUR, WINNER_COLOUR

MACHADO_2009 = {
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ]
    ),
    "tritanopia": np.array(
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.303900],
        ]
    ),
}
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def to_linear(rgb8: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb8, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB of linear-RGB colours (rows)."""
    xyz = np.clip(linear, 0, 1) @ SRGB_TO_XYZ.T / WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def simulate(linear: np.ndarray, deficiency: str) -> np.ndarray:
    seen: np.ndarray = np.clip(linear @ MACHADO_2009[deficiency].T, 0, 1)
    return seen


def hex_rgb(colour: str) -> np.ndarray:
    """``"#d62728"`` or ``"rgb(214, 39, 40)"`` as a 1×3 array of 0–255."""
    if colour.startswith("rgb("):
        return np.array([[float(v) for v in colour[4:-1].split(",")]])
    return np.array([[int(colour[i : i + 2], 16) for i in (1, 3, 5)]])


def test_white_and_black_have_the_textbook_lightness() -> None:
    assert lab(to_linear(np.array([[255, 255, 255]])))[0] == pytest.approx([100, 0, 0], abs=0.01)
    assert lab(to_linear(np.array([[0, 0, 0]])))[0] == pytest.approx([0, 0, 0], abs=0.01)
    # sRGB red: L* 53.24, a* 80.09, b* 67.20
    assert lab(to_linear(np.array([[255, 0, 0]])))[0] == pytest.approx([53.24, 80.09, 67.20], 0.01)


def test_the_sequential_scale_gets_lighter_all_the_way() -> None:
    """Lightness alone orders the sequential scale, for every kind of colour vision."""
    colours = to_linear(palette(diverging=False)[:255])
    lightness = lab(colours)[:, 0]
    # never darker (two neighbours of the 255 can round to one uint8 colour), and 75 L* in all
    assert np.all(np.diff(lightness) >= 0) and lightness[-1] - lightness[0] > 75
    for vision in MACHADO_2009:
        lightness = lab(simulate(colours, vision))[:, 0]
        # a simulated step back of under 0.5 L* is far below what an eye tells apart (~1)
        assert np.all(np.diff(lightness) > -0.5), vision
        assert lightness[-1] - lightness[0] > 70, vision


def mirrored_distance(colours: np.ndarray, vision: str | None) -> float:
    """The smallest ΔE76 between mirrored points −v and +v, a quarter of the way out or more.

    ``colours`` are a 255-colour diverging scale in linear RGB, seen with ``vision``.
    """
    seen = lab(colours if vision is None else simulate(colours, vision))
    return min(float(np.linalg.norm(seen[127 - o] - seen[127 + o])) for o in range(32, 128))


@pytest.mark.parametrize("vision", [None, *MACHADO_2009])
def test_the_diverging_scale_keeps_its_two_arms_apart(vision: str | None) -> None:
    """Each arm gets lighter towards 0 (white), and −v and +v stay clearly different colours."""
    colours = to_linear(palette(diverging=True)[:255])
    seen = lab(colours if vision is None else simulate(colours, vision))
    middle = 127
    assert seen[middle, 0] > 95  # 0 is (near) white
    assert np.all(np.diff(seen[: middle + 1, 0]) > 0)  # the negative arm lightens to 0
    assert np.all(np.diff(seen[middle:, 0]) < 0)  # the positive arm darkens from 0
    assert mirrored_distance(colours, vision) > 20


def test_a_red_green_scale_fails_the_same_check() -> None:
    """The check can fail: red–yellow–green loses its arms to deuteranopia."""
    stops = colourscale("RdYlGn")
    x = np.linspace(0, 1, 255)
    rgb = np.stack(
        [
            np.interp(x, [p for p, _ in stops], [hex_rgb(c)[0, i] for _, c in stops])
            for i in range(3)
        ],
        axis=1,
    )
    colours = to_linear(rgb.round())
    assert mirrored_distance(colours, None) > 20
    assert mirrored_distance(colours, "deuteranopia") < 20


@pytest.mark.parametrize("vision", [*MACHADO_2009])
def test_the_winning_bar_stands_out_from_the_others(vision: str) -> None:
    winner, other = (simulate(to_linear(hex_rgb(c)), vision) for c in (WINNER_COLOUR, OTHER_COLOUR))
    assert np.linalg.norm(lab(winner) - lab(other)) > 20
