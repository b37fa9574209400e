"""What happens inside: every layer captured, its geometry, units explained, the layer table.

:mod:`.capture` (every layer's output, by call order), :mod:`.geometry` (output sizes,
receptive fields), :mod:`.architecture` (the layer table: parameters, multiply-adds),
:mod:`.explain` (the numbers behind one unit), :mod:`.attribution` (why this class: Captum
and torchcam methods and their settings), :mod:`.experiment` (perturbations, knock-outs,
sweeps), :mod:`.visualize` (what a channel looks for), :mod:`.imageindex` (a folder's top
images for every channel, and its file).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "architecture",
    "attribution",
    "capture",
    "experiment",
    "explain",
    "geometry",
    "imageindex",
    "visualize",
]
