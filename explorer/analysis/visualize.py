"""What does a channel look for? Feature visualisation, and the inputs that excite it most.

Feature visualisation follows the recipe of Olah, Mordvintsev & Schubert, "Feature
Visualization" (Distill, 2017) and their Lucid library: gradient ascent on the input to
raise a channel's mean activation, the image seen through random transforms at every step so
that only what survives jitter, scaling and rotation grows (no adversarial pixel noise). Photo
models optimise a Fourier parameterisation, its spectrum scaled by 1/frequency and its colours
decorrelated with ImageNet's colour correlation (Lucid's ``fft_image`` and
``to_valid_rgb``), squashed to 0…1 by a sigmoid; digit models optimise the pixels themselves
(through a sigmoid), jittered by a pixel or two. Written by hand: Lucent, the PyTorch port, is
not maintained. Like attribution, it runs on a private copy of the shared model
(:func:`explorer.analysis.attribution.private_copy`) and never under ``inference_mode``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.analysis.attribution import private_copy
from explorer.inputs.spec import InputSpec

Progress = Callable[[float], None]

# Lucid's ImageNet colour correlation, its columns scaled to unit norm (to_valid_rgb).
_COLOUR_CORRELATION = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32
)
_COLOUR_SQRT = _COLOUR_CORRELATION / _COLOUR_CORRELATION.norm(dim=0).max()
SCALES = (1.0, 0.975, 1.025, 0.95, 1.05)
"""Lucid's standard random scales."""


class VisualizeError(ValueError):
    """A layer or channel that does not exist (a message for the user)."""


@dataclass(frozen=True)
class Visualization:
    """An input that a channel responds to strongly.

    Attributes:
        input: ``(1, C, H, W)`` float32, normalised as the model expects.
        picture: The same as a ``uint8`` picture ``(H, W)`` or ``(H, W, 3)``.
        start_activation: The channel's mean activation on the start image.
        activation: Its mean activation on the result.
        history: The objective at every step.
    """

    input: torch.Tensor
    picture: np.ndarray
    start_activation: float
    activation: float
    history: tuple[float, ...]


def layer_module(model: nn.Module, layer: str) -> nn.Module:
    """The module called ``layer`` (a name from ``model.named_modules()``)."""
    modules = dict(model.named_modules())
    if not layer or layer not in modules:
        raise VisualizeError(f"no layer named {layer!r} in this model")
    module: nn.Module = modules[layer]
    return module


class _Reached(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not needed."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


_STOPS: weakref.WeakSet[nn.Module] = weakref.WeakSet()
"""Layers of private copies that already stop their copy's forward pass."""


def _output_of(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """``layer``'s output for ``x``, running the model only as far as that layer.

    ``model`` must be a private copy: a hook is left on it.
    """
    module = layer_module(model, layer)
    if module not in _STOPS:

        def stop(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            raise _Reached(output)

        module.register_forward_hook(stop)
        _STOPS.add(module)
    try:
        model(x)
    except _Reached as reached:
        return reached.output
    raise VisualizeError(f"{layer!r} did not run on this input")


def channel_activations(
    model: nn.Module, layer: str, x: torch.Tensor, channel: int | None = None
) -> torch.Tensor:
    """``layer``'s output for a batch ``x`` (or one channel of it), from a private copy."""
    device = next(iter(model.parameters()), torch.zeros(0)).device
    out = _output_of(private_copy(model), layer, x.to(device))
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise VisualizeError(f"{layer!r} has no channels of maps to look at")
    if channel is None:
        return out
    if not 0 <= channel < out.shape[1]:
        raise VisualizeError(f"{layer!r} has {out.shape[1]} channels, not {channel + 1}")
    return out[:, channel]


class ParameterisedImage:
    """The parameterised image being optimised, and how to turn it into model input."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        mean: Sequence[float],
        std: Sequence[float],
        fourier: bool,
        generator: torch.Generator,
        device: torch.device | None = None,
    ) -> None:
        c, h, w = shape
        self.shape, self.fourier = shape, fourier
        self.input = InputSpec(c, h, w, tuple(mean), tuple(std))
        # Drawn on the CPU (the seeded generator), then moved to the model's device.
        if fourier:
            fy = torch.fft.fftfreq(h)[:, None]
            fx = torch.fft.rfftfreq(w)[None, :]
            frequency = torch.sqrt(fx * fx + fy * fy)
            scale = 1.0 / torch.clamp(frequency, min=1.0 / max(h, w)) / max(h, w)
            self.scale = scale.to(device)
            start = 0.01 * torch.randn((c, h, w // 2 + 1, 2), generator=generator)
        else:
            start = 0.1 * torch.randn(1, c, h, w, generator=generator)
        self.param = start.to(device).requires_grad_(True)

    def pixels(self) -> torch.Tensor:
        """The image in 0…1, ``(1, C, H, W)``."""
        c, h, w = self.shape
        if not self.fourier:
            return torch.sigmoid(self.param)
        spectrum = torch.view_as_complex(self.param) * self.scale
        image = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")[None] * 4.0
        if c == 3:  # decorrelate colours (Lucid's to_valid_rgb)
            image = torch.einsum("bchw,dc->bdhw", image, _COLOUR_SQRT.to(image.device))
        return torch.sigmoid(image)

    def model_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels normalised as the model expects."""
        return self.input.normalise(pixels)


def _transform(pixels: torch.Tensor, generator: torch.Generator, digit: bool) -> torch.Tensor:
    """Lucid's robustness transforms: pad, jitter, random scale and rotation, jitter, crop."""
    h, w = pixels.shape[-2:]

    def integer(limit: int) -> int:
        return int(torch.randint(-limit, limit + 1, (1,), generator=generator))

    if digit:
        return torch.roll(pixels, shifts=(integer(1), integer(1)), dims=(-2, -1))
    pad = max(2, h // 14)
    padded = F.pad(pixels, (pad,) * 4, mode="reflect")
    padded = torch.roll(padded, shifts=(integer(pad // 2), integer(pad // 2)), dims=(-2, -1))
    scale = SCALES[int(torch.randint(len(SCALES), (1,), generator=generator))]
    angle = math.radians(int(torch.randint(-5, 6, (1,), generator=generator)))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor(
        [[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=pixels.dtype, device=pixels.device
    )
    grid = F.affine_grid(theta, list(padded.shape), align_corners=False)
    warped = F.grid_sample(padded, grid, padding_mode="reflection", align_corners=False)
    warped = torch.roll(warped, shifts=(integer(pad // 4), integer(pad // 4)), dims=(-2, -1))
    return warped[..., pad : pad + h, pad : pad + w]


def _objective(
    twin: nn.Module,
    layer: str,
    channel: int,
    unit: tuple[int, int] | None,
    image: ParameterisedImage,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """What :func:`visualize` raises: a channel's mean, one of its units, or a class logit."""

    def objective(pixels: torch.Tensor) -> torch.Tensor:
        x = image.model_input(pixels)
        if not layer:  # the class logit
            logits: torch.Tensor = twin(x)
            if not 0 <= channel < logits.shape[1]:
                raise VisualizeError(f"the model has {logits.shape[1]} classes, not {channel + 1}")
            return logits[:, channel].mean()
        out = _output_of(twin, layer, x)
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or not 0 <= channel < out.shape[1]:
            raise VisualizeError(f"{layer!r} has no map channel {channel}")
        if unit is None:
            return out[:, channel].mean()
        y, x_ = unit
        if not (0 <= y < out.shape[2] and 0 <= x_ < out.shape[3]):
            size = f"{out.shape[2]}×{out.shape[3]}"
            raise VisualizeError(f"{layer!r} maps are {size}: no unit {unit}")
        return out[:, channel, y, x_].mean()

    return objective


def visualize(
    model: nn.Module,
    layer: str,
    channel: int,
    input_shape: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    steps: int = 128,
    learning_rate: float = 0.05,
    seed: int = 0,
    progress: Progress | None = None,
    unit: tuple[int, int] | None = None,
) -> Visualization:
    """Gradient ascent on an input to raise ``channel``'s mean activation in ``layer``.

    Args:
        model: The shared model (never changed: the work runs on a private copy).
        layer: A module name (``model.named_modules()``); ``""`` for the model's output,
            whose ``channel`` is then a class: its logit is raised.
        channel: The channel of that module's output (or the class).
        input_shape: ``(C, H, W)``; one channel means a digit net (pixel parameterisation).
        mean: The model's per-channel normalisation mean (0…1 scale).
        std: Its per-channel standard deviation.
        steps: Gradient steps (Adam).
        learning_rate: Adam's step size.
        seed: The start image and the transforms come from it: the same seed, the same image.
        progress: Called with the fraction done after each step.
        unit: ``(row, col)``: raise that one unit of the channel instead of its mean.

    Raises:
        VisualizeError: An unknown layer, channel or unit, or a layer without maps.
    """
    generator = torch.Generator().manual_seed(seed)
    digit = input_shape[0] == 1
    device = next(iter(model.parameters()), torch.zeros(0)).device
    image = ParameterisedImage(input_shape, mean, std, not digit, generator, device)
    twin = private_copy(model)

    objective = _objective(twin, layer, channel, unit, image)

    with torch.no_grad():
        start = float(objective(image.pixels()))
    optimiser = torch.optim.Adam([image.param], lr=learning_rate)
    history = []
    with torch.enable_grad():
        for step in range(steps):
            optimiser.zero_grad(set_to_none=True)
            value = objective(_transform(image.pixels(), generator, digit))
            torch.autograd.backward(-value)
            optimiser.step()
            history.append(float(value.detach()))
            if progress is not None:
                progress((step + 1) / steps)
    with torch.no_grad():
        pixels = image.pixels()
        final = float(objective(pixels))
    picture = (pixels[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    return Visualization(
        input=image.model_input(pixels).detach().cpu(),
        picture=picture[..., 0] if digit else picture,
        start_activation=start,
        activation=final,
        history=tuple(history),
    )


@dataclass(frozen=True)
class TopInput:
    """One input of a set, ranked by how strongly it excites a channel.

    Attributes:
        index: Its index in the set.
        peak: The channel's largest activation on it.
        unit: ``(row, col)`` of the unit that peaked.
    """

    index: int
    peak: float
    unit: tuple[int, int]


def top_inputs(
    model: nn.Module, layer: str, channel: int, inputs: torch.Tensor, k: int = 9, batch: int = 500
) -> list[TopInput]:
    """The ``k`` inputs of ``inputs`` (normalised, ``(N, C, H, W)``) that excite a channel most.

    Ranked by the channel's peak (largest unit) activation, ties by index.
    """
    peaks, units = [], []
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            maps = channel_activations(model, layer, inputs[start : start + batch], channel)
            flat = maps.flatten(1)
            best, where = flat.max(dim=1)
            peaks.append(best)
            units.append(where)
    peak = torch.cat(peaks).cpu().numpy()
    flat_units = torch.cat(units).cpu().numpy()
    width = int(maps.shape[-1])
    order = sorted(range(len(peak)), key=lambda i: (-float(peak[i]), i))[:k]
    return [TopInput(i, float(peak[i]), divmod(int(flat_units[i]), width)) for i in order]
