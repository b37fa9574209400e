"""The one colour rule of every picture: which scale a layer gets, and its colours.

Diverging ``RdBu_r`` centred on 0 where values can be negative, sequential ``viridis`` where
they cannot (:func:`layer_can_be_negative`), over the range :func:`colour_scale` picks. The
plotly heatmaps, the indexed PNGs of the layer browser (:func:`palette`) and the CLI's
matplotlib PNGs all draw from here, so a layer has the same colours everywhere.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image
from plotly.colors import get_colorscale

DIVERGING_COLOURSCALE = "RdBu_r"
SEQUENTIAL_COLOURSCALE = "Viridis"

_ALWAYS_NON_NEGATIVE = {"relu", "softmax"}
_NON_NEGATIVE_IF_DATA_IS = {"pool", "flatten", "dropout", "concat", "activation"}


def layer_can_be_negative(kind: str, values: np.ndarray) -> bool:
    """Whether a layer of ``kind`` is drawn on a diverging scale.

    ReLU and softmax never are; pooling, flatten, dropout, concat and other activations
    follow their input, so they are diverging only when the data has a negative value;
    everything else (conv, norm, linear, add, mul, other) can be negative.
    """
    if kind in _ALWAYS_NON_NEGATIVE:
        return False
    if kind in _NON_NEGATIVE_IF_DATA_IS:
        finite = values[np.isfinite(values)]
        return bool(finite.size and finite.min() < 0)
    return True


@functools.cache
def colourscale(name: str) -> tuple[tuple[float, str], ...]:
    """A named plotly.py colour scale as explicit stops.

    plotly.js knows neither ``RdBu_r`` nor ``gray``, and unvalidated figures are sent as
    they are.
    """
    return tuple((float(stop), str(colour)) for stop, colour in get_colorscale(name))


_LUT_SIZE = 255


def _lut(name: str) -> np.ndarray:
    """255 RGB colours sampled from the plotly colour scale that heatmaps use.

    An odd count puts one entry exactly at the middle, so 0 on a diverging scale is its
    white, not a neighbour.
    """
    stops = colourscale(name)
    positions = np.array([float(s[0]) for s in stops])
    rgb = np.array([_parse_colour(str(s[1])) for s in stops], dtype=np.float64)
    x = np.linspace(0.0, 1.0, _LUT_SIZE)
    return np.stack([np.interp(x, positions, rgb[:, i]) for i in range(3)], axis=1).round()


def _parse_colour(text: str) -> tuple[int, int, int]:
    if text.startswith("#"):
        return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
    r, g, b = (int(float(v)) for v in text[text.index("(") + 1 : text.index(")")].split(",")[:3])
    return r, g, b


_PALETTES: dict[bool, np.ndarray] = {}
NAN_INDEX = _LUT_SIZE
"""Palette index of gutters and missing values (white)."""


def palette(diverging: bool) -> np.ndarray:
    """The 256-entry ``uint8`` RGB palette of a scale: 255 colours, then white for NaN."""
    found = _PALETTES.get(diverging)
    if found is None:
        name = DIVERGING_COLOURSCALE if diverging else SEQUENTIAL_COLOURSCALE
        colours = np.vstack([_lut(name), [255.0, 255.0, 255.0]]).astype(np.uint8)
        found = _PALETTES.setdefault(diverging, colours)
    return found


def colour_indices(values: np.ndarray, scale: ColourScale) -> np.ndarray:
    """Palette indices (``uint8``) of a 2-D array: ``vmin…vmax`` → 0…254, NaN → 255."""
    top = _LUT_SIZE - 1
    step = top / (scale.vmax - scale.vmin or 1.0)
    # One float32 buffer, worked in place: a 64×112×112 layer is 0.8 M values a redraw
    position = np.subtract(values, scale.vmin, dtype=np.float32)
    position *= np.float32(step)
    position += np.float32(0.5)
    unknown = ~np.isfinite(position)
    np.clip(position, 0, top, out=position)
    position[unknown] = NAN_INDEX
    indices: np.ndarray = position.astype(np.uint8)
    return indices


def colourise(values: np.ndarray, scale: ColourScale) -> np.ndarray:
    """Map a 2-D array to ``uint8`` RGB with a heatmap's colour scale (NaN → white).

    Args:
        values: 2-D float array.
        scale: Diverging (``RdBu_r`` over ``vmin…vmax``, 0 in the middle) or sequential
            (``Viridis``).
    """
    rgb: np.ndarray = palette(scale.diverging)[colour_indices(values, scale)]
    return rgb


def png_data_uri(pixels: np.ndarray, colours: np.ndarray | None = None) -> str:
    """An image as a ``data:image/png`` URI.

    Args:
        pixels: ``(H, W, 3)`` or ``(H, W)`` ``uint8``; with ``colours``, palette indices.
        colours: A ``(256, 3)`` ``uint8`` palette: the PNG is then an indexed one, which
            encodes ~10× faster and smaller than RGB.
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if colours is None:
        image = Image.fromarray(pixels)
    else:
        image = Image.frombytes("P", (pixels.shape[1], pixels.shape[0]), pixels.tobytes())
        image.putpalette(np.asarray(colours, dtype=np.uint8).tobytes())
    buffer = io.BytesIO()
    # zlib's run-length strategy: as small as the default on activation maps, ~2× faster
    image.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ColourScale:
    """How values map to colours: diverging around 0, or sequential from the minimum."""

    diverging: bool
    vmin: float
    vmax: float

    @property
    def label(self) -> str:
        """E.g. ``"diverging, −2.31 … 0 … 2.31"``."""
        if self.diverging:
            return f"diverging, {self.vmin:.3g} … 0 … {self.vmax:.3g}"
        return f"sequential, {self.vmin:.3g} … {self.vmax:.3g}"


def colour_scale(values: np.ndarray, can_be_negative: bool | None = None) -> ColourScale:
    """Diverging and symmetric around 0 where values can be negative, else sequential.

    Args:
        values: The numbers to show (NaNs ignored).
        can_be_negative: What the layer can produce (conv outputs: True; ReLU/pool: False).
            ``None`` decides from the data.
    """
    lo, hi = _finite_range(values)
    negative = lo < 0 if can_be_negative is None else can_be_negative
    if negative:
        bound = max(abs(lo), abs(hi)) or 1.0
        return ColourScale(True, -bound, bound)
    if hi == lo:
        hi = lo + 1.0
    return ColourScale(False, lo, hi)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite value (0, 0 for none), without a copy when all are."""
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = float(values.min()), float(values.max())
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi  # NaN propagates through min/max, so both finite means every value is
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


DIVERGING_CMAP = "RdBu_r"
SEQUENTIAL_CMAP = "viridis"
