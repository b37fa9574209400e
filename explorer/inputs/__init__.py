"""What goes in: canvas strokes, uploads and photos, prepared as each model expects.

:mod:`.spec` (:class:`~.spec.InputSpec`: what a model takes — shape, digit layout,
normalisation — and the one place pixels become a normalised tensor and back),
:mod:`.preprocess` (reading an image safely and preparing it for a spec), :mod:`.strokes`
(the canvas's strokes, bounded, painted into a picture), :mod:`.samples` (the shipped digits
and photos).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "preprocess",
    "samples",
    "spec",
    "strokes",
]
