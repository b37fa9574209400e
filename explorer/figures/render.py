"""Static PNG pictures of a capture (matplotlib), for the CLI: channel grids, filters, softmax.

Uses ``matplotlib.figure.Figure`` directly (no pyplot state), so it is safe in threads. The
colours are the app's (:mod:`explorer.figures.colour`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from explorer.analysis.capture import LayerOutput
from explorer.figures.colour import (
    DIVERGING_CMAP,
    SEQUENTIAL_CMAP,
    ColourScale,
    colour_scale,
    layer_can_be_negative,
)
from explorer.figures.tiling import tile_channels


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    fig.savefig(path, dpi=100, bbox_inches="tight")


def _scaled_image(
    fig: Figure, ax: Any, values: np.ndarray, scale: ColourScale, label: str, **style: Any
) -> None:
    """``values`` drawn on the app's colours for ``scale``, with a labelled colour bar."""
    shown = ax.imshow(
        values,
        cmap=DIVERGING_CMAP if scale.diverging else SEQUENTIAL_CMAP,
        vmin=scale.vmin,
        vmax=scale.vmax,
        **style,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, shrink=0.8).set_label(label)


def render_layer_png(
    layer: LayerOutput, path: str | os.PathLike[str], max_channels: int = 256
) -> ColourScale:
    """Save a layer as a tiled channel grid (maps) or a strip of units (vectors).

    Colour: diverging around 0 where values can be negative, sequential otherwise (the app's
    rule), with a labelled colour bar.

    Returns:
        The colour scale used.
    """
    values = layer.numpy()
    title = f"{layer.name} · {layer.kind} ({layer.op}) · shape {' × '.join(map(str, layer.shape))}"
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot()
    if values.ndim == 3:
        shown = values[:max_channels]
        tiling = tile_channels(shown)
        if len(values) > max_channels:
            title += f" (first {max_channels} of {len(values)} channels)"
        image = tiling.image
        ax.set_xlabel(
            f"{tiling.cols} × {tiling.rows} channels, each {values.shape[1]}×{values.shape[2]}"
        )
    else:
        flat = values.reshape(-1)
        cols = min(len(flat), 64)
        rows = int(np.ceil(len(flat) / cols))
        image = np.full(rows * cols, np.nan, dtype=np.float32)
        image[: len(flat)] = flat
        image = image.reshape(rows, cols)
        ax.set_xlabel(f"{len(flat)} units, {cols} per row")
    # The app's rule (figures.layer_can_be_negative): the same layer, the same scale.
    scale = colour_scale(image, layer_can_be_negative(layer.kind, values))
    _scaled_image(fig, ax, image, scale, f"activation ({scale.label})", interpolation="nearest")
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    return scale


def render_filters_png(
    name: str,
    weight: torch.Tensor,
    path: str | os.PathLike[str],
    max_filters: int = 64,
    max_inputs: int = 16,
) -> None:
    """Save a conv layer's kernels as a PNG.

    RGB when the input has 3 channels, else one tile per (filter, input channel) pair on a
    diverging scale around 0.
    """
    w = weight.detach().to("cpu", torch.float32).numpy()
    out_ch, in_ch, kh, kw = w.shape
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot()
    title = f"{name} · filters {out_ch}×{in_ch}×{kh}×{kw}"
    if in_ch == 3:
        shown = w[:max_filters]
        lo, hi = shown.min(), shown.max()
        norm = (shown - lo) / (hi - lo if hi > lo else 1.0)
        channels = [tile_channels(norm[:, c]).image for c in range(3)]
        rgb = np.nan_to_num(np.stack(channels, axis=-1), nan=1.0)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_xlabel(f"RGB kernels, min {lo:.3g} → black, max {hi:.3g} → white")
    else:
        shown = w[:max_filters, :max_inputs]
        tiles = shown.reshape(-1, kh, kw)
        tiling = tile_channels(tiles, cols=shown.shape[1])
        scale = colour_scale(tiling.image, True)
        image = ax.imshow(
            tiling.image,
            cmap=DIVERGING_CMAP,
            vmin=scale.vmin,
            vmax=scale.vmax,
            interpolation="nearest",
        )
        ax.set_xlabel(f"columns: input channels (first {shown.shape[1]}) · rows: filters")
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        bar.set_label(f"weight ({scale.label})")
    if out_ch > max_filters:
        title += f" (first {max_filters})"
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def render_softmax_png(
    labels: Sequence[str], probs: Sequence[float], path: str | os.PathLike[str], title: str
) -> None:
    """Save horizontal softmax bars, best on top, the winner highlighted."""
    fig = Figure(figsize=(7, 0.45 * len(labels) + 1.2))
    ax = fig.add_subplot()
    order = list(range(len(labels)))[::-1]
    colours = ["#d62728" if i == 0 else "#7f7f7f" for i in order]
    ax.barh([labels[i] for i in order], [probs[i] for i in order], color=colours)
    for y, i in enumerate(order):
        ax.text(probs[i], y, f" {probs[i]:.1%}", va="center", fontsize=9)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("softmax probability")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def render_attribution_png(
    display: np.ndarray,
    values: np.ndarray,
    path: str | os.PathLike[str],
    title: str,
    opacity: float = 0.6,
) -> ColourScale:
    """Save an attribution map over its input picture, with a labelled colour bar.

    Args:
        display: The input as a person sees it, ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
        values: The map, ``(H, W)`` (resized to the picture by the caller if they differ).
        path: Where the PNG goes.
        title: The figure's title.
        opacity: How opaque the map is over the picture.

    Returns:
        The colour scale used (diverging where the map has negative values).
    """
    scale = colour_scale(values)
    fig = Figure(figsize=(6, 5.5))
    ax = fig.add_subplot()
    ax.imshow(display, cmap="gray" if display.ndim == 2 else None, interpolation="nearest")
    label = f"attribution ({scale.label})"
    _scaled_image(fig, ax, values, scale, label, interpolation="bilinear", alpha=opacity)
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    return scale
