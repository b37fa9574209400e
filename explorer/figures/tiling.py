"""Lay many small maps out as one image.

One tiled array per layer (with NaN gutters between channels) draws in a single call,
which is what keeps a 512-channel layer fast to show in any plotting library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tiling:
    """Where each channel sits in a tiled image.

    Attributes:
        image: 2-D float array, channels laid out row by row, NaN in the gutters.
        rows: Number of tile rows.
        cols: Number of tile columns.
        tile: ``(height, width)`` of one channel.
        gap: Gutter width in pixels.
    """

    image: np.ndarray
    rows: int
    cols: int
    tile: tuple[int, int]
    gap: int

    def origin(self, channel: int) -> tuple[int, int]:
        """Top-left ``(row, col)`` pixel of ``channel`` in :attr:`image`."""
        r, c = divmod(channel, self.cols)
        return r * (self.tile[0] + self.gap), c * (self.tile[1] + self.gap)

    def locate(self, y: int, x: int) -> tuple[int, int, int] | None:
        """The ``(channel, row, col)`` under pixel ``(y, x)`` of the tiled image, or None."""
        th, tw = self.tile
        r, dy = divmod(int(y), th + self.gap)
        c, dx = divmod(int(x), tw + self.gap)
        channel = r * self.cols + c
        if dy >= th or dx >= tw or not (0 <= r < self.rows and 0 <= c < self.cols):
            return None
        if np.isnan(self.image[int(y), int(x)]):
            return None
        return channel, dy, dx


def grid_shape(count: int, aspect: float = 1.0) -> tuple[int, int]:
    """Rows and columns for ``count`` tiles, close to square (``cols/rows`` ≈ ``aspect``)."""
    if count <= 0:
        raise ValueError("need at least one tile")
    cols = max(1, min(count, math.ceil(math.sqrt(count * aspect))))
    return math.ceil(count / cols), cols


def tile_channels(maps: np.ndarray, cols: int | None = None, gap: int = 1) -> Tiling:
    """Tile ``maps`` shaped ``(C, H, W)`` into one 2-D image with NaN gutters."""
    if maps.ndim != 3:
        raise ValueError(f"expected (channels, height, width), got shape {maps.shape}")
    count, h, w = maps.shape
    if cols is None:
        rows, cols = grid_shape(count)
    else:
        cols = max(1, min(cols, count))
        rows = math.ceil(count / cols)
    image = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for channel in range(count):
        r, c = divmod(channel, cols)
        y, x = r * (h + gap), c * (w + gap)
        image[y : y + h, x : x + w] = maps[channel]
    return Tiling(image=image, rows=rows, cols=cols, tile=(h, w), gap=gap)
