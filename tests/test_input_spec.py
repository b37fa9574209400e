"""One input pipeline: the spec's numbers equal numpy's, and every caller's tensors are unchanged.

Each "before" below is the formula a call site wrote out before it used
:class:`~explorer.inputs.spec.InputSpec`, copied here so the tensors can be compared bit for bit.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision.transforms import functional as TF

from explorer.analysis.experiment import to_input
from explorer.analysis.visualize import ParameterisedImage
from explorer.assets import DIGITS_DIR, PHOTOS_DIR
from explorer.inputs.preprocess import preprocess_digit, preprocess_input, to_rgb
from explorer.inputs.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MNIST_MEAN,
    MNIST_STD,
    InputSpec,
    InputSpecError,
    digit_spec,
    photo_spec,
    rgb_luma,
)
from explorer.models.own import own_loaded_model
from explorer.models.zoo import ZOO, Family, ModelSpec, Source, load_model, zoo_table
from explorer.views.attribution import black_input

RNG = np.random.default_rng(0)
EVERY_BYTE = np.arange(256, dtype=np.uint8).reshape(16, 16)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and dtypes, and every element the same bits."""
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def test_normalise_is_numpys_formula_at_the_pixels_precision() -> None:
    spec = InputSpec(3, 4, 5, IMAGENET_MEAN, IMAGENET_STD)
    picture = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    mean = np.array(IMAGENET_MEAN).reshape(3, 1, 1)
    std = np.array(IMAGENET_STD).reshape(3, 1, 1)
    planes = picture.transpose(2, 0, 1)
    single = (planes.astype(np.float32) / 255 - mean.astype(np.float32)) / std.astype(np.float32)
    double = ((planes / 255.0 - mean) / std).astype(np.float32)
    assert np.array_equal(spec.from_picture(picture)[0].numpy(), single)
    assert np.array_equal(spec.from_picture(picture, torch.float64)[0].numpy(), double)


def test_to_picture_undoes_from_picture() -> None:
    for spec, picture in (
        (photo_spec(4, 5), RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)),
        (digit_spec(), RNG.integers(0, 256, (28, 28), dtype=np.uint8)),
        (InputSpec(1, 16, 16), EVERY_BYTE),
    ):
        assert np.array_equal(spec.to_picture(spec.from_picture(picture)), picture)


def test_spec_checks_and_defaults() -> None:
    assert digit_spec(32).normalisation == ((MNIST_MEAN,), (MNIST_STD,))
    assert InputSpec(3, 8, 8).normalisation == ((0.0,) * 3, (1.0,) * 3)
    with pytest.raises(InputSpecError, match="28×28 or 32×32"):
        digit_spec(30)
    with pytest.raises(InputSpecError, match="positive"):
        InputSpec(1, 8, 8, (0.0,), (0.0,)).check()


def test_preprocess_digit_is_bit_identical_to_before() -> None:
    for side in (28, 32):
        prepared = preprocess_digit(DIGITS_DIR / "3_0.png", size=side)
        before = (prepared.display.astype(np.float64) / 255.0 - MNIST_MEAN) / MNIST_STD
        expected = torch.from_numpy(before.astype(np.float32)).reshape(1, 1, side, side)
        assert same_bits(prepared.tensor, expected)
    small = preprocess_digit(DIGITS_DIR / "3_0.png").display
    assert np.array_equal(
        preprocess_digit(DIGITS_DIR / "3_0.png", size=32).display, np.pad(small, 2)
    )


def test_experiment_to_input_is_bit_identical_to_before() -> None:
    for picture, mean, std in (
        (RNG.integers(0, 256, (28, 28), dtype=np.uint8), (MNIST_MEAN,), (MNIST_STD,)),
        (RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8), IMAGENET_MEAN, IMAGENET_STD),
    ):
        pixels = torch.from_numpy(picture.astype(np.float32) / 255.0)
        pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        assert same_bits(to_input(picture, mean, std), ((pixels - mean_t) / std_t)[None])


def test_training_digits_are_bit_identical_to_before() -> None:
    pixels = torch.from_numpy(RNG.integers(0, 256, (4, 1, 28, 28)).astype(np.float32) / 255)
    assert same_bits(digit_spec(28).digit_batch(pixels), (pixels - MNIST_MEAN) / MNIST_STD)
    padded = F.pad(pixels, (2, 2, 2, 2))
    assert same_bits(digit_spec(32).digit_batch(pixels), (padded - MNIST_MEAN) / MNIST_STD)


def test_an_own_models_fitted_input_is_bit_identical_to_before() -> None:
    photo = sorted(PHOTOS_DIR.glob("*.jpg"))[0]
    for spec in (
        InputSpec(3, 40, 56, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
        InputSpec(1, 33, 21),
    ):
        prepared = preprocess_input(photo, spec)
        with Image.open(photo) as image:
            fitted = ImageOps.fit(
                to_rgb(image), (spec.width, spec.height), Image.Resampling.BILINEAR
            )
        if spec.channels == 1:
            fitted = fitted.convert("L")
        mean, std = spec.normalisation
        before = TF.normalize(TF.to_tensor(fitted), list(mean), list(std))[None]
        assert same_bits(prepared.tensor, before)


def test_a_zoo_photo_is_prepared_as_before_and_its_spec_is_its_weights() -> None:
    from torchvision.models import get_model_weights

    loaded = load_model("squeezenet1_1", "untrained", "cpu")
    photo = sorted(PHOTOS_DIR.glob("*.jpg"))[0]
    prepared = loaded.prepare(photo)
    transform = get_model_weights("squeezenet1_1").DEFAULT.transforms()
    with Image.open(photo) as image:
        assert same_bits(prepared.tensor, transform(to_rgb(image))[None])
    mean_t = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std_t = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
    pixels = (prepared.tensor[0] * std_t + mean_t).clamp(0.0, 1.0).mul(255.0).round()
    assert np.array_equal(prepared.display, pixels.to(torch.uint8).permute(1, 2, 0).numpy())
    for spec in ZOO.values():
        if spec.family == Family.PHOTO:
            weights = get_model_weights(spec.torchvision_name or "alexnet").DEFAULT.transforms()
            assert spec.input_spec.normalisation == (tuple(weights.mean), tuple(weights.std))
            assert spec.input_spec.shape == (3, *weights.crop_size * 2)


def test_black_and_visualised_inputs_are_bit_identical_to_before() -> None:
    lenet = load_model("lenet5", "untrained", "cpu")
    prepared = lenet.prepare(DIGITS_DIR / "3_0.png")
    before = torch.tensor([(0.0 - MNIST_MEAN) / MNIST_STD], dtype=torch.float32).view(1, 1, 1, 1)
    assert same_bits(black_input(lenet, prepared), before)
    image = ParameterisedImage(
        (3, 6, 6), IMAGENET_MEAN, IMAGENET_STD, True, torch.Generator().manual_seed(0)
    )
    pixels = image.pixels()
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, -1, 1, 1)
    assert same_bits(image.model_input(pixels), (pixels - mean) / std)


def test_luma_weights_are_pillows() -> None:
    rgb = RNG.integers(0, 256, (5, 5, 3)).astype(np.float64) / 255
    assert np.array_equal(rgb_luma(rgb), rgb @ np.array([0.299, 0.587, 0.114]))
    single = rgb.astype(np.float32)
    expected = single @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    assert np.array_equal(rgb_luma(single, np.float32), expected)


def test_families_and_sources_are_enums_that_read_as_their_words() -> None:
    spec = ModelSpec("x", "X", "digit", (1, 28, 28), 0, "", "trained")  # type: ignore[arg-type]
    assert spec.family == "digit" and f"{spec.source}" == "trained"
    assert spec.family is Family.DIGIT and spec.source is Source.TRAINED
    assert ZOO["lenet5"].source is Source.SHIPPED and ZOO["zfnet"].source is Source.PAPER
    assert json.loads(json.dumps(zoo_table()))[0]["family"] == "digit"


def test_an_own_models_spec_is_its_loaded_models_input() -> None:
    spec = InputSpec(3, 16, 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 2)).eval()
    loaded = own_loaded_model(module, "m.onnx", "ONNX", spec, ("a", "b"), "d")
    assert loaded.input_spec is spec and loaded.spec.source is Source.OWN
    assert loaded.normalisation == ((0.5,) * 3, (0.25,) * 3)
    labels = hashlib.sha256(b"a\nb").hexdigest()[:16]
    assert loaded.cache_key == f"own:m.onnx|m.onnx|d:{spec}:{labels}"
    renamed = own_loaded_model(module, "m.onnx", "ONNX", spec, ("cat", "dog"), "d")
    assert renamed.cache_key != loaded.cache_key  # other class names: other answers
