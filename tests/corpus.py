"""A corpus of bad and awkward inputs, generated on the fly (no committed binaries).

Each entry: file name, bytes, and what the app must say: an error containing ``refusal``,
or ``None`` where the input is unusual but valid and must simply work.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BadInput:
    name: str
    data: bytes
    mime: str
    refusal: str | None  # a fragment of the message; None: it must work


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (96, 64)) -> Image.Image:
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width × height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def _corrupt_png() -> bytes:
    data = bytearray(_encode(_photo(), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start : start + 64] = b"\xff" * 64  # garbage where the compressed pixels begin
    return bytes(data)


def _animated_gif() -> bytes:
    frames = [_photo().convert("P"), Image.new("RGB", (96, 64), "white").convert("P")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _palette_with_transparency() -> bytes:
    image = _photo().convert("P")
    return _encode(image, "PNG", transparency=0)


def _sixteen_bit_png() -> bytes:
    ramp = (np.arange(64 * 96).reshape(64, 96) * 10).astype(np.uint16)
    return _encode(Image.fromarray(ramp), "PNG")  # uint16: mode I;16


def image_corpus() -> list[BadInput]:
    """Files a person might upload to the Image page."""
    png = _encode(_photo(), "PNG")
    jpeg = _encode(_photo(), "JPEG")
    return [
        BadInput("corrupt.png", _corrupt_png(), "image/png", "truncated or corrupt"),
        BadInput("truncated.png", png[: len(png) // 2], "image/png", "truncated or corrupt"),
        BadInput("truncated.jpg", jpeg[: len(jpeg) // 2], "image/jpeg", "truncated or corrupt"),
        BadInput(
            "notes.png", b"Dear diary, this is not a picture.\n" * 20, "image/png", "not an image"
        ),
        BadInput("empty.png", b"", "image/png", "empty"),
        BadInput(
            "dot.png", _encode(Image.new("RGB", (1, 1), "red"), "PNG"), "image/png", "at least 8"
        ),
        BadInput(
            "sliver.png",
            _encode(Image.new("RGB", (10_000, 1), "red"), "PNG"),
            "image/png",
            "at least 8",
        ),
        BadInput("bomb.png", _png_declaring(30_000, 30_000), "image/png", "megapixels"),
        BadInput("cmyk.jpg", _encode(_photo().convert("CMYK"), "JPEG"), "image/jpeg", None),
        BadInput("deep.png", _sixteen_bit_png(), "image/png", None),
        BadInput("palette.png", _palette_with_transparency(), "image/png", None),
        BadInput("animated.gif", _animated_gif(), "image/gif", None),
    ]


def blank_digit(colour: str) -> bytes:
    """A 280×280 canvas-like PNG of one colour: nothing (or everything) drawn."""
    return _encode(Image.new("RGBA", (280, 280), colour), "PNG")
