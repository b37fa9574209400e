"""Synthetic pictures of coloured shapes: an easy set of classes to teach and to test with.

Each class is a shape (circle, square, triangle, cross, ring) drawn at a random place and
size on a random light background, in its own colour give or take (the easy set) or in any
dark colour (``coloured=False``: a class is then told by its shape alone). Seeded, so a test
or a benchmark gets the same pictures every time.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from explorer.models.pictures import Picture, PictureSet, picture_set

__all__ = ["COLOURS", "SHAPES", "shape_picture", "shape_set", "write_shape_folder"]

SHAPES = ("circle", "square", "triangle", "cross", "ring")
COLOURS = ((210, 40, 40), (40, 170, 40), (40, 60, 210), (210, 150, 0), (150, 0, 150))
"""Each shape's colour in the easy set (±30 per channel)."""


def shape_picture(
    shape: str, rng: np.random.Generator, side: int = 96, coloured: bool = True
) -> bytes:
    """One PNG of ``shape`` at a random place and size, in its colour or (not ``coloured``) any."""
    background = tuple(int(v) for v in rng.integers(170, 256, 3))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    size = int(rng.integers(side // 4, side // 2))
    x, y = (int(v) for v in rng.integers(2, side - size - 2, 2))
    jitter = rng.integers(-30, 31, 3)
    if coloured and shape in SHAPES:
        colour = tuple(
            int(np.clip(c + j, 0, 255))
            for c, j in zip(COLOURS[SHAPES.index(shape)], jitter, strict=True)
        )
    else:
        colour = tuple(int(v) for v in rng.integers(0, 140, 3))
    box = (x, y, x + size, y + size)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x + size // 2, y), (x, y + size), (x + size, y + size)], fill=colour)
    elif shape == "cross":
        bar = max(size // 4, 2)
        draw.rectangle((x + (size - bar) // 2, y, x + (size + bar) // 2, y + size), fill=colour)
        draw.rectangle((x, y + (size - bar) // 2, x + size, y + (size + bar) // 2), fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(size // 6, 2))
    else:
        raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def shape_set(
    classes: int = 3, per_class: int = 20, seed: int = 0, coloured: bool = True
) -> PictureSet:
    """``per_class`` pictures of each of the first ``classes`` shapes."""
    rng = np.random.default_rng(seed)
    return picture_set(
        {
            shape: [
                Picture(f"{shape}/{i}.png", shape_picture(shape, rng, coloured=coloured))
                for i in range(per_class)
            ]
            for shape in SHAPES[:classes]
        }
    )


def write_shape_folder(
    folder: Path, classes: int = 3, per_class: int = 20, seed: int = 0, coloured: bool = True
) -> Path:
    """Write the pictures of :func:`shape_set` in ``ImageFolder``'s layout; ``folder``."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES[:classes]:
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            picture = shape_picture(shape, rng, coloured=coloured)
            (folder / shape / f"{i:03d}.png").write_bytes(picture)
    return folder
