"""Tests for explorer.inputs.preprocess: loading, refusing bad files, and the MNIST and photo paths.

Every odd image is built here, in memory; nothing binary is committed.
"""

from __future__ import annotations

import hashlib
import io
import resource
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from explorer.inputs.preprocess import (
    MAX_ASPECT,
    MAX_JPEG_SCANS,
    MAX_PIXELS,
    MIN_SIDE,
    ImageError,
    NothingDrawn,
    PreparedInput,
    digit_ink,
    jpeg_scan_count,
    load_image,
    mnist_layout,
    preprocess_digit,
    preprocess_photo,
    to_rgb,
)
from explorer.inputs.spec import MNIST_MEAN, MNIST_STD

REPO = Path(__file__).resolve().parents[1]
MNIST_PATH = REPO / "assets" / "data" / "mnist-8k.npz"
BACKGROUND = np.float32(-MNIST_MEAN / MNIST_STD)


# ---------------------------------------------------------------- helpers


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """The bytes of `img` saved as `fmt`."""
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims `width`×`height` (CRC fixed, so Pillow trusts it)."""
    data = bytearray(encode(Image.new("L", (8, 8))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise_rgb(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """A random RGB image, width × height = `size`."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    return Image.fromarray(pixels)


def pixel(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The channel values of `img` at (x, y)."""
    return tuple(int(v) for v in np.atleast_1d(np.asarray(img)[xy[1], xy[0]]))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays, flattened."""
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def place(digit: np.ndarray, side: int, top: int, left: int, canvas: int = 280) -> np.ndarray:
    """`digit` scaled to `side` px and put at (top, left) on a black `canvas`² image."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR))
    out = np.zeros((canvas, canvas), np.uint8)
    out[top : top + side, left : left + side] = big
    return out


def transparent_canvas(alpha: np.ndarray, rgb: tuple[int, int, int]) -> Image.Image:
    """An RGBA canvas, colour `rgb` everywhere, with `alpha` as its alpha channel."""
    pixels = np.zeros((*alpha.shape, 4), np.uint8)
    pixels[..., :3] = rgb
    pixels[..., 3] = alpha
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def mnist() -> np.ndarray:
    """The first 300 real MNIST digits, white ink on black, uint8 (N, 28, 28)."""
    with np.load(MNIST_PATH) as data:
        images: np.ndarray = data["images"][:300].copy()
        return images


# ---------------------------------------------------------------- load_image: sources, modes


@pytest.mark.parametrize("kind", ["bytes", "path", "stream", "image"])
def test_load_image_reads_every_kind_of_source(kind: str, tmp_path: Path) -> None:
    img = noise_rgb()
    data = encode(img)
    path = tmp_path / "noise.png"
    path.write_bytes(data)
    sources: dict[str, Any] = {
        "bytes": data,
        "path": path,
        "stream": io.BytesIO(data),
        "image": Image.open(io.BytesIO(data)),
    }
    loaded = load_image(sources[kind])
    assert loaded.mode == "RGB"
    assert loaded.size == (64, 48)
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(img))


@pytest.mark.parametrize(
    ("img", "mode"),
    [
        (Image.new("L", (16, 16), 7), "L"),
        (Image.new("1", (16, 16), 1), "L"),
        (Image.new("RGB", (16, 16), (1, 2, 3)), "RGB"),
        (Image.new("RGBA", (16, 16), (1, 2, 3, 255)), "RGBA"),
        (Image.new("LA", (16, 16), (9, 128)), "RGBA"),
        (Image.new("CMYK", (16, 16), (0, 0, 0, 0)), "RGB"),
        (Image.new("YCbCr", (16, 16), (128, 128, 128)), "RGB"),
    ],
)
def test_load_image_normalises_modes(img: Image.Image, mode: str) -> None:
    assert load_image(encode(img, "TIFF")).mode == mode


def test_load_image_one_bit_becomes_black_and_white_gray() -> None:
    img = Image.new("1", (16, 16), 0)
    img.putpixel((3, 4), 1)
    loaded = np.asarray(load_image(encode(img)))
    assert loaded[4, 3] == 255
    assert loaded.sum() == 255


def test_load_image_la_keeps_gray_and_alpha() -> None:
    loaded = load_image(encode(Image.new("LA", (16, 16), (9, 128))))
    assert loaded.mode == "RGBA"
    assert pixel(loaded, (0, 0)) == (9, 9, 9, 128)


def test_load_image_palette_without_transparency_is_rgb() -> None:
    img = Image.new("P", (16, 16), 1)
    img.putpalette([255, 0, 0, 0, 200, 0])
    loaded = load_image(encode(img))
    assert loaded.mode == "RGB"
    assert pixel(loaded, (5, 5)) == (0, 200, 0)


def test_load_image_palette_with_transparency_is_rgba() -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 200, 0])
    img.paste(1, (0, 0, 8, 16))
    loaded = load_image(encode(img, transparency=0))
    assert loaded.mode == "RGBA"
    assert pixel(loaded, (2, 2)) == (0, 200, 0, 255)
    assert pixel(loaded, (12, 2))[3] == 0


def test_load_image_rgb_with_trns_is_rgba() -> None:
    img = Image.new("RGB", (16, 16), (10, 20, 30))
    img.paste((200, 200, 200), (0, 0, 8, 16))
    loaded = load_image(encode(img, transparency=(10, 20, 30)))
    assert loaded.mode == "RGBA"
    assert pixel(loaded, (2, 2)) == (200, 200, 200, 255)
    assert pixel(loaded, (12, 2))[3] == 0


def test_load_image_cmyk_jpeg_is_rgb_with_the_right_colour() -> None:
    cyan = Image.new("CMYK", (32, 32), (255, 0, 0, 0))
    loaded = load_image(encode(cyan, "JPEG", quality=95))
    assert loaded.mode == "RGB"
    red, green, blue = pixel(loaded, (16, 16))
    assert red < 10 and green > 245 and blue > 245


def test_load_image_16_bit_png_uses_the_whole_16_bit_range() -> None:
    values = np.linspace(0, 65535, 64).round().astype(np.uint16).reshape(8, 8)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    loaded = load_image(encode(img))
    assert loaded.mode == "L"
    gray = np.asarray(loaded)
    assert gray.max() == 255 and gray.min() == 0
    assert np.all(np.diff(gray.ravel().astype(int)) >= 0)  # ordering kept
    np.testing.assert_array_equal(gray, np.round(values / 257.0).astype(np.uint8))


def test_load_image_16_bit_png_with_trns_is_rgba() -> None:
    values = np.full((8, 8), 40000, np.uint16)
    values[:, :4] = 7
    loaded = load_image(encode(Image.fromarray(values), transparency=7))
    assert loaded.mode == "RGBA"
    assert pixel(loaded, (0, 0))[3] == 0
    assert pixel(loaded, (6, 0)) == (156, 156, 156, 255)


def test_load_image_float_image_in_unit_range_scales_by_255() -> None:
    values = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    loaded = load_image(Image.fromarray(values))
    assert loaded.mode == "L"
    np.testing.assert_array_equal(np.asarray(loaded), np.round(values * 255).astype(np.uint8))


def test_load_image_float_image_out_of_range_is_stretched() -> None:
    values = np.linspace(-3.0, 5.0, 64, dtype=np.float32).reshape(8, 8)
    gray = np.asarray(load_image(Image.fromarray(values)))
    assert gray.min() == 0 and gray.max() == 255
    assert gray[0, 0] == 0 and gray[-1, -1] == 255
    assert np.all(np.diff(gray.ravel().astype(int)) >= 0)


def test_load_image_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    loaded = load_image(data)
    assert loaded.mode == "RGB"
    assert pixel(loaded, (8, 8)) == (255, 0, 0)


def test_load_image_image_positioned_on_a_later_frame_gives_the_first() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    img = Image.open(io.BytesIO(encode(frames[0], "GIF", save_all=True, append_images=frames[1:])))
    img.seek(1)
    assert pixel(load_image(img), (8, 8)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("orientation", "red_corner"),
    [(1, "top_left"), (6, "top_right"), (8, "bottom_left"), (3, "bottom_right")],
)
def test_load_image_applies_exif_orientation(orientation: int, red_corner: str) -> None:
    # Stored 60 wide × 30 tall, blue, with a red top-left quadrant.
    img = Image.new("RGB", (60, 30), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 30, 15))
    exif = Image.Exif()
    exif[0x0112] = orientation
    loaded = load_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    width, height = loaded.size
    assert (width, height) == ((30, 60) if orientation in (6, 8) else (60, 30))
    corners = {
        "top_left": (2, 2),
        "top_right": (width - 3, 2),
        "bottom_left": (2, height - 3),
        "bottom_right": (width - 3, height - 3),
    }
    for name, xy in corners.items():
        red, _, blue = pixel(loaded, xy)
        assert (red > 200 and blue < 50) == (name == red_corner), name


# ---------------------------------------------------------------- load_image: refusals


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is plain text and not a picture at all", "not an image Pillow can read"),
    ],
)
def test_load_image_refuses_empty_and_non_image_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_load_image_refuses_text_renamed_png(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    path.write_text("definitely not a PNG\n")
    with pytest.raises(ImageError, match="not an image Pillow can read"):
        load_image(path)


def test_load_image_refuses_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(str(path))


def test_load_image_refuses_corrupt_png() -> None:
    data = bytearray(encode(noise_rgb()))
    start = data.index(b"IDAT") + 40
    data[start : start + 40] = bytes(b ^ 0xFF for b in data[start : start + 40])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(bytes(data))


def test_load_image_refuses_truncated_jpeg() -> None:
    data = encode(noise_rgb(), "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("size", [(1, 1), (1, 10000), (MIN_SIDE - 1, 100)])
def test_load_image_refuses_tiny_images(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError, match=f"{size[0]}×{size[1]} pixels"):
        load_image(encode(Image.new("L", size)))


def test_load_image_refuses_slivers() -> None:
    side = int(MIN_SIDE * MAX_ASPECT) + 8
    with pytest.raises(ImageError, match=f"{MIN_SIDE}×{side} pixels, more elongated"):
        load_image(encode(Image.new("L", (MIN_SIDE, side))))


def test_load_image_accepts_the_limits_exactly() -> None:
    side = int(MIN_SIDE * MAX_ASPECT)
    assert load_image(encode(Image.new("L", (side, MIN_SIDE)))).size == (side, MIN_SIDE)


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (10_000, 6_000, "10000×6000 pixels; the limit is 50 megapixels"),  # our own limit
        (12_000, 8_000, "96,000,000 pixels; the limit is 50 megapixels"),  # Pillow warns
        (30_000, 30_000, "900,000,000 pixels; the limit is 50 megapixels"),  # Pillow errors
    ],
)
def test_load_image_refuses_decompression_bombs_before_decoding(
    width: int, height: int, message: str
) -> None:
    assert width * height > MAX_PIXELS
    limit_before = Image.MAX_IMAGE_PIXELS
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The message names the size, not "corrupt": refused from the header, before decoding
    # (the crafted file holds 8×8 pixels of data, so decoding it would fail differently).
    with pytest.raises(ImageError, match=message):
        load_image(png_with_declared_size(width, height))
    if sys.platform == "linux":  # ru_maxrss is in KiB there
        grown_bytes = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) * 1024
        assert grown_bytes < 20_000_000  # decoding would have needed width × height bytes
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_load_image_refuses_a_huge_image_object() -> None:
    huge = Image.new("1", (10_000, 5_001))  # 1 bit per pixel: cheap to build
    with pytest.raises(ImageError, match="10000×5001 pixels"):
        load_image(huge)


def test_image_errors_are_value_errors() -> None:
    assert issubclass(ImageError, ValueError)
    assert issubclass(NothingDrawn, ImageError)


def test_load_image_rejects_a_non_image_type() -> None:
    with pytest.raises(TypeError, match="int"):
        load_image(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- load_image: hostile files


def progressive_jpeg(extra_scans: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A progressive JPEG from Pillow (10 scans), then ``extra_scans`` empty ones before EOI.

    Each extra scan is a copy of the last scan's header with no data: libjpeg passes over
    every coefficient of the image for each (58 s for 20,000 of them in a 392 kB file).
    """
    data = encode(noise_rgb(size), "JPEG", progressive=True, quality=80)
    start = data.rindex(b"\xff\xda")
    header = data[start : start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")]
    assert data.endswith(b"\xff\xd9")
    return data[:-2] + header * extra_scans + b"\xff\xd9"


def test_jpeg_scan_count_reads_the_markers() -> None:
    assert jpeg_scan_count(encode(noise_rgb(), "JPEG")) == 1
    assert jpeg_scan_count(progressive_jpeg()) == 10
    assert jpeg_scan_count(progressive_jpeg(5)) == 15
    # FF DA inside a comment, or after the end of the image (a phone's motion photo appends
    # a video there), is no scan
    comment = encode(noise_rgb(), "JPEG", comment=b"\xff\xda" * 1000)
    assert jpeg_scan_count(comment) == 1
    assert jpeg_scan_count(encode(noise_rgb(), "JPEG") + b"\xff\xda\x00\x08" * 1000) == 1
    # counting stops one past the limit: a hostile file costs no more to count than that
    assert jpeg_scan_count(progressive_jpeg(20_000)) == MAX_JPEG_SCANS + 1


def test_load_image_refuses_a_jpeg_with_thousands_of_empty_scans() -> None:
    data = progressive_jpeg(20_000)  # small pixels: the old code decoded it, in milliseconds
    with pytest.raises(ImageError, match=f"more than {MAX_JPEG_SCANS} scans"):
        load_image(data)
    with pytest.raises(ImageError, match="scans"):  # as a lazily opened image too
        load_image(Image.open(io.BytesIO(data)))


def test_load_image_reads_a_jpeg_with_scans_up_to_the_limit() -> None:
    assert load_image(progressive_jpeg(MAX_JPEG_SCANS - 10)).size == (64, 48)
    with pytest.raises(ImageError, match="scans"):
        load_image(progressive_jpeg(MAX_JPEG_SCANS - 9))


def test_scans_hidden_behind_an_unknown_marker_are_counted() -> None:
    data = progressive_jpeg(MAX_JPEG_SCANS)
    end = data.rindex(b"\xff\xd9")
    scans = data.index(b"\xff\xda") + 4  # after the first scan's header
    # a reserved marker whose "length" would step over every later scan, were it skipped
    hidden = data[:scans] + b"\xff\x02\xff\xff" + data[scans:end] + b"\xff\xd9"
    assert jpeg_scan_count(hidden) > MAX_JPEG_SCANS


def tiff_of_one_strip(height: int, row: np.ndarray, rows_per_strip: int = 8) -> bytes:
    """A one-band little-endian TIFF, ``len(row)`` × ``height``, every row ``row``.

    Its strips all point at the same ``rows_per_strip`` rows, stored once: a 7000² float
    image in a 230 kB file, built without holding its pixels. ``row``: float32 ("F") or
    uint16 ("I;16").
    """
    width, strips = len(row), height // rows_per_strip
    assert strips * rows_per_strip == height
    strip = np.tile(row.astype(row.dtype.newbyteorder("<")), (rows_per_strip, 1)).tobytes()
    entries = 10
    offsets_at = 8 + 2 + 12 * entries + 4
    counts_at = offsets_at + 4 * strips
    strip_at = counts_at + 4 * strips
    fields = [  # tag, type (3: SHORT, 4: LONG), count, value or offset
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8 * row.dtype.itemsize),
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 1),  # black is zero
        (273, 4, strips, offsets_at),
        (277, 3, 1, 1),
        (278, 4, 1, rows_per_strip),
        (279, 4, strips, counts_at),
        (339, 3, 1, 3 if row.dtype.kind == "f" else 1),  # IEEE float, or unsigned
    ]
    ifd = struct.pack("<H", entries) + b"".join(
        struct.pack("<HHI", tag, kind, count)
        + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, count, value in fields
    )
    return (
        b"II*\x00"
        + struct.pack("<I", 8)
        + ifd
        + struct.pack("<I", 0)
        + struct.pack(f"<{strips}I", *[strip_at] * strips)
        + struct.pack(f"<{strips}I", *[len(strip)] * strips)
        + strip
    )


def load_under_memory_cap(data: bytes, headroom: int, tmp_path: Path) -> str:
    """``load_image`` of ``data`` in a child process whose memory may grow ``headroom`` bytes.

    The cap is on the address space (``RLIMIT_AS``, as ``prlimit --as``), set once torch and
    the app are imported (torch alone maps ~3 GB). Returns the child's one line: "refused:
    <message>" or "loaded: <mode> <width> <height> <first row's pixels at 0, ½, end>".
    """
    path = tmp_path / "upload"
    path.write_bytes(data)
    script = f"""
        import resource
        import numpy as np
        from explorer.inputs.preprocess import ImageError, load_image
        status = open("/proc/self/status").read()
        size = int(status.split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, size + {headroom}))
        try:
            image = load_image({str(path)!r})
        except ImageError as exc:
            print("refused:", exc)
        else:
            row = np.asarray(image)[0]
            print("loaded:", image.mode, *image.size, row[0], row[len(row) // 2], row[-1])
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


@pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and RLIMIT_AS")
def test_a_7000_square_float_tiff_loads_in_bounded_memory(tmp_path: Path) -> None:
    # 49 Mpx of float32 is 196 MB; float64 copies of the whole took ~2 GB. Scaled band by
    # band it needs the image, its 8-bit copy and a few MB: 1 GB of headroom is plenty.
    ramp = np.linspace(0.0, 1.0, 7000, dtype=np.float32)
    data = tiff_of_one_strip(7000, ramp)
    assert Image.open(io.BytesIO(data)).mode == "F" and len(data) < 300_000
    line = load_under_memory_cap(data, 1_000_000_000, tmp_path)
    assert line == f"loaded: L 7000 7000 0 {round(ramp[3500] * 255)} 255"


@pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and RLIMIT_AS")
def test_a_7000_square_16_bit_tiff_loads_in_bounded_memory(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 7000).round().astype(np.uint16)
    data = tiff_of_one_strip(7000, ramp)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    line = load_under_memory_cap(data, 600_000_000, tmp_path)
    assert line == f"loaded: L 7000 7000 0 {round(ramp[3500] / 257)} 255"


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid RGB PNG of ``width`` × ``height`` black pixels, compressed a row at a time."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)  # filter byte, then the row
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and RLIMIT_AS")
def test_running_out_of_memory_while_decoding_is_a_message(tmp_path: Path) -> None:
    # 7000×7000 RGB: within the pixel limit, 147 MB decoded, 200 kB of PNG; with 64 MB of
    # headroom the decoder's MemoryError must come back as a message, not a traceback
    line = load_under_memory_cap(png_of_zeros(7000, 7000), 64_000_000, tmp_path)
    assert line.startswith("refused: the image is too large or too intricate to decode")


# ---------------------------------------------------------------- to_rgb


def test_to_rgb_composites_alpha_on_white() -> None:
    img = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 8, 16))
    img.paste((0, 0, 0, 128), (8, 0, 12, 16))
    rgb = to_rgb(img)
    assert rgb.mode == "RGB"
    assert pixel(rgb, (2, 2)) == (255, 0, 0)
    assert pixel(rgb, (14, 2)) == (255, 255, 255)
    assert all(abs(v - 127) <= 1 for v in pixel(rgb, (10, 2)))  # half-covered black


def test_to_rgb_turns_gray_into_three_equal_channels() -> None:
    assert pixel(to_rgb(Image.new("L", (16, 16), 77)), (0, 0)) == (77, 77, 77)


# ---------------------------------------------------------------- digit_ink


def test_digit_ink_white_ink_on_transparent_canvas_is_alpha(mnist: np.ndarray) -> None:
    digit = mnist[0]
    ink = digit_ink(transparent_canvas(digit, (255, 255, 255)))
    assert ink.dtype == np.float32 and ink.shape == (28, 28)
    np.testing.assert_allclose(ink, digit / digit.max(), atol=1e-6)


def test_digit_ink_light_ink_is_alpha_times_luminance() -> None:
    alpha = np.zeros((40, 40), np.uint8)
    alpha[10:30, 18:22] = 255
    alpha[10:30, 22:24] = 128
    ink = digit_ink(transparent_canvas(alpha, (200, 200, 200)))
    # Full alpha, luminance 200: the strongest ink, stretched to 1; half alpha: half as much.
    assert ink[20, 20] == pytest.approx(1.0)
    assert ink[20, 23] == pytest.approx(128 / 255, abs=1e-6)
    assert ink[:10].max() == 0.0


def test_digit_ink_ignores_colour_under_fully_transparent_pixels(mnist: np.ndarray) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (28, 28, 4), np.uint8)
    pixels[..., :3][mnist[0] > 0] = 255
    pixels[..., 3] = mnist[0]
    ink = digit_ink(Image.fromarray(pixels))
    np.testing.assert_allclose(ink, mnist[0] / mnist[0].max(), atol=1e-6)


def test_digit_ink_dark_ink_on_transparent_canvas(mnist: np.ndarray) -> None:
    ink = digit_ink(transparent_canvas(mnist[0], (0, 0, 0)))
    np.testing.assert_allclose(ink, mnist[0] / mnist[0].max(), atol=1 / 255 + 1e-6)


def test_digit_ink_white_on_opaque_black_is_luminance(mnist: np.ndarray) -> None:
    rgb = np.repeat(mnist[0][..., None], 3, axis=2)
    ink = digit_ink(Image.fromarray(rgb))
    np.testing.assert_allclose(ink, mnist[0] / mnist[0].max(), atol=1e-6)


def test_digit_ink_inverts_dark_ink_on_light_paper(mnist: np.ndarray) -> None:
    ink = digit_ink(Image.fromarray(255 - mnist[0]))
    np.testing.assert_allclose(ink, mnist[0] / mnist[0].max(), atol=1e-6)


def test_digit_ink_noisy_paper_comes_out_clean() -> None:
    rng = np.random.default_rng(2)
    paper = rng.normal(225, 8, (200, 200))
    stroke = np.zeros((200, 200), bool)
    stroke[40:160, 95:110] = True
    stroke[40:52, 60:140] = True
    paper[stroke] = rng.normal(40, 8, stroke.sum())
    photo = np.repeat(np.clip(paper, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    photo[..., 2] = np.clip(photo[..., 2].astype(int) + 20, 0, 255)  # bluish light
    ink = digit_ink(Image.fromarray(photo))
    assert ink[~stroke].max() < 0.1
    assert np.mean(ink[~stroke] > 0) < 0.01
    assert np.median(ink[stroke]) > 0.75  # stretched to the darkest (noisy) ink pixel


def test_digit_ink_blank_images_have_no_ink() -> None:
    for img in [
        Image.new("L", (50, 50), 0),
        Image.new("L", (50, 50), 255),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
    ]:
        assert digit_ink(img).max() == 0.0, img.mode


# ---------------------------------------------------------------- mnist_layout


def test_mnist_layout_fits_the_longer_side_to_the_box_and_centres_mass() -> None:
    ink = np.zeros((300, 300), np.float32)
    ink[50:150, 200:250] = 1.0  # 100 tall, 50 wide, far from the centre
    layout = mnist_layout(ink)
    assert layout.shape == (28, 28) and layout.dtype == np.float32
    assert layout.min() >= 0.0 and layout.max() <= 1.0
    # Scaled by 20/100: 20 rows × 10 columns of ink, wherever the edges fall between pixels.
    rows, cols = layout.sum(axis=1), layout.sum(axis=0)
    assert rows.sum() / rows.max() == pytest.approx(20, abs=0.5)
    assert cols.sum() / cols.max() == pytest.approx(10, abs=0.5)
    assert layout.sum() == pytest.approx(200, rel=0.02)
    ys, xs = np.indices(layout.shape)
    assert (ys * layout).sum() / layout.sum() == pytest.approx(14.0, abs=0.05)
    assert (xs * layout).sum() / layout.sum() == pytest.approx(14.0, abs=0.05)


def test_mnist_layout_of_nothing_is_zeros() -> None:
    np.testing.assert_array_equal(mnist_layout(np.zeros((50, 50))), np.zeros((28, 28)))


def test_mnist_layout_keeps_lopsided_ink_inside_the_field() -> None:
    ink = np.zeros((100, 100), np.float32)
    ink[:3, :] = 0.3  # a faint line making the box square …
    ink[:, :10] = 1.0  # … and a heavy bar on its left that pulls the centre of mass over
    layout = mnist_layout(ink)
    # Centring the mass would push the box's right end out of the field; it is kept inside
    # instead: the box spans columns 8..27, the bar columns 8 and 9, the line reaches 27.
    assert layout[:, :7].max() < 0.01  # at most the filter's faint ringing
    assert layout[:, 8:10].sum() == pytest.approx(40, rel=0.1)
    assert layout[:, 27].max() > 0.1
    assert layout.sum() == pytest.approx(mnist_layout(ink, size=60).sum(), rel=0.03)


def test_mnist_layout_puts_real_digits_mass_on_the_centre(mnist: np.ndarray) -> None:
    ys, xs = np.indices((28, 28))
    original = [(ys * d).sum() / d.sum() for d in mnist[:50].astype(np.float64)]
    assert np.ptp(original) > 0.5  # MNIST itself centres only to the nearest pixel
    for digit in mnist[:50]:
        layout = mnist_layout(digit / 255.0)
        assert (ys * layout).sum() / layout.sum() == pytest.approx(14.0, abs=0.15)
        assert (xs * layout).sum() / layout.sum() == pytest.approx(14.0, abs=0.15)


# ---------------------------------------------------------------- preprocess_digit


@pytest.mark.parametrize("variant", ["as_is", "paper", "transparent"])
def test_preprocess_digit_returns_real_mnist_digits_nearly_unchanged(
    mnist: np.ndarray, variant: str
) -> None:
    makers: dict[str, Callable[[np.ndarray], Image.Image]] = {
        "as_is": lambda d: Image.fromarray(d),
        "paper": lambda d: Image.fromarray(255 - d),
        "transparent": lambda d: transparent_canvas(d, (255, 255, 255)),
    }
    make = makers[variant]
    correlations = np.array([corr(preprocess_digit(make(d)).display, d) for d in mnist[:200]])
    # MNIST puts the centre of mass within half a pixel of the centre; we put it on the
    # centre exactly, so a digit may move by up to half a pixel. Nothing else changes.
    assert np.median(correlations) > 0.95
    assert np.mean(correlations > 0.9) >= 0.95


def test_preprocess_digit_small_corner_and_large_centre_agree(mnist: np.ndarray) -> None:
    for digit in mnist[:40]:
        small = preprocess_digit(Image.fromarray(place(digit, 70, 5, 5))).display / 255.0
        large = preprocess_digit(Image.fromarray(place(digit, 250, 15, 15))).display / 255.0
        assert corr(small, large) > 0.98
        assert np.abs(small - large).mean() < 0.02
        assert np.abs(small - large).max() < 0.35


def draw_seven(scale: float, offset: tuple[float, float], width: int) -> Image.Image:
    """A "7" drawn in white on a transparent 280×280 canvas, like the app's canvas."""
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    corners = [(0, 0), (80, 0), (30, 110)]
    points = [(offset[0] + scale * x, offset[1] + scale * y) for x, y in corners]
    ImageDraw.Draw(canvas).line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
    return canvas


def test_preprocess_digit_drawn_seven_is_the_same_at_any_place_and_size() -> None:
    reference = preprocess_digit(draw_seven(1.0, (100, 80), 16)).display / 255.0
    for scale, offset in [(0.5, (10, 10)), (0.8, (190, 170)), (2.0, (40, 30)), (1.3, (3, 120))]:
        layout = preprocess_digit(draw_seven(scale, offset, round(16 * scale))).display / 255.0
        assert corr(reference, layout) > 0.95, (scale, offset)
        assert np.abs(reference - layout).mean() < 0.03, (scale, offset)


def test_preprocess_digit_thin_stroke_is_a_digit_but_a_dot_is_not() -> None:
    one = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(one).line([(140, 60), (140, 220)], fill=(255, 255, 255, 255), width=3)
    layout = preprocess_digit(one).display / 255.0
    # 3 px of 160 is 0.375 px of 20: a faint line, but its full 20-row length is there.
    rows = layout.sum(axis=1)
    assert rows.sum() / np.median(rows[rows > 0.1]) == pytest.approx(20, abs=0.5)
    assert layout.sum() == pytest.approx(20 * 3 / 8, rel=0.05)
    dot = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(dot).ellipse((137, 137, 142, 142), fill=(255, 255, 255, 255))
    with pytest.raises(NothingDrawn, match="Nothing drawn yet"):
        preprocess_digit(dot)


def test_preprocess_digit_reads_a_noisy_photo_of_paper(mnist: np.ndarray) -> None:
    digit = mnist[2]
    rng = np.random.default_rng(5)
    ink = place(digit, 600, 500, 700, canvas=1600) / 255.0  # a 1600² photo: shrunk first
    paper = 215 - 170 * ink + rng.normal(0, 6, ink.shape)
    rgb = np.stack([paper, paper, paper + 15], axis=2)  # a bluish cast
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    prepared = preprocess_digit(encode(photo, "JPEG", quality=90))
    assert corr(prepared.display, digit) > 0.9
    assert prepared.display[:3].max() < 20  # the paper's noise is gone


@pytest.mark.parametrize(
    "blank",
    [
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
        Image.new("RGBA", (280, 280), (255, 255, 255, 0)),
        Image.new("RGB", (280, 280), (0, 0, 0)),
        Image.new("RGB", (280, 280), (255, 255, 255)),
        Image.new("L", (280, 280), 128),
        Image.fromarray(np.random.default_rng(3).normal(220, 6, (280, 280)).astype(np.uint8)),
    ],
    ids=["transparent", "transparent_white", "black", "white", "gray", "blank_paper"],
)
def test_preprocess_digit_blank_canvas_is_nothing_drawn(blank: Image.Image) -> None:
    with pytest.raises(NothingDrawn, match="Nothing drawn yet"):
        preprocess_digit(encode(blank))


def test_preprocess_digit_normalises_like_mnist_training(mnist: np.ndarray) -> None:
    prepared = preprocess_digit(Image.fromarray(mnist[0]))
    assert isinstance(prepared, PreparedInput)
    assert prepared.shape == (1, 1, 28, 28)
    assert prepared.tensor.dtype == torch.float32
    assert prepared.display.dtype == np.uint8 and prepared.display.shape == (28, 28)
    assert prepared.tensor[0, 0, 0, 0].item() == BACKGROUND
    assert prepared.tensor.max().item() == pytest.approx((1 - MNIST_MEAN) / MNIST_STD, abs=1e-6)
    expected = (prepared.display / 255.0 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(prepared.tensor[0, 0].numpy(), expected, atol=1e-6)


def test_preprocess_digit_size_32_pads_the_28_layout(mnist: np.ndarray) -> None:
    small = preprocess_digit(Image.fromarray(mnist[1]))
    padded = preprocess_digit(Image.fromarray(mnist[1]), size=32)
    assert padded.shape == (1, 1, 32, 32)
    assert padded.display.shape == (32, 32)
    np.testing.assert_array_equal(padded.display[2:30, 2:30], small.display)
    np.testing.assert_array_equal(padded.tensor[0, 0, 2:30, 2:30], small.tensor[0, 0])
    frame = np.ones((32, 32), bool)
    frame[2:30, 2:30] = False
    assert np.all(padded.display[frame] == 0)
    assert torch.all(padded.tensor[0, 0][torch.from_numpy(frame)] == torch.tensor(BACKGROUND))


@pytest.mark.parametrize("size", [0, 27, 30, 64])
def test_preprocess_digit_refuses_other_sizes(size: int, mnist: np.ndarray) -> None:
    with pytest.raises(ValueError, match="28 or 32"):
        preprocess_digit(Image.fromarray(mnist[0]), size=size)


def test_preprocess_digit_sha256_is_a_key_by_meaning(mnist: np.ndarray) -> None:
    first = preprocess_digit(encode(Image.fromarray(mnist[0])))
    again = preprocess_digit(Image.fromarray(mnist[0]))
    other = preprocess_digit(Image.fromarray(mnist[1]))
    assert first.sha256 == again.sha256
    assert first.sha256 != other.sha256
    assert first.sha256 == hashlib.sha256(first.tensor.numpy().tobytes()).hexdigest()
    assert len(first.sha256) == 64


def test_prepared_input_is_frozen_and_its_display_read_only(mnist: np.ndarray) -> None:
    prepared = preprocess_digit(Image.fromarray(mnist[0]))
    with pytest.raises(AttributeError):
        prepared.sha256 = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        prepared.display[0, 0] = 1


# ---------------------------------------------------------------- preprocess_photo


@pytest.fixture(scope="module")
def resnet_transform() -> Any:
    """ResNet-18's ImageNet transform (needs no download)."""
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.DEFAULT.transforms()


def test_preprocess_photo_shape_and_display(resnet_transform: Any) -> None:
    mean, std = resnet_transform.mean, resnet_transform.std
    photo = noise_rgb((300, 260), seed=4)
    prepared = preprocess_photo(encode(photo), resnet_transform, mean, std)
    assert prepared.shape == (1, 3, 224, 224)
    assert prepared.tensor.dtype == torch.float32
    assert prepared.display.shape == (224, 224, 3) and prepared.display.dtype == np.uint8
    direct = resnet_transform(photo).numpy() * np.array(std)[:, None, None]
    direct += np.array(mean)[:, None, None]
    expected = np.round(np.clip(direct, 0, 1) * 255).transpose(1, 2, 0)
    assert np.abs(prepared.display.astype(int) - expected.astype(int)).max() <= 1
    assert prepared.sha256 == hashlib.sha256(prepared.tensor.numpy().tobytes()).hexdigest()


def test_preprocess_photo_display_shows_the_original_colours(resnet_transform: Any) -> None:
    orange = Image.new("RGB", (320, 240), (230, 120, 30))
    prepared = preprocess_photo(
        orange, resnet_transform, resnet_transform.mean, resnet_transform.std
    )
    assert np.abs(prepared.display.astype(int) - [230, 120, 30]).max() <= 1


def test_preprocess_photo_puts_transparency_on_white(resnet_transform: Any) -> None:
    clear = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    prepared = preprocess_photo(
        encode(clear), resnet_transform, resnet_transform.mean, resnet_transform.std
    )
    assert prepared.display.min() >= 254


def test_preprocess_photo_checks_the_transform_output() -> None:
    photo = encode(noise_rgb())
    with pytest.raises(TypeError, match="tensor"):
        preprocess_photo(photo, lambda img: np.zeros((3, 8, 8)), [0, 0, 0], [1, 1, 1])  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="3 values"):
        preprocess_photo(photo, lambda img: torch.zeros(3, 8, 8), [0.5], [0.5])


def test_preprocess_photo_single_channel_display_is_2d() -> None:
    def gray(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img.convert("L"), np.float32) / 255.0)[None]

    prepared = preprocess_photo(Image.new("RGB", (16, 16), (90, 90, 90)), gray, [0.0], [1.0])
    assert prepared.shape == (1, 1, 16, 16)
    assert prepared.display.shape == (16, 16)
    assert np.all(prepared.display == 90)
