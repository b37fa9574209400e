"""The convolution lab: its maths, written out step by step, and its figures.

:mod:`.maths` (convolution, padding, stride, pooling and activations by hand), :mod:`.figures`
(the lab's pictures).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "figures",
    "maths",
]
