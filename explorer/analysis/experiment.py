"""Experiments: change the input or the network, and measure what moves, layer by layer.

Perturbations work on the picture the network sees (``PreparedInput.display``, 0…255) and
the result is normalised as the model expects, so a 1-pixel shift is a 1-pixel shift of the
28×28 digit or of the 224×224 crop. Knock-outs run on a private copy of the shared model
(:func:`explorer.analysis.attribution.private_copy`): a channel's output is replaced by 0 or
its mean through a hook on the copy, a filter's weights are zeroed in a copy of that one
tensor; the shared model other sessions use is never changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from explorer.analysis.attribution import private_copy
from explorer.analysis.capture import CaptureResult, capture
from explorer.inputs.spec import InputSpec

SWEEPABLE = {
    "rotate": ("rotation (°)", np.arange(-45, 46, 5)),
    "shift": ("horizontal shift (px)", np.arange(-6, 7, 1)),
    "scale": ("scale", np.round(np.arange(0.6, 1.45, 0.1), 2)),
    "noise": ("noise σ", np.round(np.arange(0.0, 0.55, 0.05), 2)),
    "blur": ("blur σ (px)", np.round(np.arange(0.0, 3.1, 0.25), 2)),
}
"""Perturbations a sweep can vary: name → (axis title, default values)."""


class ExperimentError(ValueError):
    """Settings that do not fit the model or the input (a message for the user)."""


@dataclass(frozen=True)
class Perturbation:
    """Changes to the picture the network sees, applied in this order.

    Attributes:
        shift: ``(dx, dy)`` in pixels (right, down); what moves in is black.
        rotate: Degrees, counter-clockwise, about the centre.
        scale: Zoom about the centre (> 1 enlarges).
        occlude: ``(top, left, size)`` of a black square, or None (applied last).
        contrast: Multiplies the distance from mid-grey.
        brightness: Added, in 0…1 units.
        blur: Gaussian blur σ in pixels.
        noise: Gaussian noise σ in 0…1 units (seeded).
        seed: The noise's seed.
    """

    shift: tuple[int, int] = (0, 0)
    rotate: float = 0.0
    scale: float = 1.0
    occlude: tuple[int, int, int] | None = None
    contrast: float = 1.0
    brightness: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    seed: int = 0

    @property
    def is_identity(self) -> bool:
        """Whether it changes nothing."""
        return self == Perturbation(seed=self.seed)

    def varied(self, name: str, value: float) -> Perturbation:
        """This perturbation with one of :data:`SWEEPABLE` set to ``value``."""
        if name == "shift":
            return replace(self, shift=(int(value), self.shift[1]))
        if name == "rotate":
            return replace(self, rotate=float(value))
        if name == "scale":
            return replace(self, scale=float(value))
        if name == "noise":
            return replace(self, noise=float(value))
        if name == "blur":
            return replace(self, blur=float(value))
        raise ExperimentError(f"cannot sweep {name!r}: one of {', '.join(SWEEPABLE)}")


def perturb(picture: np.ndarray, change: Perturbation) -> np.ndarray:
    """The picture (``uint8``, ``(H, W)`` or ``(H, W, 3)``) with ``change`` applied."""
    pixels = picture.astype(np.float64) / 255.0
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    planes = np.stack([_geometry(planes[..., c], change) for c in range(planes.shape[-1])], -1)
    planes = (planes - 0.5) * change.contrast + 0.5 + change.brightness
    if change.blur > 0:
        planes = ndimage.gaussian_filter(planes, sigma=(change.blur, change.blur, 0))
    if change.noise > 0:
        planes = planes + np.random.default_rng(change.seed).normal(0, change.noise, planes.shape)
    if change.occlude is not None:
        top, left, size = change.occlude
        planes[max(top, 0) : top + size, max(left, 0) : left + size] = 0.0
    out = np.clip(planes, 0.0, 1.0)
    result: np.ndarray = (out * 255).round().astype(np.uint8)
    return result[..., 0] if picture.ndim == 2 else result


def _geometry(plane: np.ndarray, change: Perturbation) -> np.ndarray:
    """Shift, rotate and scale one plane about its centre (bilinear, black outside)."""
    if change.shift == (0, 0) and change.rotate == 0 and change.scale == 1:
        return plane
    h, w = plane.shape
    angle = math.radians(change.rotate)
    # output (y, x) ← input: centre + R(−angle)/scale · (out − centre − shift)
    cos, sin = math.cos(angle) / change.scale, math.sin(angle) / change.scale
    matrix = np.array([[cos, sin], [-sin, cos]])
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    shift = np.array([change.shift[1], change.shift[0]], dtype=np.float64)
    offset = centre - matrix @ (centre + shift)
    moved: np.ndarray = ndimage.affine_transform(plane, matrix, offset=offset, order=1, cval=0.0)
    return moved


def to_input(picture: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A picture (``uint8``) as the model's ``(1, C, H, W)`` input, normalised (float32).

    See :meth:`explorer.inputs.spec.InputSpec.from_picture`.
    """
    height, width = picture.shape[:2]
    channels = 1 if picture.ndim == 2 else picture.shape[2]
    return InputSpec(channels, height, width, tuple(mean), tuple(std)).from_picture(picture)


@dataclass(frozen=True)
class Knockout:
    """Channels of one conv layer switched off.

    Attributes:
        layer: A conv module's name.
        channels: The channels (filters) knocked out.
        mode: ``"zero"``: the channel's output becomes 0; ``"mean"``: its mean over the map;
            ``"filter"``: the filter's weights and bias are zeroed (the same as ``"zero"`` for
            a conv followed by nothing, not after a norm layer).
    """

    layer: str
    channels: tuple[int, ...]
    mode: str = "zero"

    @classmethod
    def parse(cls, text: str, mode: str = "zero") -> Knockout:
        """``"conv2:0,3,5"`` → the layer and its channels."""
        layer, _, channels = text.partition(":")
        try:
            numbers = tuple(int(c) for c in channels.split(",") if c.strip())
        except ValueError:
            raise ExperimentError(
                f"knock out LAYER:CH,CH… (e.g. conv2:0,3), not {text!r}"
            ) from None
        if not layer or not numbers:
            raise ExperimentError(f"knock out LAYER:CH,CH… (e.g. conv2:0,3), not {text!r}")
        return cls(layer, numbers, mode)


def knocked_out(model: nn.Module, knockout: Knockout) -> nn.Module:
    """A copy of ``model`` with the channels knocked out; ``model`` itself is not touched.

    Raises:
        ExperimentError: Not a conv layer, a channel out of range, or an unknown mode.
    """
    twin = private_copy(model)
    module = dict(twin.named_modules()).get(knockout.layer)
    if not isinstance(module, nn.Conv2d):
        raise ExperimentError(f"{knockout.layer!r} is not a conv layer of this model")
    bad = [c for c in knockout.channels if not 0 <= c < module.out_channels]
    if bad:
        raise ExperimentError(f"{knockout.layer} has {module.out_channels} channels: not {bad}")
    chosen = list(knockout.channels)
    if knockout.mode == "filter":
        weight = module.weight.detach().clone()  # its own tensor: the shared one stays
        weight[chosen] = 0.0
        module.weight = nn.Parameter(weight, requires_grad=False)
        if module.bias is not None:
            bias = module.bias.detach().clone()
            bias[chosen] = 0.0
            module.bias = nn.Parameter(bias, requires_grad=False)
        return twin
    if knockout.mode not in ("zero", "mean"):
        raise ExperimentError(f"unknown knock-out mode {knockout.mode!r}")

    def silence(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        if knockout.mode == "zero":
            output[:, chosen] = 0.0
        else:
            output[:, chosen] = output[:, chosen].mean(dim=(2, 3), keepdim=True)
        return output

    module.register_forward_hook(silence)
    return twin


class LayerChange(NamedTuple):
    """How much one layer's output moved between two passes.

    Attributes:
        name: The layer.
        kind: Its kind.
        relative_l2: ``‖b − a‖ / ‖a‖`` (0 when both are 0, infinite when only ``a`` is).
        cosine: ``a·b / (‖a‖ ‖b‖)`` (1 when both are 0, 0 when one is).
    """

    name: str
    kind: str
    relative_l2: float
    cosine: float


_CHUNK = 1 << 16
"""Values summed at a time in float64: a few hundred KB of scratch, not a copy of the layer
(VGG-16's 28 M values as fresh float64 copies cost more in page faults than in arithmetic).
``einsum``, not BLAS: OpenBLAS's threads cost seconds on a loaded server's cores."""


def layer_change(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Relative L2 distance and cosine similarity of two arrays (summed in float64)."""
    x, y = np.ravel(a), np.ravel(b)
    sums = np.zeros(4)  # ‖x‖², ‖y‖², ‖y − x‖², x·y
    for start in range(0, x.size, _CHUNK):
        xs = x[start : start + _CHUNK].astype(np.float64)
        ys = y[start : start + _CHUNK].astype(np.float64)
        gap = ys - xs
        sums += [np.einsum("i,i->", u, v) for u, v in ((xs, xs), (ys, ys), (gap, gap), (xs, ys))]
    norm_x, norm_y, distance = (float(math.sqrt(v)) for v in sums[:3])
    relative = 0.0 if distance == 0 else (math.inf if norm_x == 0 else distance / norm_x)
    if norm_x == 0 or norm_y == 0:
        cosine = 1.0 if norm_x == norm_y == 0 else 0.0
    else:
        cosine = float(sums[3] / (norm_x * norm_y))
    return relative, cosine


def compare(first: CaptureResult, second: CaptureResult) -> list[LayerChange]:
    """Every layer the two passes share (same name and shape), in the first's order.

    A layer both passes hold as the same tensor (a pass compared with itself) did not move.
    """
    changes = []
    for layer in first.layers:
        if layer.name not in second or tuple(second[layer.name].shape) != tuple(layer.shape):
            continue
        other = second[layer.name].tensor
        if other is layer.tensor:
            changes.append(LayerChange(layer.name, layer.kind, 0.0, 1.0))
            continue
        relative, cosine = layer_change(_on_host(layer.tensor), _on_host(other))
        changes.append(LayerChange(layer.name, layer.kind, relative, cosine))
    return changes


def _on_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor``'s values as float32 on the host, read only (no copy of a CPU float32 tensor)."""
    return tensor.detach().to("cpu", torch.float32).numpy()


def run(model: nn.Module, x: torch.Tensor) -> CaptureResult:
    """Every layer of ``model`` on ``x`` (the capture; a knocked-out copy works too)."""
    return capture(model, x)


@dataclass(frozen=True)
class SweepPoint:
    """One input of a sweep and what the model made of it."""

    value: float
    picture: np.ndarray
    predicted: int
    probability: float
    original_probability: float


def sweep(
    model: nn.Module,
    picture: np.ndarray,
    base: Perturbation,
    name: str,
    values: Sequence[float] | np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    original: int,
) -> list[SweepPoint]:
    """The prediction for each value of one perturbation (a batch of all the inputs).

    Args:
        model: The model (not changed).
        picture: The unchanged picture (``uint8``).
        base: The other perturbations, kept as they are.
        name: The perturbation varied, one of :data:`SWEEPABLE`.
        values: Its values.
        mean: The model's normalisation mean.
        std: Its normalisation std.
        original: The class the unchanged input was given: its probability is tracked too.
    """
    pictures = [perturb(picture, base.varied(name, v)) for v in values]
    device = next(iter(model.parameters()), torch.zeros(0)).device
    batch = torch.cat([to_input(p, mean, std) for p in pictures]).to(device)
    with torch.no_grad():
        probs = torch.softmax(model(batch), dim=1).cpu()
    best = probs.argmax(dim=1)
    return [
        SweepPoint(float(v), p, int(best[i]), float(probs[i, best[i]]), float(probs[i, original]))
        for i, (v, p) in enumerate(zip(values, pictures, strict=True))
    ]
