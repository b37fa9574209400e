"""Turn uploads and canvas drawings into the tensors a model gets, and pictures of them.

Two paths: `preprocess_digit` follows the MNIST recipe (ink map, 20-px box, centre of mass at
the centre of a 28×28 field) for the digit nets; `preprocess_photo` runs a torchvision weights
transform for the ImageNet nets. Both start from `load_image`, which refuses what should not be
decoded (decompression bombs, JPEGs of thousands of scans, slivers, non-images) with a message
fit to show a user, and turns running out of memory or recursion while decoding into one too.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.inputs.spec import DIGIT_SIDES, MNIST_SIDE, InputSpec, digit_spec, rgb_luma

MAX_PIXELS: int = 50_000_000
MAX_PHOTO_UPLOAD_MB: int = 50
"""The pages' photo uploaders: a 50-megapixel JPEG is 10–30 MB. State dicts may use the
server's whole ``maxUploadSize`` (.streamlit/config.toml)."""
MIN_SIDE: int = 8
MAX_ASPECT: float = 50.0
MAX_JPEG_SCANS: int = 100
"""A progressive JPEG has ~10 scans (a baseline one 1–3), and libjpeg passes over every
coefficient of the image for each: 20,000 empty scans in a 392 kB file took 58 s to decode.
Counted in the bytes (:func:`jpeg_scan_count`) before decoding; 100 scans of a 49-megapixel
image decode in under a second."""

_BORDER_FRACTION = 0.05  # the outer frame that tells paper from ink
_MIN_CONTRAST = 0.2  # never stretch a fainter signal than this up to full ink
_BBOX_THRESHOLD = 0.1  # of the peak: what counts as ink when finding the digit's box
_INK_LEVEL = 0.5  # an "ink pixel" for the nothing-drawn check
_MIN_PEAK = 0.2
_MIN_INK_FRACTION = 0.0005
_MIN_INK_PIXELS = 10
_WORK_SIDE = 1024  # digit photos are shrunk to this longer side before finding the ink
_EXIF_ORIENTATION = 0x0112
_CHUNK_PIXELS = 1 << 20  # a 16/32-bit image is scaled to 8 bits this many pixels at a time
# A JPEG marker: 0xFF (and fill bytes), then a code that is not 0 (a stuffed 0xFF in the
# entropy-coded data), RST0–7 (no length, inside entropy-coded data) or 0xFF. Spelt with a
# literal first byte, which re searches for fast (over 1 GB/s; "\xff+" is 40 times slower).
_JPEG_MARKER = re.compile(rb"\xff\xff*([^\x00\xd0-\xd7\xff])")
# Segments libjpeg reads or skips by their length field: SOFn, DHT, DAC, DQT, DNL, DRI, APPn,
# COM, and SOS's header. It stops at an unknown marker, so the count reads past those.
_JPEG_SEGMENTS = frozenset([*range(0xC0, 0xD0), *range(0xDA, 0xF0), 0xFE])

ImageSource = bytes | str | os.PathLike[str] | BinaryIO | Image.Image


class ImageError(ValueError):
    """A bad image, with a one-line message fit to show a user."""


class NothingDrawn(ImageError):
    """The canvas/image holds no digit (empty or near-empty)."""


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """What a model gets and what a person should see of it.

    Attributes:
        tensor: float32 batch of one, normalised, shaped (1, C, H, W).
        display: uint8 picture of the same input before normalisation, (H, W) or (H, W, 3).
        sha256: hex digest of the tensor's bytes, a cache key by meaning.
    """

    tensor: torch.Tensor
    display: np.ndarray
    sha256: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape, (1, C, H, W)."""
        return tuple(self.tensor.shape)


def load_image(source: ImageSource) -> Image.Image:
    """Open and fully decode an image, refusing bombs, slivers and non-images.

    Args:
        source: Encoded bytes, a path, a binary file object or a Pillow image.

    Returns:
        The first frame, EXIF orientation applied, in mode "RGBA" when it has any
        transparency, else "RGB" for colour or "L" for grayscale.

    Raises:
        ImageError: The input is empty, not an image, corrupt, too big, too small or too
            elongated, a JPEG of more than :data:`MAX_JPEG_SCANS` scans, or more than this
            process's memory can decode.
    """
    if isinstance(source, Image.Image):
        return _decode(source)
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ImageError("the file is empty")
        return _open_and_decode(io.BytesIO(source))
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fp:
            if os.fstat(fp.fileno()).st_size == 0:
                raise ImageError("the file is empty")
            return _open_and_decode(fp)
    if hasattr(source, "read"):
        return _open_and_decode(source)
    raise TypeError(f"cannot read an image from {type(source).__name__}")


@contextmanager
def _pillow_refusals() -> Iterator[None]:
    """Turn Pillow's complaints about a file into `ImageError`s with a user-facing message."""
    with warnings.catch_warnings():
        # Pillow only warns between its two bomb limits; refuse there too. Scoped, so the
        # process-wide Image.MAX_IMAGE_PIXELS and warning filters stay as they are.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except UnidentifiedImageError as exc:
            raise ImageError(
                "not an image Pillow can read (PNG, JPEG, WebP, BMP, GIF, TIFF …)"
            ) from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageError(_too_big(f"{int(found.group(1)):,}" if found else "too many")) from exc
        except (MemoryError, RecursionError, OverflowError) as exc:
            raise ImageError(
                "the image is too large or too intricate to decode here; "
                "please scale it down or save it again as PNG or JPEG"
            ) from exc
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ImageError("the image file is truncated or corrupt") from exc


def _too_big(pixels: str) -> str:
    return (
        f"the image is {pixels} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels, "
        "please scale it down"
    )


def _open_and_decode(fp: BinaryIO) -> Image.Image:
    with _pillow_refusals():
        img = Image.open(fp)  # lazy: reads the header only
    return _decode(img)


def _decode(img: Image.Image) -> Image.Image:
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(_too_big(f"{width}×{height}"))
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"the image is {width}×{height} pixels; each side needs at least {MIN_SIDE}"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError(
            f"the image is {width}×{height} pixels, more elongated than "
            f"{MAX_ASPECT:g}:1; crop it closer to a square"
        )
    with _pillow_refusals():
        if img.tell() != 0:  # an animation: its first frame
            img.seek(0)
        _refuse_many_scans(img)
        img.load()
        return _normalise_mode(_upright(img))


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says: itself (no copy) when it says nothing."""
    try:
        if img.getexif().get(_EXIF_ORIENTATION, 1) == 1:
            return img  # the mode conversion copies it anyway: no need for a copy here
        return ImageOps.exif_transpose(img)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return img


def _refuse_many_scans(img: Image.Image) -> None:
    """Refuse a JPEG still to decode with more than :data:`MAX_JPEG_SCANS` scans."""
    fp = getattr(img, "fp", None)
    if img.format not in ("JPEG", "MPO") or not getattr(img, "tile", None) or fp is None:
        return  # not a JPEG, or already decoded
    where = fp.tell()
    fp.seek(0)
    data = fp.read()
    fp.seek(where)
    scans = jpeg_scan_count(data)
    if scans > MAX_JPEG_SCANS:
        raise ImageError(
            f"the JPEG has more than {MAX_JPEG_SCANS} scans (a progressive JPEG has about 10); "
            "please save it again"
        )


def jpeg_scan_count(data: bytes, stop_after: int = MAX_JPEG_SCANS) -> int:
    """How many scans (SOS markers) a JPEG's first image has, counting up to ``stop_after + 1``.

    Reads the markers as libjpeg does: a segment's payload is skipped by its length field,
    the entropy-coded data after a scan's header up to the next marker, and the image ends
    at EOI. Where libjpeg would stop (an unknown marker) or resynchronise, the count reads
    on, so it is never below the number of scans a decoder sees.
    """
    scans = 0
    position = 0
    while scans <= stop_after:
        found = _JPEG_MARKER.search(data, position)
        if found is None:
            break
        code = found.group(1)[0]
        position = found.end()
        if code == 0xD9:  # EOI: an MPO's further images, or anything appended, follow
            break
        scans += code == 0xDA
        if code in _JPEG_SEGMENTS:
            position += max(2, int.from_bytes(data[position : position + 2], "big"))
    return scans


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Return a copy in "L", "RGB" or "RGBA"; see `load_image`."""
    mode = img.mode
    transparent = "transparency" in img.info
    if mode.startswith(("I", "F")):
        return _high_depth_to_8bit(img)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or transparent:
        target = "RGBA"
    elif mode in ("L", "1"):
        target = "L"
    else:  # RGB, P, CMYK, YCbCr, HSV, …
        target = "RGB"
    try:
        if mode == "La":
            img = img.convert("LA")  # Pillow has no direct La → RGBA
        return img.convert(target)
    except ValueError as exc:
        raise ImageError(f"images in colour mode {mode} are not supported") from exc


def _high_depth_to_8bit(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer or float grayscale image to "L" (or "RGBA" with tRNS).

    "I;16*" use the full 16-bit scale (65535 → 255). "I" and "F" have no fixed range: the
    smallest of 1 (floats only), 255 and 65535 that holds the data is taken as full scale,
    and data outside all of them (negative, or larger) is stretched from its min to its max.
    A band of rows at a time (:data:`_CHUNK_PIXELS`): a 49-megapixel float image needs
    ~50 MB beside its own pixels, not 2 GB of float64 copies of the whole.
    """
    width, height = img.size
    rows = max(1, _CHUNK_PIXELS // max(width, 1))
    bands = [(top, min(height, top + rows)) for top in range(0, height, rows)]
    offset, scale = _gray_range(img.mode, *_extrema(img, bands))
    trns = img.info.get("transparency")
    luma = np.empty((height, width), np.uint8)
    alpha = np.empty((height, width), np.uint8) if isinstance(trns, int | float) else None
    for top, bottom in bands:
        raw = np.asarray(img.crop((0, top, width, bottom)))
        values = raw.astype(np.float64)
        gray = (values - offset) / scale if scale else np.zeros_like(values)
        luma[top:bottom] = np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)
        if alpha is not None:
            alpha[top:bottom] = np.where(raw == trns, 0, 255).astype(np.uint8)
    gray_image = Image.fromarray(luma)
    if alpha is not None:
        return Image.merge("RGBA", (gray_image, gray_image, gray_image, Image.fromarray(alpha)))
    return gray_image


def _extrema(img: Image.Image, bands: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """The smallest and largest value of a one-band image, read band by band (NaN if any)."""
    lows, highs = [], []
    for top, bottom in bands:
        band = np.asarray(img.crop((0, top, img.width, bottom)))
        lows.append(band.min())
        highs.append(band.max())
    return (float(np.min(lows)), float(np.max(highs))) if lows else (0.0, 0.0)


def _gray_range(mode: str, low: float, high: float) -> tuple[float, float]:
    """``(offset, scale)`` so that ``(value - offset) / scale`` is gray in 0–1 (scale 0: black)."""
    if mode.startswith("I;16"):
        return 0.0, 65535.0
    scales = ([1.0] if mode == "F" else []) + [255.0, 65535.0]
    full = next((s for s in scales if low >= 0 and high <= s), None)
    if full is not None:
        return 0.0, full
    if high > low:
        return low, high - low
    return 0.0, 0.0  # one value throughout, or NaN


def to_rgb(img: Image.Image) -> Image.Image:
    """Composite any transparency on white and return an "RGB" image."""
    if img.mode not in ("L", "RGB", "RGBA"):
        img = _normalise_mode(img)
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


def digit_ink(img: Image.Image) -> np.ndarray:
    """Map a drawing, photo or scan of a digit to ink: 1 = ink, 0 = background.

    Light ink on a transparent canvas gives alpha × luminance. Anything else is composited on
    white and read as luminance, inverted when the outer frame is light (paper); then the
    background level (border median plus three robust noise deviations) is subtracted and the
    contrast stretched so the strongest ink is 1.

    Args:
        img: A Pillow image in any mode `load_image` returns.

    Returns:
        float32 array (H, W) in [0, 1].
    """
    if img.mode not in ("L", "RGB", "RGBA"):
        img = _normalise_mode(img)
    if img.mode == "RGBA":
        rgba = np.asarray(img, dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        if np.median(_border(alpha)) < 0.5:  # a transparent canvas
            solid = alpha > 128 / 255
            if not solid.any():
                return np.zeros(alpha.shape, dtype=np.float32)
            gray = rgb_luma(rgba[..., :3], np.float32)
            if gray[solid].mean() >= 0.5:  # light ink: the alpha carries the stroke
                return _remove_background(alpha * gray)
        img = to_rgb(img)
    gray = _luminance(img)
    if np.median(_border(gray)) > 0.5:  # light paper, dark ink
        gray = 1.0 - gray
    return _remove_background(gray)


def _luminance(img: Image.Image) -> np.ndarray:
    pixels = np.asarray(img, dtype=np.float32) / 255.0
    return rgb_luma(pixels, np.float32) if pixels.ndim == 3 else pixels


def _border(values: np.ndarray) -> np.ndarray:
    """The outer ~5% frame of a 2-D array, flattened."""
    height, width = values.shape
    width_px = max(1, round(_BORDER_FRACTION * min(height, width)))
    mask = np.ones(values.shape, dtype=bool)
    mask[width_px:-width_px, width_px:-width_px] = False
    return values[mask]


def _remove_background(ink: np.ndarray) -> np.ndarray:
    border = _border(ink)
    median = float(np.median(border))
    spread = 1.4826 * float(np.median(np.abs(border - median)))  # robust std of the paper
    background = median + 3.0 * spread
    peak = float(ink.max())
    stretched = (ink - background) / max(peak - background, _MIN_CONTRAST)
    return np.clip(stretched, 0.0, 1.0).astype(np.float32)


def mnist_layout(ink: np.ndarray, box: int = 20, size: int = 28) -> np.ndarray:
    """Lay an ink map out the MNIST way.

    Crops to the ink's bounding box and resamples it (Lanczos, antialiased) so its longer side
    spans `box` pixels, aspect kept, in a `size`×`size` field with the ink's centre of mass on
    pixel index size/2, where it sits in MNIST. Placement is sub-pixel, so the same digit
    drawn anywhere, at any size, gives nearly the same layout; the digit is kept inside.

    Args:
        ink: 2-D ink map, 1 = ink.
        box: Longer side of the scaled digit.
        size: Side of the square output.

    Returns:
        float32 array (size, size) in [0, 1]; all zeros when there is no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"ink must be 2-D, got shape {ink.shape}")
    if not 0 < box <= size:
        raise ValueError(f"box must be in 1..{size}, got {box}")
    field = np.zeros((size, size), dtype=np.float32)
    peak = float(ink.max()) if ink.size else 0.0
    if peak <= 0.0:
        return field
    strong = ink > _BBOX_THRESHOLD * peak
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    crop = np.clip(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 0.0, None)
    scale = box / max(crop.shape)
    # Continuous coordinates: pixel i spans [i, i + 1), so its centre is i + 0.5. A point u of
    # the crop lands on u * scale + offset in the field.
    mass = float(crop.sum())
    ys, xs = np.indices(crop.shape)
    offsets = []
    for coords, extent in ((ys, crop.shape[0]), (xs, crop.shape[1])):
        centre = float((coords * crop).sum()) / mass + 0.5
        offset = size / 2 + 0.5 - centre * scale
        offsets.append(min(max(offset, 0.0), size - extent * scale))
    top, left = offsets
    # Resample only the field window the ink covers plus the filter's reach, from the crop
    # padded with enough zeros that the window's source box stays inside it.
    reach = 3
    pad = math.ceil((reach + 1) / scale) + 1
    y0 = max(0, math.floor(top) - reach)
    y1 = min(size, math.ceil(top + crop.shape[0] * scale) + reach)
    x0 = max(0, math.floor(left) - reach)
    x1 = min(size, math.ceil(left + crop.shape[1] * scale) + reach)
    source_box = (
        (x0 - left) / scale + pad,
        (y0 - top) / scale + pad,
        (x1 - left) / scale + pad,
        (y1 - top) / scale + pad,
    )
    window = Image.fromarray(np.pad(crop, pad)).resize(
        (x1 - x0, y1 - y0), Image.Resampling.LANCZOS, box=source_box
    )
    field[y0:y1, x0:x1] = np.clip(np.asarray(window, dtype=np.float32), 0.0, 1.0)
    return field


def preprocess_digit(source: ImageSource, size: int = 28) -> PreparedInput:
    """Prepare a drawn, photographed or scanned digit for an MNIST net.

    Args:
        source: Anything `load_image` reads.
        size: 28, or 32 for LeNet's original input (the 28×28 layout padded by 2 px).

    Returns:
        The normalised (1, 1, size, size) tensor and its uint8 picture.

    Raises:
        ValueError: `size` is neither 28 nor 32.
        NothingDrawn: The image holds no digit, or too little ink to be one.
        ImageError: The image cannot be read (see `load_image`).
    """
    if size not in DIGIT_SIDES:
        raise ValueError(f"digit inputs are 28 or 32 pixels square, not {size}")
    spec = digit_spec(size)
    img = load_image(source)
    if max(img.size) > _WORK_SIDE:  # the digit ends up 20 px tall: no need for megapixels
        img.thumbnail((_WORK_SIDE, _WORK_SIDE), Image.Resampling.LANCZOS)
    ink = digit_ink(img)
    enough = max(_MIN_INK_PIXELS, _MIN_INK_FRACTION * ink.size)
    if ink.max() < _MIN_PEAK or np.count_nonzero(ink > _INK_LEVEL) < enough:
        raise NothingDrawn("Nothing drawn yet: draw a digit, or upload a picture of one.")
    layout = spec.digit_field(mnist_layout(ink, box=20, size=MNIST_SIDE))
    display = np.round(layout * 255.0).astype(np.uint8)
    # Normalise the uint8 picture, as torchvision's ToTensor + Normalize did in training,
    # so the tensor is exactly what the display shows (float64, then rounded once).
    return _prepared(spec.from_picture(display, torch.float64), display)


def preprocess_photo(
    source: ImageSource,
    transform: Callable[[Image.Image], torch.Tensor],
    mean: Sequence[float],
    std: Sequence[float],
) -> PreparedInput:
    """Prepare a photo for an ImageNet net with its weights' transform.

    Args:
        source: Anything `load_image` reads; transparency is composited on white.
        transform: Maps an RGB image to a normalised (C, H, W) tensor, e.g.
            `ResNet18_Weights.DEFAULT.transforms()`.
        mean: Per-channel mean the transform subtracted.
        std: Per-channel std the transform divided by.

    Returns:
        The (1, C, H, W) tensor and its de-normalised uint8 picture (H, W, C) or (H, W)
        (:meth:`InputSpec.to_picture`).
    """
    tensor = transform(to_rgb(load_image(source)))
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"transform must return a tensor, got {type(tensor).__name__}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[0] != 1:
        raise ValueError(f"transform must return (C, H, W), got {tuple(tensor.shape)}")
    tensor = tensor.detach().to(torch.float32).contiguous()
    channels, height, width = tensor.shape[1:]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} values each")
    spec = InputSpec(channels, height, width, tuple(mean), tuple(std))
    return _prepared(tensor, spec.to_picture(tensor))


def preprocess_input(
    source: ImageSource,
    spec: InputSpec,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
) -> PreparedInput:
    """Prepare an image for a model whose input ``spec`` says.

    Args:
        source: Anything `load_image` reads.
        spec: The model's input: a digit layout, or a picture fitted and normalised.
        transform: For a picture: a transform of its weights that fits and normalises it
            (torchvision's); ``None``: :meth:`InputSpec.fit`, then the spec's normalisation.

    Raises:
        NothingDrawn: A digit input, and the image holds no digit.
        ImageError: The image cannot be read (see `load_image`).
    """
    if spec.digit:
        return preprocess_digit(source, size=spec.height)
    mean, std = spec.normalisation
    return preprocess_photo(source, transform or _fitted(spec), mean, std)


def _fitted(spec: InputSpec) -> Callable[[Image.Image], torch.Tensor]:
    """``spec``'s own transform: fit the picture, then normalise it as float32."""

    def transform(image: Image.Image) -> torch.Tensor:
        return spec.from_picture(spec.fit(image))[0]

    return transform


def _prepared(tensor: torch.Tensor, display: np.ndarray) -> PreparedInput:
    tensor = tensor.contiguous()
    digest = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()
    display.flags.writeable = False  # shared through caches: nobody should paint on it
    return PreparedInput(tensor=tensor, display=display, sha256=digest)
