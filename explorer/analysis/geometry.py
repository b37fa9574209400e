"""Sliding-window geometry, in one place: output sizes, their formula text, boxes, pairs.

The captions, the unit explanations (receptive fields) and the convolution lab all use these,
so the numbers a caption shows, the box a click draws and the lab's answer always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

Padding = int | tuple[int, int]
"""Padding on one axis: the same on both sides, or ``(before, after)``."""


@dataclass(frozen=True)
class Box:
    """Pixel rows ``top..bottom-1`` and columns ``left..right-1`` (half-open).

    A box may extend past the map it lies on (into the padding); :meth:`clipped` cuts it.
    """

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        """Number of rows."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.right - self.left

    def clipped(self, height: int, width: int) -> Box:
        """The part of the box inside a ``height``×``width`` map (empty if none)."""
        top = min(max(self.top, 0), height)
        left = min(max(self.left, 0), width)
        return Box(top, left, max(min(self.bottom, height), top), max(min(self.right, width), left))


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    """``k`` → ``(k, k)``; a tuple (torch's ``kernel_size`` etc.) → its first and last."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def _sides(padding: Padding) -> tuple[int, int]:
    return (padding, padding) if isinstance(padding, int) else (int(padding[0]), int(padding[1]))


def window_span(kernel: int, dilation: int = 1) -> int:
    """How many source positions one window covers: ``F = d·(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """``⌊(W − F + 2P) / S⌋ + 1``, torch's rule (``P₁ + P₂`` for uneven padding).

    With ``ceil_mode`` (pooling) the division rounds up, but the last window must still start
    inside the input or its leading padding.

    Raises:
        ValueError: The window does not fit in the padded input.
    """
    before, after = _sides(padding)
    span = size + before + after - window_span(kernel, dilation)
    if span < 0:
        raise ValueError(
            f"the kernel ({window_span(kernel, dilation)}) is larger than the padded input "
            f"({size + before + after})"
        )
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return out


def output_size_rule(padding: Padding = 0) -> str:
    """The formula in symbols: ``⌊(W − F + 2P) / S⌋ + 1``, or with ``P₁ + P₂``."""
    before, after = _sides(padding)
    return "⌊(W − F + 2P) / S⌋ + 1" if before == after else "⌊(W − F + P₁ + P₂) / S⌋ + 1"


def output_size_numbers(
    size: int, kernel: int, stride: int = 1, padding: Padding = 0, dilation: int = 1
) -> str:
    """The formula with the numbers in, e.g. ``⌊(7 − 3 + 2·1) / 2⌋ + 1 = 4``."""
    before, after = _sides(padding)
    pads = f"2·{before}" if before == after else f"{before} + {after}"
    out = output_size(size, kernel, stride, (before, after), dilation)
    return f"⌊({size} − {window_span(kernel, dilation)} + {pads}) / {stride}⌋ + 1 = {out}"


def output_size_formula(size: int, kernel: int, stride: int = 1, padding: Padding = 0) -> str:
    """The rule and the numbers: ``⌊(W − F + 2P) / S⌋ + 1 = ⌊(7 − 3 + 2·1) / 2⌋ + 1 = 4``.

    Uneven padding ``(before, after)`` is written ``P₁ + P₂``.
    """
    return f"{output_size_rule(padding)} = {output_size_numbers(size, kernel, stride, padding)}"
