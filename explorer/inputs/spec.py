"""What a model takes as input, and the one way pixels become it (and back).

An :class:`InputSpec` says a model's input shape, its layout (the MNIST recipe for the digit
nets, a fitted picture for the others) and the per-channel mean and standard deviation it was
trained with. :meth:`InputSpec.normalise` is the one place ``(pixels − mean) / std`` is
written; :meth:`InputSpec.from_picture` and :meth:`InputSpec.to_picture` go between a
``uint8`` picture and the model's tensor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

MNIST_MEAN = 0.1307
"""MNIST's mean pixel (0…1 scale): the digit nets' normalisation."""
MNIST_STD = 0.3081
"""MNIST's pixel standard deviation (0…1 scale)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's per-channel mean (RGB, 0…1 scale), as torchvision's weights use it."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's per-channel standard deviation (RGB)."""
MNIST_SIDE = 28
"""The side of an MNIST digit's field."""
DIGIT_SIDES = (28, 32)
"""Sides a digit input may have: 32 is the 28×28 layout zero-padded by 2 px (Harley's net)."""
LUMA_601 = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G and B, as Pillow's ``"L"`` conversion uses them."""


class InputSpecError(ValueError):
    """Input settings that do not describe a usable input (a message for the user)."""


@dataclass(frozen=True)
class InputSpec:
    """What a model takes and how a picture is turned into it.

    Attributes:
        channels: 1 (grayscale) or 3 (RGB).
        height: Input height in pixels.
        width: Input width in pixels.
        mean: Per-channel mean subtracted after scaling to 0…1; ``None``: no normalisation.
            A digit layout always uses MNIST's.
        std: Per-channel standard deviation divided by; ``None`` as ``mean``.
        digit: Lay the input out like MNIST (ink map, 20-px box, centre of mass in the
            middle, 32×32 padded by 2 px) instead of fitting a picture to the input.
    """

    channels: int
    height: int
    width: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    digit: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)``."""
        return self.channels, self.height, self.width

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ``(mean, std)`` per channel the input is normalised with."""
        if self.digit:  # the digit nets' recipe includes MNIST's numbers
            return (MNIST_MEAN,), (MNIST_STD,)
        if self.mean is not None and self.std is not None:
            return tuple(map(float, self.mean)), tuple(map(float, self.std))
        return (0.0,) * self.channels, (1.0,) * self.channels

    def check(self) -> None:
        """Refuse settings no model here can take.

        Raises:
            InputSpecError: Channels, size, mean/std or the digit layout do not fit.
        """
        if self.channels not in (1, 3):
            raise InputSpecError(f"the input must have 1 or 3 channels, not {self.channels}")
        if not (8 <= self.height <= 1024 and 8 <= self.width <= 1024):
            raise InputSpecError(
                f"the input must be 8…1024 pixels a side, not {self.height}×{self.width}"
            )
        if (self.mean is None) != (self.std is None):
            raise InputSpecError("give both the mean and the std, or neither")
        for values in (self.mean, self.std):
            if values is not None and len(values) != self.channels:
                raise InputSpecError(f"the mean and std need {self.channels} value(s) each")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise InputSpecError("every std must be positive")
        if self.digit and (
            self.channels != 1 or self.height != self.width or self.height not in DIGIT_SIDES
        ):
            raise InputSpecError(
                "the digit preprocessing (MNIST's layout) is for 1-channel models of 28×28 or "
                "32×32 inputs"
            )

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(pixels − mean) / std`` per channel, as float32.

        Args:
            pixels: ``(…, C, H, W)`` floating pixels in 0…1. The arithmetic runs at their
                precision and on their device (float64 pixels: a correctly rounded result).
        """
        mean_t, std_t = _channel_stats(*self.normalisation, pixels.dtype, pixels.device)
        return ((pixels - mean_t) / std_t).to(torch.float32)

    def from_picture(
        self, picture: np.ndarray, precision: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """A ``uint8`` picture (``(H, W)`` or ``(H, W, C)``) as the ``(1, C, H, W)`` input.

        Args:
            picture: The picture the model sees, 0…255.
            precision: What ``picture / 255`` and the normalisation are computed in.
        """
        as_float = np.float64 if precision == torch.float64 else np.float32
        pixels = torch.from_numpy(np.asarray(picture).astype(as_float)).to(precision) / 255.0
        pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        return self.normalise(pixels)[None].contiguous()

    def to_picture(self, tensor: torch.Tensor) -> np.ndarray:
        """The ``uint8`` picture of a ``(1, C, H, W)`` input: ``(H, W)`` or ``(H, W, C)``."""
        mean, std = self.normalisation
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        pixels = (tensor[0].detach().cpu() * std_t + mean_t).clamp(0.0, 1.0).mul(255.0).round()
        picture = pixels.to(torch.uint8).permute(1, 2, 0).numpy()
        return np.ascontiguousarray(picture[..., 0] if picture.shape[-1] == 1 else picture)

    def digit_field(self, layout: np.ndarray) -> np.ndarray:
        """A 28×28 MNIST layout in this digit input's field (zero-padded to 32×32 for Harley's)."""
        pad = (self.height - MNIST_SIDE) // 2
        return np.pad(layout, pad) if pad > 0 else layout

    def digit_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 28, 28)`` digits in 0…1 (white on black) as this digit input, normalised."""
        pad = (self.height - MNIST_SIDE) // 2
        if pad > 0:
            pixels = torch.nn.functional.pad(pixels, (pad,) * 4)
        return self.normalise(pixels)

    def fit(self, image: Image.Image) -> np.ndarray:
        """An RGB picture resized and centre-cropped to this input, as ``uint8`` pixels."""
        fitted = ImageOps.fit(image, (self.width, self.height), Image.Resampling.BILINEAR)
        if self.channels == 1:
            fitted = fitted.convert("L")
        return np.asarray(fitted)


def digit_spec(side: int = MNIST_SIDE) -> InputSpec:
    """The input of a digit net of ``side``×``side`` (28 or 32): MNIST's layout and numbers.

    Raises:
        InputSpecError: Another side.
    """
    spec = InputSpec(1, side, side, digit=True)
    spec.check()
    return spec


def photo_spec(height: int = 224, width: int = 224) -> InputSpec:
    """The input of an ImageNet net: RGB, normalised with ImageNet's mean and std."""
    return InputSpec(3, height, width, IMAGENET_MEAN, IMAGENET_STD)


def rgb_luma(rgb: np.ndarray, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """ITU-R 601 luma of ``(…, 3)`` RGB values, computed in ``dtype``."""
    weights: np.ndarray = np.array(LUMA_601, dtype=dtype)
    result: np.ndarray = rgb @ weights
    return result


@functools.lru_cache(maxsize=64)
def _channel_stats(
    mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as ``(C, 1, 1)`` tensors, made once per precision and device.

    An optimisation loop normalises every step: no host-to-device copy each time.
    """
    as_tensor = functools.partial(torch.tensor, dtype=dtype, device=device)
    return as_tensor(mean).view(-1, 1, 1), as_tensor(std).view(-1, 1, 1)
