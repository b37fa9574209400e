"""Pictures: the one colour rule, the plotly kit, every figure of the pages, the CLI's PNGs.

:mod:`.colour` (colour scales, palettes, PNGs), :mod:`.style` (the plotly kit),
:mod:`.tiling` (channels tiled into one image), :mod:`.channels` (the channel grid),
:mod:`.maps` (feature maps, the input, numbers), :mod:`.charts` (bars, filters, tables),
:mod:`.selection` (what a click selected), :mod:`.render` (PNGs for the CLI),
:mod:`.describe` (text alternatives: a map, filters or a prediction in one sentence).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "channels",
    "charts",
    "colour",
    "describe",
    "maps",
    "render",
    "selection",
    "style",
    "tiling",
]
