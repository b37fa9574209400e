"""What the Image page's layer browser shows, as data: the page lays it out, the benchmark times it.

The browser runs in three steps, each a pure function, because the page's widgets sit between
them (the page number's range depends on the layer, the channel on the grid's page):

1. :func:`layer_page`: the chosen layer's statistics, and either its channel paging (a map
   layer) or its strip figure (a flat layer);
2. :func:`channel_page`: one page of a map layer's channels in the chosen order and scale;
3. :func:`channel_view`: one channel large over the input, and a clicked unit's receptive field.

Nothing here imports Streamlit; ``pages/image.py`` and
:func:`explorer.bench.library.image_layer_switch_work` both call these functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from torch import nn

from explorer.analysis.capture import CaptureResult, LayerOutput
from explorer.analysis.explain import UnknownField, receptive_field
from explorer.analysis.geometry import Box
from explorer.figures.channels import (
    ChannelGrid,
    channel_figure,
    channel_grid_figure,
    channel_order,
    layer_label,
    page_size,
)
from explorer.figures.charts import vector_figure
from explorer.figures.describe import describe_map, describe_maps
from explorer.figures.selection import channel_from_selection, unit_from_channel_selection

SORT_LABELS = {"index": "number", "mean": "mean ↓", "max": "max ↓"}
"""Channel orders (:data:`explorer.figures.channels.SORTS`) and how the page names them."""
SCALE_LABELS = {"layer": "one per layer", "map": "one per map"}
"""Colour scales of the channel grid and how the page names them."""
DEFAULT_SORT = "index"
DEFAULT_SCALE = "layer"
DEFAULT_OPACITY = 0.65
"""Opacity of a channel over the input until the user moves the slider."""
ZEROS_HELP = "Fraction of values exactly 0: after a ReLU, the units that did not fire."
UNIT_HINT = "Click a unit of the large map to outline its receptive field."


def layer_choices(result: CaptureResult) -> dict[str, str]:
    """Every captured layer's name and its label in the layer menu, in execution order."""
    return {name: layer_label(result, name) for name in result.names}


def layers_summary(result: CaptureResult) -> str:
    """How many layers of each kind, kinds in order of first appearance.

    Example: ``"5 layers in execution order: 2 conv, 2 relu, 1 linear."``.
    """
    kinds = Counter(layer.kind for layer in result.layers)
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return f"{len(result.layers)} layers in execution order: {summary}."


@dataclass(frozen=True)
class MetricText:
    """One statistic as the page shows it: a label, its formatted value, an optional help."""

    label: str
    value: str
    help: str | None = None


@dataclass(frozen=True)
class LayerStats:
    """A layer's shape and value statistics.

    Attributes:
        shape: Without the batch dimension.
        minimum: Smallest value. maximum: Largest value. mean: Mean value.
        zero_fraction: Fraction of values exactly 0.
    """

    shape: tuple[int, ...]
    minimum: float
    maximum: float
    mean: float
    zero_fraction: float

    @classmethod
    def of(cls, layer: LayerOutput) -> LayerStats:
        """The statistics of a captured layer (computed where its tensor lives)."""
        stats = layer.stats()
        return cls(layer.shape, stats["min"], stats["max"], stats["mean"], stats["zero_fraction"])

    @property
    def metrics(self) -> tuple[MetricText, ...]:
        """Shape, min, max, mean and zeros, formatted for the page's five metrics."""
        return (
            MetricText("shape", "×".join(str(s) for s in self.shape)),
            MetricText("min", f"{self.minimum:.4g}"),
            MetricText("max", f"{self.maximum:.4g}"),
            MetricText("mean", f"{self.mean:.4g}"),
            MetricText("zeros", f"{self.zero_fraction:.1%}", ZEROS_HELP),
        )


@dataclass(frozen=True)
class ChannelPaging:
    """How a map layer's channels split into grid pages.

    Attributes:
        count: Channels in the layer.
        per_page: Channels per page (:func:`explorer.figures.channels.page_size` of the map size).
        pages: Number of pages (the last may be partial).
    """

    count: int
    per_page: int
    pages: int

    @classmethod
    def of(cls, shape: Sequence[int]) -> ChannelPaging:
        """The paging of a ``(C, H, W)`` layer."""
        count, height, width = shape
        per_page = page_size(height, width)
        return cls(count, per_page, -(-count // per_page))

    def positions(self, page: int) -> slice:
        """Which positions of the channel order page ``page`` (1-based) shows."""
        if not 1 <= page <= self.pages:
            raise ValueError(f"page must be in 1…{self.pages}, got {page}")
        return slice((page - 1) * self.per_page, page * self.per_page)


@dataclass(frozen=True, eq=False)
class LayerPage:
    """The chosen layer: its statistics, and its channels' paging or its strip figure.

    Attributes:
        layer: The captured layer.
        stats: Its shape and statistics.
        maps: A map layer's ``(C, H, W)`` values on the host; ``None`` for a flat layer.
        paging: A map layer's pages; ``None`` for a flat layer.
        vector_figure: A flat layer's strip (with a category per unit when it has one per
            class); ``None`` for a map layer.
    """

    layer: LayerOutput
    stats: LayerStats
    maps: np.ndarray | None
    paging: ChannelPaging | None
    vector_figure: go.Figure | None

    @property
    def is_map(self) -> bool:
        """Whether the layer is channels of 2-D maps (drawn as a grid), not a flat vector."""
        return self.maps is not None

    def clicked_unit(self, event: object) -> tuple[int, int] | None:
        """The ``(row, col)`` a click on a channel's large map picked, or ``None``.

        ``event`` is ``st.plotly_chart``'s selection (or what session state holds for it).
        """
        if len(self.layer.shape) != 3:
            return None
        return unit_from_channel_selection(event, (self.layer.shape[1], self.layer.shape[2]))


def layer_page(categories: Sequence[str], result: CaptureResult, layer_name: str) -> LayerPage:
    """What the browser shows for one layer, before any channel is chosen.

    Args:
        categories: The model's class names; a flat layer as wide as this list (the logits,
            the softmax) labels its units with them.
        result: The capture.
        layer_name: The chosen layer.

    Raises:
        KeyError: no captured layer has that name.
    """
    layer = result[layer_name]
    stats = LayerStats.of(layer)
    if len(layer.shape) == 3:
        return LayerPage(layer, stats, layer.numpy(), ChannelPaging.of(layer.shape), None)
    labelled = layer.shape[-1] == len(categories)
    figure = vector_figure(layer, categories if labelled else None)
    return LayerPage(layer, stats, None, None, figure)


def _map_values(shown: LayerPage) -> tuple[np.ndarray, ChannelPaging]:
    if shown.maps is None or shown.paging is None:
        raise ValueError(f"{shown.layer.name} is not a map layer: shape {shown.layer.shape}")
    return shown.maps, shown.paging


@dataclass(frozen=True, eq=False)
class ChannelPage:
    """One page of a map layer's channel grid.

    Attributes:
        sort: The channel order (one of :data:`explorer.figures.channels.SORTS`).
        scale: ``"layer"`` or ``"map"``.
        page: 1-based page number.
        order: Every channel of the layer in the chosen order.
        channels: The channels this page shows, in tile order.
        grid: The tiled figure and which channel each tile holds.
        caption: The line above the grid.
        description: The layer's maps in one sentence (the grid's text alternative).
    """

    sort: str
    scale: str
    page: int
    order: np.ndarray
    channels: tuple[int, ...]
    grid: ChannelGrid
    caption: str
    description: str = ""

    @property
    def first_channel(self) -> int:
        """The channel shown large until one is picked: the page's first tile."""
        return self.channels[0]

    def clicked_channel(self, event: object) -> int | None:
        """The channel a click on the grid picked (``st.plotly_chart``'s event), or ``None``."""
        return channel_from_selection(event, self.grid)


def channel_page(
    shown: LayerPage,
    sort: str | None = DEFAULT_SORT,
    scale: str | None = DEFAULT_SCALE,
    page: int = 1,
) -> ChannelPage:
    """A page of a map layer's channels as one tiled figure, and the caption above it.

    Args:
        shown: A map layer's :func:`layer_page`.
        sort: ``"index"``, ``"mean"`` or ``"max"`` (largest first); ``None`` (nothing chosen)
            is :data:`DEFAULT_SORT`.
        scale: ``"layer"`` or ``"map"``; ``None`` is :data:`DEFAULT_SCALE`.
        page: 1-based, at most ``shown.paging.pages``.

    Raises:
        ValueError: a flat layer, an unknown sort or scale, or a page out of range.
    """
    maps, paging = _map_values(shown)
    sort = sort or DEFAULT_SORT
    scale = scale or DEFAULT_SCALE
    order = channel_order(maps, sort)
    channels = tuple(int(c) for c in order[paging.positions(page)])
    grid = channel_grid_figure(maps, shown.layer.name, shown.layer.kind, channels, scale)
    caption = (
        f"Channels {', '.join(str(c) for c in channels[:3])}… ({len(channels)} of "
        f"{paging.count}, page {page} of {paging.pages}): one tile per channel. Hover a tile "
        "for its mean and max; click one to see it large."
    )
    description = describe_maps(maps, shown.layer.name)
    return ChannelPage(sort, scale, page, order, channels, grid, caption, description)


@dataclass(frozen=True, eq=False)
class ChannelView:
    """One channel large over the input, and the unit clicked on it.

    Attributes:
        channel: The channel number.
        figure: The channel over the input (:func:`explorer.figures.channels.channel_figure`).
        stats_text: The channel's min, max and mean (markdown).
        unit: ``(row, col)`` of the clicked unit, or ``None``.
        receptive_field: That unit's receptive field in input pixels (unclipped), or ``None``.
        unit_text: The unit's value and its receptive field (markdown), or ``None``.
        description: The channel's map in one sentence (its text alternative).
    """

    channel: int
    figure: go.Figure
    stats_text: str
    unit: tuple[int, int] | None
    receptive_field: Box | None
    unit_text: str | None
    description: str = ""


def channel_view(
    model: nn.Module,
    shown: LayerPage,
    channel: int,
    background: np.ndarray,
    opacity: float = DEFAULT_OPACITY,
    selection: object = None,
    unit: tuple[int, int] | None = None,
) -> ChannelView:
    """One channel of a map layer drawn large over the input, with a clicked unit's box.

    Args:
        model: The captured model (for the receptive field).
        shown: A map layer's :func:`layer_page`.
        channel: Which channel.
        background: The input as the network sees it, ``(H, W[, 3])`` ``uint8``.
        opacity: Of the map over the input.
        selection: The selection state of this channel's figure (``st.plotly_chart``'s
            event, or what session state holds for it); a clicked unit gets its receptive
            field outlined.
        unit: The clicked unit's ``(row, col)`` (a page that keeps it, or a link's); when
            given, ``selection`` is not read.

    Raises:
        ValueError: a flat layer, or a channel or unit out of range.
    """
    maps, paging = _map_values(shown)
    if not 0 <= channel < paging.count:
        raise ValueError(f"channel must be in 0…{paging.count - 1}, got {channel}")
    name = shown.layer.name
    values = maps[channel]
    stats_text = (
        f"channel **{channel}**: min {values.min():.4g} · max {values.max():.4g} · "
        f"mean {values.mean():.4g}"
    )
    in_h, in_w = background.shape[:2]
    if unit is None:
        unit = shown.clicked_unit(selection)
    elif not (0 <= unit[0] < values.shape[0] and 0 <= unit[1] < values.shape[1]):
        raise ValueError(f"unit {unit} is outside the {values.shape[0]}×{values.shape[1]} map")
    box = unit_text = None
    if unit is not None:
        y, x = unit
        unit_text = f"**Unit {name}[{channel}, {y}, {x}] = {values[y, x]:.6g}**  \n"
        try:
            box = receptive_field(model, name, y, x, (in_h, in_w))
        except UnknownField as exc:
            unit_text += f"Its receptive field: {exc}."
        else:
            clipped = box.clipped(in_h, in_w)
            unit_text += (
                f"Its receptive field: {box.height}×{box.width} input pixels, rows "
                f"{clipped.top}–{clipped.bottom - 1}, columns {clipped.left}–{clipped.right - 1} "
                "(the orange box)."
            )
    outline = None if box is None else (box.top, box.left, box.bottom, box.right)
    figure = channel_figure(values, name, channel, shown.layer.kind, background, opacity, outline)
    description = describe_map(values, f"{name} channel {channel}")
    return ChannelView(channel, figure, stats_text, unit, box, unit_text, description)
