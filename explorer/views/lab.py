"""The Convolution lab's view-model: its inputs, settings, the views' numbers and tables.

``pages/lab.py`` lays these out; the numbers all come from :mod:`explorer.lab.maths`. Inputs
and the pipeline are kept for every session (:func:`~explorer.views.cache.shared`), keyed by
name or by the content's sha256, and handed out read-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
from PIL import Image

from explorer.analysis import geometry
from explorer.figures.colour import ColourScale, colour_scale
from explorer.figures.describe import describe_map, describe_signals, number_text
from explorer.inputs.preprocess import preprocess_digit
from explorer.inputs.samples import digit_samples, photo_samples
from explorer.lab import figures as lf
from explorer.lab import maths
from explorer.views.cache import shared

PHOTO = "grace hopper"
"""The lab's photo (a key of :func:`~explorer.inputs.samples.photo_samples`)."""
PHOTO_SIDE = 300
"""The photo's and an upload's longer side, in pixels."""
ACTIVATION_LABELS = {
    "none": "none",
    "relu": "ReLU",
    "leaky_relu": "leaky ReLU",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}
"""How the page names each of :data:`maths.ACTIVATIONS`."""
PIPELINE_KERNEL = "edge: outline (8-centre)"
"""The pipeline's kernel (a key of :data:`maths.KERNELS`)."""
PIPELINE_POOL = 2
"""The pipeline's max-pool window and stride."""
UNLINKED_INPUTS = ("Draw a digit", "Upload an image")
"""The inputs a link cannot carry (the page's names for them)."""


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def _channel(name: str) -> maths.Channel:
    if name not in maths.PHOTO_CHANNELS:
        raise ValueError(f"channel must be one of {maths.PHOTO_CHANNELS}, got {name!r}")
    return cast(maths.Channel, name)


def named_input(name: str, detail: str = "", channel: str = "gray") -> np.ndarray:
    """A teaching array, a gallery digit (``detail``: its label) or the photo, by name.

    Raises:
        ValueError: An unknown name.
    """

    def make() -> np.ndarray:
        if name == "7×7 square":
            return maths.teaching_square()
        if name == "5×5 binary":
            return maths.teaching_binary()
        if name == "Sample digit":
            return maths.prepare_image(digit_samples()[detail], side=28, square=False)
        if name == "Photo":
            return maths.prepare_image(
                photo_samples()[PHOTO], side=PHOTO_SIDE, channel=_channel(channel)
            )
        raise ValueError(f"unknown input {name!r}")

    return shared(("lab input", name, detail, channel), lambda: _read_only(make()))


def uploaded_input(data: bytes, channel: str) -> np.ndarray:
    """An uploaded image (kept by its sha256), its longer side shrunk to :data:`PHOTO_SIDE`.

    Raises:
        explorer.inputs.preprocess.ImageError: The bytes are not an image.
    """
    key = ("lab upload", hashlib.sha256(data).hexdigest(), channel)
    return shared(
        key,
        lambda: _read_only(
            maths.prepare_image(data, side=PHOTO_SIDE, channel=_channel(channel), square=False)
        ),
    )


def drawn_input(drawing: Image.Image) -> np.ndarray:
    """A canvas drawing laid out like MNIST (28×28), in 0…1, kept by its pixels' sha256.

    Raises:
        explorer.inputs.preprocess.NothingDrawn: The drawing is empty.
    """
    key = ("lab drawing", hashlib.sha256(drawing.tobytes()).hexdigest())
    return shared(
        key, lambda: _read_only(preprocess_digit(drawing).display.astype(np.float64) / 255.0)
    )


def output_size_text() -> str:
    """The output-size rule in words, for the 2-D view's formula box."""
    return (
        f"Output size {geometry.output_size_rule()} with W the input size, F the kernel size, "
        "P the padding on each side and S the stride. 'same' padding may put one more "
        "pixel after than before (P₁ + P₂)."
    )


@dataclass(frozen=True)
class ConvSettings:
    """The sidebar's convolution settings: bias, stride, padding and what the padding holds."""

    bias: float = 0.0
    stride: int = 1
    padding: maths.PaddingSetting = "valid"
    boundary: str = "zero"

    def correlate(self, image: np.ndarray, kernel: np.ndarray) -> maths.Conv2dResult:
        """Cross-correlation with these settings, as a CNN layer computes it."""
        return maths.correlate2d(image, kernel, self.bias, self.stride, self.padding, self.boundary)

    def convolve(self, image: np.ndarray, kernel: np.ndarray) -> maths.Conv2dResult:
        """True convolution with these settings: the kernel flipped, as ``scipy.ndimage``.

        The result's ``kernel`` is the flipped one, the one the products use.
        """
        return self.correlate(image, maths.flip(kernel))


@dataclass(frozen=True)
class FlipView:
    """Cross-correlation (what CNNs compute) against true convolution (the kernel flipped).

    Attributes:
        convolution: The convolution; its ``kernel`` is the flipped one.
        difference: Cross-correlation − convolution.
        worst: The largest absolute difference.
        worst_at: Where it is, ``(row, column)``.
        symmetric: Whether the kernel is the same turned by 180° (both maps agree).
        scale: One colour scale for both maps.
    """

    convolution: maths.Conv2dResult
    difference: np.ndarray
    worst: float
    worst_at: tuple[int, int]
    symmetric: bool
    scale: ColourScale


def flip_view(
    image: np.ndarray, kernel: np.ndarray, settings: ConvSettings, correlation: np.ndarray
) -> FlipView:
    """The flip comparison of ``kernel`` on ``image`` (``correlation``: its cross-correlation)."""
    conv = settings.convolve(image, kernel)
    difference = correlation - conv.output
    row, col = np.unravel_index(int(np.argmax(np.abs(difference))), difference.shape)
    return FlipView(
        convolution=conv,
        difference=difference,
        worst=float(np.abs(difference).max()),
        worst_at=(int(row), int(col)),
        symmetric=maths.is_flip_symmetric(kernel),
        scale=colour_scale(np.concatenate([correlation.ravel(), conv.output.ravel()]), True),
    )


@dataclass(frozen=True)
class ActivationView:
    """A feature map before and after an activation, drawn on one colour scale.

    Attributes:
        before: The map.
        after: The map through the activation.
        kind: How both are drawn: signed when either has a negative value.
        scale: The shared scale (robust, saturating, for photo-sized maps).
        robust: Whether the scale saturates (a map side over :data:`lf.ROBUST_FROM`).
        negatives: How many values of ``before`` are negative.
        formula: The activation's formula.
        label: The activation's name.
    """

    before: np.ndarray
    after: np.ndarray
    kind: lf.Kind
    scale: ColourScale
    robust: bool
    negatives: int
    formula: str
    label: str

    def descriptions(self) -> tuple[str, str]:
        """The two maps' text alternatives: before and after the activation."""
        return (
            describe_map(self.before, "before: conv output", negative=True),
            describe_map(self.after, f"after: {self.label}", negative=True),
        )


def pooled_description(pooled: maths.Pool2dResult) -> str:
    """The pooled map's text alternative."""
    return describe_map(pooled.output, f"{pooled.mode} pooled", negative=True)


def activation_view(conv: np.ndarray, activation: str, slope: float = 0.1) -> ActivationView:
    """``conv`` through ``activation`` (a leaky ReLU's negative ``slope``), on one scale."""
    activated = maths.activate(conv, activation, slope)
    both = np.concatenate([conv.ravel(), activated.ravel()])
    kind: lf.Kind = "signed" if both.min() < 0 else "nonnegative"
    robust = max(conv.shape) > lf.ROBUST_FROM
    return ActivationView(
        before=conv,
        after=activated,
        kind=kind,
        scale=lf.scale_for(both, kind, robust=robust),
        robust=robust,
        negatives=maths.count_negative(conv),
        formula=maths.activation_formula(activation, slope),
        label=ACTIVATION_LABELS[activation],
    )


@dataclass(frozen=True)
class Pipeline:
    """The classic pipeline on the photo: conv (SAME) → ReLU → max-pool, each stage's numbers.

    Attributes:
        image: The grayscale photo.
        conv: The kernel's map (SAME padding).
        rectified: Its ReLU.
        pooled: The ReLU's max-pool.
        conv_formula: The conv's output-size formula, with its numbers.
        pool_formula: The pool's.
        pad: The conv's padding on each side (SAME).
        kernel: The kernel's name (:data:`PIPELINE_KERNEL`).
    """

    image: np.ndarray
    conv: np.ndarray
    rectified: np.ndarray
    pooled: np.ndarray
    conv_formula: str
    pool_formula: str
    pad: int
    kernel: str

    @property
    def negatives(self) -> int:
        """How many conv outputs are negative (ReLU sets them to 0)."""
        return maths.count_negative(self.conv)

    def descriptions(self) -> tuple[str, str, str, str]:
        """The four maps' text alternatives: input, conv, ReLU, max-pool."""
        return (
            describe_map(self.image, "input"),
            describe_map(self.conv, "conv", negative=True),
            describe_map(self.rectified, "ReLU"),
            describe_map(self.pooled, "max-pool"),
        )


def pipeline(kernel: str = PIPELINE_KERNEL) -> Pipeline:
    """The pipeline on the photo with ``kernel`` (kept for every session)."""
    return shared(("lab pipeline", kernel), lambda: _pipeline(kernel))


def _pipeline(kernel: str) -> Pipeline:
    image = named_input("Photo", channel="gray")
    conv = maths.correlate2d(image, maths.KERNELS[kernel], padding="same")
    rectified = _read_only(maths.activate(conv.output, "relu"))
    pooled = maths.pool2d(rectified, PIPELINE_POOL, PIPELINE_POOL, "max")
    return Pipeline(
        image=image,
        conv=conv.output,
        rectified=rectified,
        pooled=pooled.output,
        conv_formula=conv.formulas()[1],
        pool_formula=pooled.formulas()[1],
        pad=conv.pad[1][0],
        kernel=kernel,
    )


def input_kind(image: np.ndarray) -> lf.Kind:
    """How an input is drawn: gray pixels when it lies in 0…1, else signed values."""
    return "pixels" if image.min() >= 0 and image.max() <= 1 else "signed"


def pooled_value_text(window: maths.PoolWindow, mode: str) -> str:
    """How one pooled value was made, in words and numbers (markdown).

    Args:
        window: The window behind the value (:meth:`maths.Pool2dResult.window`).
        mode: The pooling mode, one of :data:`maths.POOL_MODES`.
    """
    where = f"**pooled[{window.row}, {window.col}]**"
    value = number_text(window.value, maths.DECIMALS)
    if window.winner is not None:
        wy, wx = window.winner
        return f"{where} = max of the window = **{value}**, won by input row {wy}, column {wx}"
    what = "mean" if mode == "average" else "sum"
    return f"{where} = {what} of the {window.values.size} values = **{value}**"


@dataclass(frozen=True)
class ValueTable:
    """Numbers written for a table: one row per series, blank where a series has no value.

    Attributes:
        columns: The column headers: positions in the signal, or output indices.
        rows: Each series' cells, in column order, to :data:`maths.DECIMALS` decimals.
    """

    columns: list[str]
    rows: dict[str, list[str]]


def value_table(
    rows: Mapping[str, np.ndarray], positions: Mapping[str, np.ndarray] | None = None
) -> ValueTable:
    """One row per series, rounded to the lab's decimals; blank where a series has no value.

    With ``positions`` (one array per series) the columns are positions in the signal, so
    outputs line up with the input values they are centred on; else output indices.
    """
    if positions is None:
        positions = {name: np.arange(len(v)) for name, v in rows.items()}
    columns = sorted({float(p) for name in rows for p in positions[name]})
    headers = [f"{c:g}" for c in columns]
    cells: dict[str, list[str]] = {}
    for name, values in rows.items():
        written = {
            f"{float(p):g}": number_text(float(v), maths.DECIMALS)
            for p, v in zip(positions[name], values, strict=True)
        }
        cells[name] = [written.get(header, "") for header in headers]
    return ValueTable(headers, cells)


@dataclass(frozen=True)
class OneDView:
    """The 1-D view: a signal through ``np.convolve``'s modes and ``scipy.ndimage``'s boundaries.

    Attributes:
        signal: The signal's values.
        kernel: The kernel's values.
        modes: ``np.convolve``'s output for each of ``full``, ``same`` and ``valid``.
        positions: Where each mode's outputs sit on the signal's axis: the kernel's centre
            (for an even kernel, between two samples).
        aligned: Whether tables line outputs up with the signal (an odd kernel has a centre
            sample; an even one does not, and its tables use output indices).
        bounded: ``scipy.ndimage.convolve``'s output for each boundary mode, by scipy's
            name; ``None`` for an even kernel (scipy centres the kernel).
        padded: The signal padded by each boundary mode, by scipy's name (odd kernels).
        padded_positions: The positions of ``padded``'s values.
    """

    signal: np.ndarray
    kernel: np.ndarray
    modes: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    aligned: bool
    bounded: dict[str, np.ndarray] | None
    padded: dict[str, np.ndarray] | None
    padded_positions: np.ndarray

    @property
    def half(self) -> int:
        """How many values each boundary mode adds on each side."""
        return len(self.kernel) // 2

    def numpy_table(self) -> ValueTable:
        """The signal and every ``np.convolve`` mode, aligned where the kernel is odd."""
        rows = {"signal": self.signal, **self.modes}
        if not self.aligned:
            return value_table(rows)
        return value_table(rows, {"signal": np.arange(len(self.signal)), **self.positions})

    def scipy_table(self) -> ValueTable:
        """The signal and every boundary mode's output (as many values as the signal)."""
        return value_table({"signal": self.signal} | (self.bounded or {}))

    def numpy_description(self) -> str:
        """The np.convolve chart's text alternative: the signal and each mode, by position."""
        names = {mode: f"np.convolve {mode}" for mode in self.modes}
        signals = {"signal": self.signal} | {names[m]: v for m, v in self.modes.items()}
        positions = {names[m]: at for m, at in self.positions.items()}
        return describe_signals(signals, positions)

    def scipy_description(self) -> str:
        """The scipy.ndimage chart's text alternative: the signal and each boundary mode."""
        bounded = {f"mode='{name}'": v for name, v in (self.bounded or {}).items()}
        return describe_signals({"signal": self.signal} | bounded)

    def padded_table(self) -> ValueTable:
        """What each boundary mode pads the signal with."""
        padded = self.padded or {}
        return value_table(padded, dict.fromkeys(padded, self.padded_positions))


def mode_positions(modes: Mapping[str, np.ndarray], kernel_length: int) -> dict[str, np.ndarray]:
    """Where ``np.convolve``'s outputs sit on the signal's axis, mode by mode.

    Each output is placed at the centre of the kernel that made it: ``full`` starts
    ``(N − 1) / 2`` before the signal, ``same`` keeps the outputs of ``full`` from index
    ``(N − 1) // 2``, ``valid`` starts where the kernel first fits.
    """
    centre = (kernel_length - 1) / 2
    first = {"full": -centre, "same": (kernel_length - 1) // 2 - centre, "valid": centre}
    return {mode: np.arange(len(values)) + first[mode] for mode, values in modes.items()}


def one_d_view(signal_text: str, kernel_text: str) -> OneDView:
    """The 1-D view of a signal and a kernel typed as numbers (fractions allowed).

    Raises:
        ValueError: The text is not numbers, or the kernel cannot slide over the signal.
    """
    signal, kernel = maths.parse_numbers(signal_text), maths.parse_numbers(kernel_text)
    modes = {mode: maths.convolve1d(signal, kernel, mode) for mode in maths.NUMPY_CONVOLVE_MODES}
    positions = mode_positions(modes, len(kernel))
    half = len(kernel) // 2
    bounded = padded = None
    if len(kernel) % 2 == 1:
        names = {b: maths.SCIPY_MODES[b] for b in maths.BOUNDARIES}
        bounded = {names[b]: maths.convolve1d_boundary(signal, kernel, b) for b in maths.BOUNDARIES}
        padded = {
            names[b]: maths.pad(signal[None], (0, 0), (half, half), b)[0] for b in maths.BOUNDARIES
        }
    return OneDView(
        signal=signal,
        kernel=kernel,
        modes=modes,
        positions=positions,
        aligned=len(kernel) % 2 == 1,
        bounded=bounded,
        padded=padded,
        padded_positions=np.arange(-half, len(signal) + half),
    )


def link_note(input_name: str, kernel_name: str, kernel: np.ndarray) -> str | None:
    """What a link to the lab cannot carry: a drawing or an upload, edited kernel numbers.

    Args:
        input_name: The chosen input (one of the page's inputs).
        kernel_name: The chosen kernel: a key of :data:`maths.KERNELS`, or anything else for
            a custom one.
        kernel: The kernel in use, as edited.
    """
    lost = []
    if input_name in UNLINKED_INPUTS:
        lost.append("your drawing" if input_name == UNLINKED_INPUTS[0] else "your picture")
    preset = maths.KERNELS.get(kernel_name)
    if preset is None or not np.array_equal(kernel, np.asarray(preset, dtype=np.float64)):
        lost.append("the kernel's edited numbers")
    return f"The link cannot carry {' or '.join(lost)}." if lost else None
