"""explorer.lab.maths against independent implementations: scipy.ndimage, numpy, torch."""

from __future__ import annotations

import io
import itertools
import math
from typing import Literal

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from explorer.analysis.geometry import output_size, output_size_formula
from explorer.inputs.preprocess import ImageError
from explorer.lab import maths as lab

TORCH_PAD_MODES = {
    "zero": "constant",
    "mirror": "reflect",
    "nearest": "replicate",
    "wrap": "circular",
}
FAST = settings(max_examples=60, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


def torch_conv(
    image: np.ndarray,
    kernel: np.ndarray,
    bias: float,
    stride: int,
    pads: tuple[tuple[int, int], tuple[int, int]],
    boundary: str,
) -> np.ndarray:
    """Torch's conv2d (cross-correlation) after torch's own F.pad in the boundary mode."""
    x = torch.from_numpy(image if image.ndim == 3 else image[None]).double()[None]
    w = torch.from_numpy(kernel if kernel.ndim == 3 else kernel[None]).double()[None]
    (top, bottom), (left, right) = pads
    mode = TORCH_PAD_MODES[boundary]
    if mode == "constant":
        x = F.pad(x, (left, right, top, bottom), mode="constant", value=0.0)
    else:
        x = F.pad(x, (left, right, top, bottom), mode=mode)
    b = torch.tensor([bias], dtype=torch.float64)
    return F.conv2d(x, w, b, stride=stride)[0, 0].numpy()


# --- teaching examples, by hand ---------------------------------------------------------


def test_teaching_binary_with_x_kernel_gives_the_classic_3x3_map() -> None:
    result = lab.correlate2d(lab.teaching_binary(), lab.KERNELS["X (teaching)"])
    np.testing.assert_array_equal(result.output, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert result.formulas()[0] == "⌊(W − F + 2P) / S⌋ + 1 = ⌊(5 − 3 + 2·0) / 1⌋ + 1 = 3"


def test_same_padding_keeps_5x5_and_valid_shrinks_it() -> None:
    image = lab.teaching_binary()
    assert lab.correlate2d(image, np.ones((3, 3)), padding="same").output.shape == (5, 5)
    assert lab.correlate2d(image, np.ones((3, 3)), padding="same").padded.shape == (1, 7, 7)
    assert lab.correlate2d(image, np.ones((3, 3))).output.shape == (3, 3)
    assert lab.correlate2d(image, np.ones((3, 3)), padding="full").output.shape == (7, 7)


def test_box_blur_smooths_the_square() -> None:
    square = lab.teaching_square()
    out = lab.correlate2d(square, lab.KERNELS["box blur (1/9)"], padding="same").output
    assert out[3, 3] == pytest.approx(1.0)  # the centre sees only ones
    assert out[1, 1] == pytest.approx(1 / 9)  # a corner touches one
    assert out[1, 3] == pytest.approx(3 / 9)  # an edge touches three
    assert out[0, 0] == 0.0


def test_step_signal_worked_example() -> None:
    step, third = lab.step_signal(), np.full(3, 1 / 3)
    np.testing.assert_allclose(
        lab.convolve1d(step, third, "valid"), [0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1]
    )
    assert len(lab.convolve1d(step, third, "full")) == 12
    same = lab.convolve1d(step, third, "same")
    assert len(same) == 10 and same[-1] == pytest.approx(2 / 3)
    assert lab.convolve1d_boundary(step, third, "reflect")[-1] == pytest.approx(1.0)
    assert lab.convolve1d_boundary(step, third, "zero")[-1] == pytest.approx(2 / 3)


def test_kernel_presets() -> None:
    assert lab.KERNELS["edge: outline (8-centre)"].sum() == 0
    assert lab.KERNELS["edge: outline (8-centre)"][1, 1] == 8
    for name in ("box blur (1/9)", "Gaussian blur 3×3", "Gaussian blur 5×5"):
        assert lab.KERNELS[name].sum() == pytest.approx(1.0)
    assert lab.KERNELS["Gaussian blur 5×5"].shape == (5, 5)
    image = np.random.default_rng(0).random((9, 9))
    same = lab.correlate2d(image, lab.KERNELS["identity"], padding="same").output
    np.testing.assert_array_equal(same, image)
    np.testing.assert_array_equal(lab.identity_kernel(7)[3], [0, 0, 0, 1, 0, 0, 0])
    with pytest.raises(ValueError):
        lab.identity_kernel(4)
    with pytest.raises(ValueError):
        lab.KERNELS["sharpen"][0, 0] = 1  # read-only: shared by every session


# --- 2-D against scipy and torch --------------------------------------------------------

KERNEL_SIZES = [(1, 1), (2, 2), (3, 3), (2, 3), (4, 4), (5, 5), (3, 5), (7, 7)]
SIZES = [(7, 7), (8, 6), (9, 11)]


@pytest.mark.parametrize(
    ("boundary", "ksize", "stride", "padding"),
    list(
        itertools.product(
            ["zero", "mirror", "nearest", "wrap"],
            KERNEL_SIZES,
            [1, 2, 3, 4],
            ["valid", "same", "full", 2],
        )
    ),
)
def test_every_combination_matches_torch(
    boundary: str, ksize: tuple[int, int], stride: int, padding: str | int
) -> None:
    rng = np.random.default_rng(hash((boundary, ksize, stride, str(padding))) % 2**32)
    for shape in SIZES:
        image = rng.normal(size=shape)
        kernel = rng.normal(size=ksize)
        pads = (
            lab.padding_amounts(shape[0], ksize[0], stride, padding),
            lab.padding_amounts(shape[1], ksize[1], stride, padding),
        )
        if shape[0] + sum(pads[0]) < ksize[0] or shape[1] + sum(pads[1]) < ksize[1]:
            with pytest.raises(ValueError, match="larger than the padded input"):
                lab.correlate2d(image, kernel, 0.5, stride, padding, boundary)
            continue
        widest = max(*pads[0], *pads[1])
        if (boundary == "mirror" and widest >= min(shape)) or (
            boundary == "wrap" and widest > min(shape)
        ):
            continue  # torch's reflect / circular padding cannot reach that far
        result = lab.correlate2d(image, kernel, 0.5, stride, padding, boundary)
        expected = torch_conv(image, kernel, 0.5, stride, pads, boundary)
        np.testing.assert_allclose(result.output, expected, atol=1e-10)
        h, w = result.output.shape
        assert result.formulas()[0].endswith(f"= {h}") and result.formulas()[1].endswith(f"= {w}")


@pytest.mark.parametrize("boundary", lab.BOUNDARIES)
@pytest.mark.parametrize("ksize", [1, 2, 3, 4, 5, 6, 7])
def test_same_padding_stride_1_matches_scipy(boundary: str, ksize: int) -> None:
    """Scipy centres odd kernels as 'same' does; an even one needs origin −1 (extra after)."""
    image = np.random.default_rng(ksize).normal(size=(9, 8))
    kernel = np.random.default_rng(ksize + 1).normal(size=(ksize, ksize))
    origin = 0 if ksize % 2 else -1
    mode = lab.SCIPY_MODES[boundary]
    expected = ndi.correlate(image, kernel, mode=mode, cval=0.0, origin=origin)
    got = lab.correlate2d(image, kernel, padding="same", boundary=boundary).output
    np.testing.assert_allclose(got, expected, atol=1e-10)
    flipped = ndi.convolve(image, kernel, mode=mode, cval=0.0) if ksize % 2 else None
    if flipped is not None:
        np.testing.assert_allclose(
            lab.correlate2d(image, lab.flip(kernel), padding="same", boundary=boundary).output,
            flipped,
            atol=1e-10,
        )


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("ksize", [1, 2, 3, 4, 5])
def test_same_padding_matches_torch_padding_same(ksize: int) -> None:
    image = np.random.default_rng(3).normal(size=(6, 7))
    kernel = np.random.default_rng(4).normal(size=(ksize, ksize))
    x = torch.from_numpy(image)[None, None]
    w = torch.from_numpy(kernel)[None, None]
    expected = F.conv2d(x, w, padding="same")[0, 0].numpy()
    np.testing.assert_allclose(lab.correlate2d(image, kernel, padding="same").output, expected)


def test_rgb_depth_sums_every_channel_into_one_map() -> None:
    rng = np.random.default_rng(5)
    image, kernel = rng.normal(size=(3, 6, 6)), rng.normal(size=(3, 3, 3))
    result = lab.correlate2d(image, kernel, bias=1.5, stride=2, padding=1)
    expected = F.conv2d(
        torch.from_numpy(image)[None],
        torch.from_numpy(kernel)[None],
        torch.tensor([1.5], dtype=torch.float64),
        stride=2,
        padding=1,
    )[0, 0]
    np.testing.assert_allclose(result.output, expected.numpy())
    step = result.step(1, 2)
    assert step.patch.shape == (3, 3, 3)
    assert step.value == pytest.approx(result.output[1, 2])
    # a 2-D kernel on a 3-channel image is the same kernel on every channel
    same_kernel = lab.correlate2d(image, kernel[0]).output
    np.testing.assert_allclose(
        same_kernel, lab.correlate2d(image, np.stack([kernel[0]] * 3)).output
    )


@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 6),
    kw=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.sampled_from(["valid", "same", "full", 0, 1, 2, 3]),
    boundary=st.sampled_from(["zero", "nearest", "wrap"]),
    bias=finite,
    seed=st.integers(0, 2**16),
)
@FAST
def test_property_matches_torch(
    h: int,
    w: int,
    kh: int,
    kw: int,
    stride: int,
    padding: str | int,
    boundary: str,
    bias: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    image, kernel = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    pads = (
        lab.padding_amounts(h, kh, stride, padding),
        lab.padding_amounts(w, kw, stride, padding),
    )
    if h + sum(pads[0]) < kh or w + sum(pads[1]) < kw:
        with pytest.raises(ValueError, match="larger than the padded input"):
            lab.correlate2d(image, kernel, bias, stride, padding, boundary)
        return
    if boundary == "wrap" and max(*pads[0], *pads[1]) > min(h, w):
        return  # torch's circular padding wraps at most once
    result = lab.correlate2d(image, kernel, bias, stride, padding, boundary)
    expected = torch_conv(image, kernel, bias, stride, pads, boundary)
    np.testing.assert_allclose(result.output, expected, atol=1e-9)
    # the formula's number is the real shape
    out_h, out_w = result.output.shape
    assert result.formulas() == (
        output_size_formula(h, kh, stride, pads[0]),
        output_size_formula(w, kw, stride, pads[1]),
    )
    assert result.formulas()[0].endswith(f"= {out_h}")
    assert result.formulas()[1].endswith(f"= {out_w}")
    if padding == "same":
        assert (out_h, out_w) == (math.ceil(h / stride), math.ceil(w / stride))
    # every step-through sum is the output value
    row, col = rng.integers(out_h), rng.integers(out_w)
    step = result.step(int(row), int(col))
    assert step.value == pytest.approx(result.output[row, col], abs=1e-9)
    assert step.products.shape == (1, kh, kw)


@given(
    h=st.integers(2, 10),
    w=st.integers(2, 10),
    k=st.sampled_from([1, 3, 5]),
    boundary=st.sampled_from(lab.BOUNDARIES),
    seed=st.integers(0, 2**16),
)
@FAST
def test_property_full_resolution_matches_scipy(
    h: int, w: int, k: int, boundary: str, seed: int
) -> None:
    """Scipy handles padding wider than the input too (reflect repeats, wrap wraps)."""
    rng = np.random.default_rng(seed)
    image, kernel = rng.normal(size=(h, w)), rng.normal(size=(k, k))
    mode = lab.SCIPY_MODES[boundary]
    got = lab.correlate2d(image, kernel, padding="same", boundary=boundary).output
    np.testing.assert_allclose(got, ndi.correlate(image, kernel, mode=mode), atol=1e-9)
    got = lab.correlate2d(image, lab.flip(kernel), padding="same", boundary=boundary).output
    np.testing.assert_allclose(got, ndi.convolve(image, kernel, mode=mode), atol=1e-9)


def test_flip_shows_where_convolution_differs() -> None:
    image = np.random.default_rng(7).random((6, 6))
    sobel = lab.KERNELS["Sobel x"]
    assert not lab.is_flip_symmetric(sobel)
    corr = lab.correlate2d(image, sobel).output
    conv = lab.correlate2d(image, lab.flip(sobel)).output
    np.testing.assert_allclose(conv, -corr)  # Sobel x flipped is −Sobel x
    assert lab.is_flip_symmetric(lab.KERNELS["box blur (1/9)"])
    np.testing.assert_array_equal(lab.flip(sobel), sobel[::-1, ::-1])
    np.testing.assert_allclose(
        lab.correlate2d(image, lab.flip(sobel)).output,
        ndi.convolve(image, sobel, mode="constant")[1:-1, 1:-1],
    )


def test_step_is_located_in_input_coordinates() -> None:
    image = np.arange(25, dtype=float).reshape(5, 5)
    result = lab.correlate2d(image, np.ones((3, 3)), bias=2.0, stride=2, padding=1)
    step = result.step(0, 0)
    assert (step.top, step.left) == (-1, -1)
    np.testing.assert_array_equal(step.patch[0], [[0, 0, 0], [0, 0, 1], [0, 5, 6]])
    assert step.total == 12.0 and step.value == 14.0 == result.output[0, 0]
    assert step.equation() == "0·1 + 0·1 + 0·1 + 0·1 + 0·1 + 1·1 + 0·1 + 5·1 + 6·1 = 12.0000"
    assert lab.correlate2d(-image, np.ones((1, 1))).step(0, 1).equation() == "(-1)·1 = -1.0000"
    assert lab.correlate2d(image, np.ones((7, 7)), padding=3).step(0, 0).equation() is None
    step = result.step(2, 1)
    assert (step.top, step.left) == (3, 1)
    with pytest.raises(IndexError):
        result.step(3, 0)


@pytest.mark.parametrize(
    ("w", "f", "p", "s", "text"),
    [
        (7, 3, 1, 2, "⌊(W − F + 2P) / S⌋ + 1 = ⌊(7 − 3 + 2·1) / 2⌋ + 1 = 4"),
        (32, 5, 2, 1, "⌊(W − F + 2P) / S⌋ + 1 = ⌊(32 − 5 + 2·2) / 1⌋ + 1 = 32"),
        (8, 3, (0, 1), 2, "⌊(W − F + P₁ + P₂) / S⌋ + 1 = ⌊(8 − 3 + 0 + 1) / 2⌋ + 1 = 4"),
    ],
)
def test_output_size_formula(w: int, f: int, p: int | tuple[int, int], s: int, text: str) -> None:
    assert output_size_formula(w, f, s, p) == text


@given(w=st.integers(1, 64), f=st.integers(1, 9), s=st.integers(1, 5))
@FAST
def test_property_padding_modes(w: int, f: int, s: int) -> None:
    before, after = lab.padding_amounts(w, f, s, "same")
    assert after - before in (0, 1)
    assert output_size(w, f, s, (before, after)) == math.ceil(w / s)
    assert lab.padding_amounts(w, f, s, "full") == (f - 1, f - 1)
    assert output_size(w, f, s, f - 1) == (w + f - 2) // s + 1
    if f <= w:
        assert output_size(w, f, s) == (w - f) // s + 1
    else:
        with pytest.raises(ValueError):
            output_size(w, f, s)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        lab.padding_amounts(5, 3, 1, "bogus")
    with pytest.raises(ValueError):
        lab.padding_amounts(5, 3, 1, -1)
    with pytest.raises(ValueError):
        lab.correlate2d(np.ones((5, 5)), np.ones((3, 3)), boundary="bogus")
    with pytest.raises(ValueError):
        lab.correlate2d(np.ones((5, 5)), np.ones((3, 3)), stride=0)
    with pytest.raises(ValueError):
        lab.correlate2d(np.ones((2, 5, 5)), np.ones((3, 3, 3)))
    with pytest.raises(ValueError):
        lab.correlate2d(np.ones(5), np.ones(3))


# --- activation and pooling -------------------------------------------------------------


@given(values=arrays(np.float64, st.integers(1, 30), elements=st.floats(-50, 50)))
@FAST
def test_property_activations_match_torch(values: np.ndarray) -> None:
    t = torch.from_numpy(values)
    np.testing.assert_array_equal(lab.activate(values, "none"), values)
    np.testing.assert_array_equal(lab.activate(values, "relu"), F.relu(t).numpy())
    np.testing.assert_allclose(
        lab.activate(values, "leaky_relu", 0.1), F.leaky_relu(t, 0.1).numpy()
    )
    np.testing.assert_allclose(lab.activate(values, "tanh"), torch.tanh(t).numpy())
    np.testing.assert_allclose(lab.activate(values, "sigmoid"), torch.sigmoid(t).numpy())


def test_count_negative_ignores_float_noise() -> None:
    assert lab.count_negative(np.array([-1e-16, 0.0, -0.5, 2.0, -1e-3])) == 2


def test_activation_names() -> None:
    for name in lab.ACTIVATIONS:
        assert lab.activation_formula(name).startswith("f(x)")
    with pytest.raises(ValueError):
        lab.activate(np.ones(3), "gelu")


@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    size=st.integers(1, 4),
    stride=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
@FAST
def test_property_pooling_matches_torch(h: int, w: int, size: int, stride: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(h, w))
    if size > min(h, w):
        with pytest.raises(ValueError):
            lab.pool2d(x, size, stride)
        return
    t = torch.from_numpy(x)[None, None]
    pooled, indices = F.max_pool2d(t, size, stride, return_indices=True)
    result = lab.pool2d(x, size, stride, "max")
    np.testing.assert_array_equal(result.output, pooled[0, 0].numpy())
    average = F.avg_pool2d(t, size, stride)[0, 0].numpy()
    np.testing.assert_allclose(lab.pool2d(x, size, stride, "average").output, average)
    np.testing.assert_allclose(lab.pool2d(x, size, stride, "sum").output, average * size * size)
    out_h, out_w = result.output.shape
    assert result.formulas()[0].endswith(f"= {out_h}")
    for row, col in itertools.product(range(out_h), range(out_w)):
        window = result.window(row, col)
        assert window.winner is not None
        assert window.winner == divmod(int(indices[0, 0, row, col]), w)
        assert x[window.winner] == window.value == window.values.max()


def test_pool_window_of_average_has_no_winner() -> None:
    x = np.arange(16, dtype=float).reshape(4, 4)
    result = lab.pool2d(x, 2, mode="average")
    window = result.window(1, 0)
    assert window.winner is None and (window.top, window.left) == (2, 0)
    assert window.value == pytest.approx(np.mean([8, 9, 12, 13]))
    assert lab.pool2d(x, 2, mode="max").window(1, 1).winner == (3, 3)
    with pytest.raises(ValueError):
        lab.pool2d(x, 2, mode="median")


def test_classic_pipeline_shapes() -> None:
    photo = np.random.default_rng(0).random((300, 300))
    conv = lab.correlate2d(photo, lab.KERNELS["edge: outline (8-centre)"], padding="same")
    rectified = lab.activate(conv.output, "relu")
    pooled = lab.pool2d(rectified, 2, 2, "max")
    assert conv.output.shape == rectified.shape == (300, 300)
    assert pooled.output.shape == (150, 150)
    expected = F.max_pool2d(
        F.relu(
            F.conv2d(
                torch.from_numpy(photo)[None, None],
                torch.from_numpy(lab.KERNELS["edge: outline (8-centre)"].copy())[None, None],
                padding="same",
            )
        ),
        2,
    )
    np.testing.assert_allclose(pooled.output, expected[0, 0].numpy(), atol=1e-12)


# --- 1-D ---------------------------------------------------------------------------------


@given(
    signal=arrays(np.float64, st.integers(1, 20), elements=finite),
    kernel=arrays(np.float64, st.integers(1, 7), elements=finite),
    mode=st.sampled_from(lab.NUMPY_CONVOLVE_MODES),
)
@FAST
def test_property_convolve1d_matches_numpy(
    signal: np.ndarray, kernel: np.ndarray, mode: Literal["full", "same", "valid"]
) -> None:
    if len(kernel) > len(signal):
        with pytest.raises(ValueError):
            lab.convolve1d(signal, kernel, mode)
        return
    np.testing.assert_allclose(
        lab.convolve1d(signal, kernel, mode), np.convolve(signal, kernel, mode), atol=1e-9
    )


@given(
    signal=arrays(np.float64, st.integers(1, 20), elements=finite),
    half=st.integers(0, 3),
    boundary=st.sampled_from(lab.BOUNDARIES),
    seed=st.integers(0, 2**16),
)
@FAST
def test_property_boundary_modes_match_scipy(
    signal: np.ndarray, half: int, boundary: str, seed: int
) -> None:
    kernel = np.random.default_rng(seed).normal(size=2 * half + 1)
    if len(kernel) > len(signal):
        return
    expected = ndi.convolve1d(signal, kernel, mode=lab.SCIPY_MODES[boundary])
    got = lab.convolve1d_boundary(signal, kernel, boundary)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    np.testing.assert_allclose(
        got, ndi.convolve(signal, kernel, mode=lab.SCIPY_MODES[boundary]), atol=1e-9
    )


def test_even_kernel_is_refused_for_boundary_modes() -> None:
    with pytest.raises(ValueError, match="odd"):
        lab.convolve1d_boundary(lab.step_signal(), np.ones(2), "zero")


def test_parse_numbers() -> None:
    np.testing.assert_allclose(lab.parse_numbers("1/3, 1/3 1/3"), [1 / 3] * 3)
    np.testing.assert_allclose(lab.parse_numbers("-1; 0;1.5"), [-1, 0, 1.5])
    for bad in ("a, 1", "1/0", "inf"):
        with pytest.raises(ValueError):
            lab.parse_numbers(bad)


# --- images ------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_prepare_image_channels_and_sizes() -> None:
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    data = _png(Image.fromarray(rgb))
    gray = lab.prepare_image(data, side=30)
    assert gray.shape == (30, 30)
    assert gray[5, 5] == pytest.approx((0.299 * 255 + 0.587 * 128) / 255, abs=1e-6)
    assert lab.prepare_image(data, side=30, channel="red")[0, 0] == pytest.approx(1.0)
    assert lab.prepare_image(data, side=30, channel="blue").max() == 0.0
    assert lab.prepare_image(data, side=30, channel="rgb").shape == (3, 30, 30)
    assert lab.prepare_image(data, side=30, square=False).shape == (20, 30)
    assert lab.prepare_image(data, side=300, square=False).shape == (40, 60)  # never enlarged
    with pytest.raises(ImageError):
        lab.prepare_image(b"not an image")
    with pytest.raises(ValueError):
        lab.prepare_image(data, channel="alpha")  # type: ignore[arg-type]
