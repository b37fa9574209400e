"""The channel card: what a channel looks for, the inputs that excite it most, its filter.

Shared by the Draw and Image pages. The top inputs come from the shipped sets: for the digit
nets the 1,000 validation digits of ``assets/data/mnist-8k.npz``; for the ImageNet models the
few sample photos of ``assets/photos`` (a small set: say so) — or, when the server is given an
image index of the model (:mod:`explorer.views.imageindex`), the folder it ranked.
Visualisations and rankings are jobs for the heavy-work scheduler (:func:`visualization_job`,
:func:`top_pictures_job`), their answers cached for every session by model, weights, layer
and channel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from explorer.analysis.capture import CaptureResult
from explorer.analysis.explain import UnknownField, receptive_field
from explorer.analysis.visualize import TopInput, Visualization, top_inputs, visualize
from explorer.hosting.scheduler import BACKWARD_PASSES, Job, Progress, model_profile
from explorer.inputs.samples import photo_samples
from explorer.models.digits import shipped_digits
from explorer.models.zoo import Family, LoadedModel
from explorer.views.cache import shared

TOP = 9
DIGIT_STEPS = 128
PHOTO_STEPS = 96


def card_layers(result: CaptureResult) -> list[str]:
    """Map layers that are modules (a card needs a module to hook), in execution order."""
    return [
        layer.name
        for layer in result.layers
        if len(layer.shape) == 3 and layer.module == layer.name and "#" not in layer.name
    ]


def default_steps(loaded: LoadedModel) -> int:
    """Gradient steps of a visualisation: more for the small digit nets."""
    return DIGIT_STEPS if loaded.spec.family == Family.DIGIT else PHOTO_STEPS


def visualization_job(
    loaded: LoadedModel,
    result: CaptureResult,
    layer: str,
    channel: int,
    steps: int,
    learning_rate: float = 0.05,
) -> Job:
    """The channel's visualisation as a job for the heavy-work scheduler.

    Costed as a forward and a backward pass to ``layer`` a step, plus the start and the end.
    """
    key = ("vis", loaded.cache_key, layer, channel, steps, learning_rate)
    work = functools.partial(_visualize, loaded, layer, channel, steps, learning_rate)

    def advice(most: int) -> str:
        fewer = max(int((most - 2) // (1 + BACKWARD_PASSES)), 0)
        return f"use at most {fewer} steps" if fewer else "pick an earlier layer"

    passes = steps * (1 + BACKWARD_PASSES) + 2
    what = f"a visualisation of {layer}[{channel}] in {steps} steps"
    cost = model_profile(loaded, result).cost(what, passes, layer=layer, advice=advice)
    return Job(key, work, cost)


def _visualize(
    loaded: LoadedModel,
    layer: str,
    channel: int,
    steps: int,
    learning_rate: float,
    progress: Progress,
) -> Visualization:
    mean, std = loaded.normalisation
    input_size = loaded.spec.input_size
    return visualize(
        loaded.model, layer, channel, input_size, mean, std, steps, learning_rate, progress=progress
    )


@dataclass(frozen=True)
class TopPicture:
    """One top input as shown: the picture with its peak unit's receptive field outlined."""

    picture: np.ndarray
    caption: str
    found: TopInput


def top_set(loaded: LoadedModel) -> tuple[torch.Tensor, list[np.ndarray], str]:
    """The set top inputs are ranked over: inputs, pictures, and what it is (in words).

    Prepared once per model (:func:`~explorer.views.cache.shared`): every channel of every
    layer ranks the same set.
    """
    return shared(("set", loaded.cache_key), lambda: _prepare_set(loaded))


def _prepare_set(loaded: LoadedModel) -> tuple[torch.Tensor, list[np.ndarray], str]:
    if loaded.spec.family == Family.DIGIT:
        digits = shipped_digits()
        pixels = torch.from_numpy(digits.val_images).float().div(255)[:, None]
        tensor = loaded.input_spec.digit_batch(pixels)
        pictures = [np.asarray(image) for image in digits.val_images]
        return tensor, pictures, f"the {len(pictures):,} shipped validation digits"
    prepared = [loaded.prepare(path) for path in photo_samples().values()]
    tensor = torch.cat([p.tensor for p in prepared])
    pictures = [p.display for p in prepared]
    return tensor, pictures, f"the {len(pictures)} sample photos only (a small set)"


def top_pictures_job(loaded: LoadedModel, result: CaptureResult, layer: str, channel: int) -> Job:
    """The inputs of :func:`top_set` that excite the channel most, as a scheduler job.

    Its answer: the pictures, each with its peak unit outlined, and what the set is in words.
    Costed as one pass to ``layer`` per input of the set (the set is prepared here, once a
    model).
    """
    digits = loaded.spec.family == Family.DIGIT
    size = len(shipped_digits().val_images) if digits else len(photo_samples())
    what = f"ranking the {size:,} inputs of the set"
    cost = model_profile(loaded, result).cost(what, size, layer=layer)
    work = functools.partial(_top_pictures, loaded, layer, channel)
    return Job(("top", loaded.cache_key, layer, channel), work, cost)


def _top_pictures(
    loaded: LoadedModel, layer: str, channel: int, _progress: Progress
) -> tuple[list[TopPicture], str]:
    tensor, pictures, what = top_set(loaded)
    found = top_inputs(loaded.model, layer, channel, tensor, k=TOP)
    shown = [
        TopPicture(outlined(loaded, layer, pictures[f.index], f), f"peak {f.peak:.3g}", f)
        for f in found
    ]
    return shown, what


def outlined(loaded: LoadedModel, layer: str, picture: np.ndarray, found: TopInput) -> np.ndarray:
    """The picture (RGB, enlarged for small digits) with the peak unit's receptive field boxed."""
    image = Image.fromarray(picture).convert("RGB")
    h, w = picture.shape[:2]
    try:
        box = receptive_field(loaded.model, layer, *found.unit, (h, w))
    except (UnknownField, ValueError):
        return np.asarray(image)
    zoom = max(1, 112 // max(h, w))
    image = image.resize((w * zoom, h * zoom), Image.Resampling.NEAREST)
    clipped = box.clipped(h, w)
    ImageDraw.Draw(image).rectangle(
        (
            clipped.left * zoom,
            clipped.top * zoom,
            clipped.right * zoom - 1,
            clipped.bottom * zoom - 1,
        ),
        outline="#ff7f0e",
        width=max(1, zoom // 2),
    )
    return np.asarray(image)


def channel_filter(loaded: LoadedModel, layer: str, channel: int) -> torch.Tensor | None:
    """The channel's kernel ``(1, C_in, kh, kw)`` when ``layer`` is a conv module, else None."""
    module = dict(loaded.model.named_modules()).get(layer)
    weight = getattr(module, "weight", None)
    if not isinstance(module, torch.nn.Conv2d) or not isinstance(weight, torch.Tensor):
        return None
    return weight[channel : channel + 1].detach()
