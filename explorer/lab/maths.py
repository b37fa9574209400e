"""The arithmetic of the Convolution lab: convolution, padding, stride, activation, pooling.

Everything a CNN tutorial computes, written out explicitly so each number can be shown:
an input is padded with :func:`numpy.pad` in the chosen boundary mode, every kernel-sized
patch is gathered with :func:`numpy.lib.stride_tricks.sliding_window_view`, and the patches
are multiplied with the kernel and summed with :func:`numpy.einsum`. The tests check these
against ``scipy.ndimage``, ``numpy.convolve`` and ``torch.nn.functional``.

Conventions:
    * A CNN layer computes **cross-correlation** (:func:`correlate2d`): the kernel is laid on
      the patch as it is. True convolution (``np.convolve``, ``scipy.ndimage.convolve``)
      flips the kernel first: :func:`correlate2d` with the :func:`flip`-ped kernel.
    * Padding ``"valid"`` adds nothing; ``"full"`` adds ``F − 1`` on each side; ``"same"``
      follows TensorFlow / PyTorch: the total padding is
      ``max((⌈W / S⌉ − 1)·S + F − W, 0)``, half of it before, the extra pixel (when the
      total is odd) after, i.e. on the right / bottom, so the output has ``⌈W / S⌉`` pixels;
      an integer pads that many on every side.
    * Boundary modes say what the padding holds (``d c b a | a b c d | …``):

      ========  =======================  ==================  =====================
      name      fill                     ``scipy.ndimage``   ``torch`` ``F.pad``
      ========  =======================  ==================  =====================
      zero      ``0 0 0 | a b c d``      ``constant``        ``constant``
      reflect   ``c b a | a b c d``      ``reflect``         —
      mirror    ``d c b | a b c d``      ``mirror``          ``reflect``
      nearest   ``a a a | a b c d``      ``nearest``         ``replicate``
      wrap      ``b c d | a b c d``      ``wrap``            ``circular``
      ========  =======================  ==================  =====================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from scipy.special import expit

from explorer.analysis import geometry
from explorer.figures.describe import number_text
from explorer.inputs.preprocess import ImageSource, load_image, to_rgb
from explorer.inputs.spec import rgb_luma

DECIMALS = 4
"""Every number the lab writes out (tables, sums) is rounded to this many decimals."""

PADDINGS = ("valid", "same", "full")
BOUNDARIES = ("zero", "reflect", "mirror", "nearest", "wrap")
NUMPY_PAD_MODES = {
    "zero": "constant",
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
}
SCIPY_MODES = {
    "zero": "constant",
    "reflect": "reflect",
    "mirror": "mirror",
    "nearest": "nearest",
    "wrap": "wrap",
}
ACTIVATIONS = ("none", "relu", "leaky_relu", "tanh", "sigmoid")
POOL_MODES = ("max", "average", "sum")
NUMPY_CONVOLVE_MODES = ("full", "same", "valid")
PHOTO_CHANNELS = ("gray", "red", "green", "blue", "rgb")

PaddingSetting = str | int
"""The lab's padding: ``"valid"``, ``"same"``, ``"full"`` (:data:`PADDINGS`) or pixels on each
side. :func:`padding_amounts` turns it into pixels (:data:`explorer.analysis.geometry.Padding`)."""
Channel = Literal["gray", "red", "green", "blue", "rgb"]


def _short(value: float) -> str:
    """A factor in a written-out sum: at most :data:`DECIMALS` decimals, no trailing zeros."""
    text = f"{round(float(value), DECIMALS):g}"
    return "0" if text == "-0" else text


def _factor(value: float) -> str:
    """:func:`_short`, in parentheses when negative: ``0.5·(-1)``."""
    text = _short(value)
    return f"({text})" if text.startswith("-") else text


def _kernel(rows: list[list[float]], scale: float = 1.0) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64) * scale


KERNELS: dict[str, np.ndarray] = {
    "identity": _kernel([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "edge: outline (8-centre)": _kernel([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "edge: Laplacian (4-neighbour)": _kernel([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "edge: diagonal": _kernel([[1, 0, -1], [0, 0, 0], [-1, 0, 1]]),
    "sharpen": _kernel([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "box blur (1/9)": _kernel([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9),
    "Gaussian blur 3×3": _kernel([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "Gaussian blur 5×5": _kernel(
        [
            [1, 4, 6, 4, 1],
            [4, 16, 24, 16, 4],
            [6, 24, 36, 24, 6],
            [4, 16, 24, 16, 4],
            [1, 4, 6, 4, 1],
        ],
        1 / 256,
    ),
    "Sobel x": _kernel([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "Sobel y": _kernel([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "Prewitt x": _kernel([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    "Prewitt y": _kernel([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    "emboss": _kernel([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "X (teaching)": _kernel([[1, 0, 1], [0, 1, 0], [1, 0, 1]]),
}
"""The kernel presets, by the name the page shows. Each array is read-only."""
for _k in KERNELS.values():
    _k.flags.writeable = False


def identity_kernel(size: int) -> np.ndarray:
    """A ``size``×``size`` kernel with a 1 in the centre (``size`` odd)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"an identity kernel needs an odd size, got {size}")
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


# --- the teaching inputs ---------------------------------------------------------------


def teaching_square() -> np.ndarray:
    """The 7×7 zero array with a 3×3 square of ones in the middle."""
    image = np.zeros((7, 7))
    image[2:5, 2:5] = 1.0
    return image


def teaching_binary() -> np.ndarray:
    """The classic 5×5 binary image (use it with the ``"X (teaching)"`` kernel → 3×3)."""
    return np.array(
        [
            [1, 1, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 1, 1],
            [0, 0, 1, 1, 0],
            [0, 1, 1, 0, 0],
        ],
        dtype=np.float64,
    )


def step_signal() -> np.ndarray:
    """Ten values: five 0s then five 1s."""
    return np.array([0.0] * 5 + [1.0] * 5)


def prepare_image(
    source: ImageSource, side: int = 300, channel: Channel = "gray", square: bool = True
) -> np.ndarray:
    """An image as float64 pixels in ``0…1`` for the lab.

    Args:
        source: Anything :func:`explorer.inputs.preprocess.load_image` reads (transparency is
            composited on white).
        side: ``square``: the output is ``side``×``side`` (centre crop, then resize);
            otherwise the longer side is shrunk to ``side`` (never enlarged), aspect kept.
        channel: ``"gray"`` (ITU-R 601 luma), one of ``"red"``/``"green"``/``"blue"``, or
            ``"rgb"`` for all three.
        square: Crop to the centre square first.

    Returns:
        ``(H, W)``, or ``(3, H, W)`` for ``"rgb"``.

    Raises:
        ImageError: The image cannot be read.
        ValueError: Unknown ``channel``.
    """
    if channel not in PHOTO_CHANNELS:
        raise ValueError(f"channel must be one of {PHOTO_CHANNELS}, got {channel!r}")
    img = to_rgb(load_image(source))
    if square:
        w, h = img.size
        edge = min(w, h)
        left, top = (w - edge) // 2, (h - edge) // 2
        img = img.crop((left, top, left + edge, top + edge))
        img = img.resize((side, side), Image.Resampling.LANCZOS)
    elif max(img.size) > side:
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
    rgb = np.asarray(img, dtype=np.float64) / 255.0
    if channel == "gray":
        return rgb_luma(rgb)
    if channel == "rgb":
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))
    return np.ascontiguousarray(rgb[..., ("red", "green", "blue").index(channel)])


# --- output size and padding -----------------------------------------------------------


def padding_amounts(
    size: int, kernel: int, stride: int, padding: PaddingSetting
) -> tuple[int, int]:
    """Pixels added before and after one axis.

    Args:
        size: Input length ``W`` along the axis.
        kernel: Kernel length ``F``.
        stride: Step ``S``.
        padding: ``"valid"`` (none), ``"same"`` (TensorFlow / PyTorch: ``⌈W / S⌉``
            outputs, the odd pixel after), ``"full"`` (``F − 1`` each side) or a number
            of pixels on each side.

    Returns:
        ``(before, after)``.
    """
    if size < 1 or kernel < 1 or stride < 1:
        raise ValueError(f"size, kernel and stride must be ≥ 1, got {size}, {kernel}, {stride}")
    if isinstance(padding, bool):
        raise TypeError("padding must be a mode name or a number of pixels")
    if isinstance(padding, int | np.integer):
        if padding < 0:
            raise ValueError(f"padding must be ≥ 0, got {padding}")
        return int(padding), int(padding)
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return kernel - 1, kernel - 1
    if padding == "same":
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    raise ValueError(f"padding must be one of {PADDINGS} or a number, got {padding!r}")


def pad(
    image: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], boundary: str = "zero"
) -> np.ndarray:
    """Pad the last two axes of ``image`` by ``rows`` / ``cols`` in a boundary mode."""
    if boundary not in NUMPY_PAD_MODES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    widths = [(0, 0)] * (image.ndim - 2) + [rows, cols]
    if image.size == 0 and boundary != "zero":
        raise ValueError("cannot pad an empty array from its own values")
    padded: np.ndarray = np.pad(image, widths, mode=NUMPY_PAD_MODES[boundary])  # type: ignore[call-overload]
    return padded


# --- 2-D convolution -------------------------------------------------------------------


@dataclass(frozen=True)
class ConvStep:
    """One output value of a convolution, written out.

    Attributes:
        row: Output row.
        col: Output column.
        top: Patch's top row in the *input's* coordinates (negative in the padding).
        left: Patch's left column in the input's coordinates.
        patch: The input values under the kernel, ``(C, kh, kw)``.
        kernel: The kernel as applied (flipped for true convolution), ``(C, kh, kw)``.
        products: ``patch * kernel``.
        bias: The bias.
    """

    row: int
    col: int
    top: int
    left: int
    patch: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    bias: float

    @property
    def total(self) -> float:
        """Σ products."""
        return float(self.products.sum())

    @property
    def value(self) -> float:
        """Σ products + bias: the output value."""
        return self.total + self.bias

    def equation(self, max_terms: int = 27) -> str | None:
        """``"1·1 + 0·0 + … = 4"``: every product written out, or None above ``max_terms``."""
        if self.patch.size > max_terms:
            return None
        terms = [
            f"{_factor(p)}·{_factor(k)}"
            for p, k in zip(self.patch.flat, self.kernel.flat, strict=True)
        ]
        return " + ".join(terms) + f" = {number_text(self.total, DECIMALS)}"


@dataclass(frozen=True, eq=False)
class Conv2dResult:
    """A 2-D convolution and everything needed to explain any of its outputs.

    Attributes:
        output: The feature map ``(H_out, W_out)``, float64.
        padded: The padded input ``(C, H + P, W + P)``.
        kernel: The kernel as applied, ``(C, kh, kw)`` (flipped for true convolution).
        bias: Added to every output.
        stride: ``(rows, cols)``.
        pad: ``((top, bottom), (left, right))``.
        input_shape: ``(H, W)`` of the unpadded input.
    """

    output: np.ndarray
    padded: np.ndarray
    kernel: np.ndarray
    bias: float
    stride: tuple[int, int]
    pad: tuple[tuple[int, int], tuple[int, int]]
    input_shape: tuple[int, int]

    def step(self, row: int, col: int) -> ConvStep:
        """The patch, kernel, products and sum behind ``output[row, col]``."""
        rows, cols = self.output.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"({row}, {col}) is outside the {rows}×{cols} output")
        kh, kw = self.kernel.shape[1:]
        y, x = row * self.stride[0], col * self.stride[1]
        patch = self.padded[:, y : y + kh, x : x + kw].copy()
        return ConvStep(
            row=row,
            col=col,
            top=y - self.pad[0][0],
            left=x - self.pad[1][0],
            patch=patch,
            kernel=self.kernel,
            products=patch * self.kernel,
            bias=self.bias,
        )

    def formulas(self) -> tuple[str, str]:
        """The output-size formula for the rows and for the columns."""
        (h, w), (kh, kw) = self.input_shape, self.kernel.shape[1:]
        return (
            geometry.output_size_formula(h, kh, self.stride[0], self.pad[0]),
            geometry.output_size_formula(w, kw, self.stride[1], self.pad[1]),
        )


def correlate2d(
    image: np.ndarray,
    kernel: np.ndarray,
    bias: float = 0.0,
    stride: int | tuple[int, int] = 1,
    padding: PaddingSetting = "valid",
    boundary: str = "zero",
) -> Conv2dResult:
    """What a CNN conv layer computes: cross-correlation (no flip), with bias, stride, padding.

    Args:
        image: ``(H, W)``, or ``(C, H, W)`` for several channels (e.g. RGB).
        kernel: ``(kh, kw)`` — with a ``(C, H, W)`` image the same kernel is used on every
            channel — or ``(C, kh, kw)``. The products over all channels are summed into
            one output map.
        bias: Added to every output value.
        stride: Step in rows and columns (an int for both).
        padding: See :func:`padding_amounts`.
        boundary: What the padding holds; one of :data:`BOUNDARIES`.

    Returns:
        The output and what made it.

    Raises:
        ValueError: Bad shapes or parameters, or a kernel larger than the padded input.
    """
    pixels = np.asarray(image, dtype=np.float64)
    weights = np.asarray(kernel, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or 0 in pixels.shape:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {np.shape(image)}")
    if weights.ndim == 2:
        weights = np.broadcast_to(weights, (len(pixels), *weights.shape))
    if weights.ndim != 3 or len(weights) != len(pixels) or 0 in weights.shape:
        raise ValueError(
            f"kernel must be (kh, kw) or ({len(pixels)}, kh, kw), got shape {np.shape(kernel)}"
        )
    strides = geometry.pair(stride)
    if min(strides) < 1:
        raise ValueError(f"stride must be ≥ 1, got {stride}")
    (h, w), (kh, kw) = pixels.shape[1:], weights.shape[1:]
    pad_rows = padding_amounts(h, kh, strides[0], padding)
    pad_cols = padding_amounts(w, kw, strides[1], padding)
    out_h = geometry.output_size(h, kh, strides[0], pad_rows)
    out_w = geometry.output_size(w, kw, strides[1], pad_cols)
    padded = pad(pixels, pad_rows, pad_cols, boundary)
    patches = sliding_window_view(padded, (kh, kw), axis=(1, 2))
    patches = patches[:, :: strides[0], :: strides[1]][:, :out_h, :out_w]
    output = np.einsum("cyxij,cij->yx", patches, weights) + float(bias)
    weights = np.array(weights)  # own copy, read-only: results are shared through caches
    for array in (output, padded, weights):
        array.flags.writeable = False
    return Conv2dResult(
        output=output,
        padded=padded,
        kernel=weights,
        bias=float(bias),
        stride=strides,
        pad=(pad_rows, pad_cols),
        input_shape=(h, w),
    )


def flip(kernel: np.ndarray) -> np.ndarray:
    """The kernel turned by 180° (its last two axes reversed), as true convolution uses it."""
    return np.ascontiguousarray(np.asarray(kernel)[..., ::-1, ::-1])


def is_flip_symmetric(kernel: np.ndarray) -> bool:
    """Whether flipping changes nothing, so convolution and cross-correlation agree."""
    weights = np.asarray(kernel, dtype=np.float64)
    return bool(np.array_equal(weights, flip(weights)))


# --- activation and pooling ------------------------------------------------------------


def activate(values: np.ndarray, name: str, negative_slope: float = 0.01) -> np.ndarray:
    """Apply an activation element-wise.

    Args:
        values: Any array.
        name: One of :data:`ACTIVATIONS`.
        negative_slope: Leaky ReLU's slope for negative values.
    """
    x = np.asarray(values, dtype=np.float64)
    if name == "none":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x >= 0, x, negative_slope * x)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return np.asarray(expit(x))
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def count_negative(values: np.ndarray, tolerance: float = 1e-9) -> int:
    """How many values are below ``−tolerance``.

    A sum of floats that should be 0 can land on −1e-16, which is not a negative response.
    """
    return int((np.asarray(values) < -tolerance).sum())


def activation_formula(name: str, negative_slope: float = 0.01) -> str:
    """The activation as a formula, for captions."""
    formulas = {
        "none": "f(x) = x",
        "relu": "f(x) = max(0, x)",
        "leaky_relu": f"f(x) = x if x ≥ 0 else {negative_slope:g}·x",
        "tanh": "f(x) = tanh(x) = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)",
        "sigmoid": "f(x) = 1 / (1 + e⁻ˣ)",
    }
    if name not in formulas:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return formulas[name]


@dataclass(frozen=True)
class PoolWindow:
    """One pooled value, written out.

    Attributes:
        row: Output row.
        col: Output column.
        top: Window's top row in the input.
        left: Window's left column in the input.
        values: The input values in the window.
        value: The pooled value.
        winner: For max pooling, the input ``(row, col)`` that won (first in reading order
            on a tie); ``None`` otherwise.
    """

    row: int
    col: int
    top: int
    left: int
    values: np.ndarray
    value: float
    winner: tuple[int, int] | None


@dataclass(frozen=True, eq=False)
class Pool2dResult:
    """A pooled map and how each of its values was chosen.

    Attributes:
        output: ``(H_out, W_out)``.
        input: The map that was pooled, ``(H, W)``.
        size: Window size.
        stride: Window step.
        mode: One of :data:`POOL_MODES`.
    """

    output: np.ndarray
    input: np.ndarray
    size: int
    stride: int
    mode: str

    def window(self, row: int, col: int) -> PoolWindow:
        """The window behind ``output[row, col]`` and, for max pooling, its winner."""
        rows, cols = self.output.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"({row}, {col}) is outside the {rows}×{cols} output")
        top, left = row * self.stride, col * self.stride
        values = self.input[top : top + self.size, left : left + self.size].copy()
        winner = None
        if self.mode == "max":
            dy, dx = np.unravel_index(int(np.argmax(values)), values.shape)
            winner = (top + int(dy), left + int(dx))
        return PoolWindow(row, col, top, left, values, float(self.output[row, col]), winner)

    def formulas(self) -> tuple[str, str]:
        """The output-size formula for the rows and for the columns."""
        h, w = self.input.shape
        return (
            geometry.output_size_formula(h, self.size, self.stride),
            geometry.output_size_formula(w, self.size, self.stride),
        )


def pool2d(
    values: np.ndarray, size: int = 2, stride: int | None = None, mode: str = "max"
) -> Pool2dResult:
    """Max, average or sum pooling of a 2-D map, no padding (partial windows dropped).

    Args:
        values: ``(H, W)``.
        size: Window side.
        stride: Window step (``None``: ``size``, the usual non-overlapping windows).
        mode: One of :data:`POOL_MODES`.

    Raises:
        ValueError: Bad parameters, or a window larger than the map.
    """
    x = np.asarray(values, dtype=np.float64)
    step = size if stride is None else stride
    if x.ndim != 2:
        raise ValueError(f"pooling works on one (H, W) map, got shape {x.shape}")
    if size < 1 or step < 1:
        raise ValueError(f"size and stride must be ≥ 1, got {size}, {step}")
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be one of {POOL_MODES}, got {mode!r}")
    out_h, out_w = (geometry.output_size(side, size, step) for side in x.shape)
    windows = sliding_window_view(x, (size, size))[::step, ::step][:out_h, :out_w]
    if mode == "max":
        output = windows.max(axis=(2, 3))
    elif mode == "average":
        output = windows.mean(axis=(2, 3))
    else:
        output = windows.sum(axis=(2, 3))
    x = x.copy()
    for array in (output, x):
        array.flags.writeable = False
    return Pool2dResult(output=output, input=x, size=size, stride=step, mode=mode)


# --- 1-D convolution -------------------------------------------------------------------


def _check_1d(signal: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(signal, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if x.ndim != 1 or k.ndim != 1 or not x.size or not k.size:
        raise ValueError("signal and kernel must be non-empty 1-D arrays")
    if k.size > x.size:
        raise ValueError(f"the kernel ({k.size}) is longer than the signal ({x.size})")
    return x, k


def convolve1d(signal: np.ndarray, kernel: np.ndarray, mode: str = "full") -> np.ndarray:
    """``np.convolve(signal, kernel, mode)``, written out: zero padding, flipped kernel.

    ``"full"`` pads ``N − 1`` zeros on each side (``M + N − 1`` outputs); ``"same"`` keeps the
    ``M`` centre values of ``"full"``, from index ``(N − 1) // 2``; ``"valid"`` only where the
    kernel fits (``M − N + 1`` outputs).

    Args:
        signal: ``M`` values.
        kernel: ``N ≤ M`` values.
        mode: One of :data:`NUMPY_CONVOLVE_MODES`.
    """
    x, k = _check_1d(signal, kernel)
    if mode not in NUMPY_CONVOLVE_MODES:
        raise ValueError(f"mode must be one of {NUMPY_CONVOLVE_MODES}, got {mode!r}")
    n = k.size
    padded = np.pad(x, n - 1)
    full: np.ndarray = sliding_window_view(padded, n) @ k[::-1]
    if mode == "full":
        return full
    if mode == "same":
        start = (n - 1) // 2
        same: np.ndarray = full[start : start + x.size]
        return same
    valid: np.ndarray = full[n - 1 : x.size]
    return valid


def convolve1d_boundary(signal: np.ndarray, kernel: np.ndarray, boundary: str) -> np.ndarray:
    """``scipy.ndimage.convolve1d(signal, kernel, mode=...)``, written out, for an odd kernel.

    The signal is padded by ``N // 2`` on each side in the boundary mode, then the flipped
    kernel slides over it: the output has as many values as the signal.

    Args:
        signal: ``M`` values.
        kernel: An odd number ``N ≤ M`` of values.
        boundary: One of :data:`BOUNDARIES` (``"zero"`` is scipy's ``"constant"``).
    """
    x, k = _check_1d(signal, kernel)
    if k.size % 2 == 0:
        raise ValueError(f"the kernel needs an odd length to be centred, got {k.size}")
    half = k.size // 2
    padded = pad(x[None], (0, 0), (half, half), boundary)[0]
    return np.asarray(sliding_window_view(padded, k.size) @ k[::-1])


def parse_numbers(text: str) -> np.ndarray:
    """Numbers written with commas or spaces, fractions allowed: ``"1/3, 1/3, 1/3"``.

    Raises:
        ValueError: Something is not a number.
    """
    values = []
    for token in text.replace(",", " ").replace(";", " ").split():
        try:
            if "/" in token:
                numerator, _, denominator = token.partition("/")
                value = float(numerator) / float(denominator)
            else:
                value = float(token)
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{token!r} is not a number") from exc
        if not math.isfinite(value):
            raise ValueError(f"{token!r} is not a finite number")
        values.append(value)
    return np.array(values, dtype=np.float64)
