"""The channel card: what a channel looks for, the inputs that excite it most, its filter.

Shared by the Draw and Image pages. The top inputs come from the shipped sets: for the digit
nets the 1,000 validation digits of ``assets/data/mnist-8k.npz``; for the ImageNet models the
few sample photos of ``assets/photos`` (a small set: say so). Visualisations and rankings are
cached for every session by model, weights, layer and channel.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from explorer.analysis.capture import CaptureResult
from explorer.analysis.explain import UnknownField, receptive_field
from explorer.analysis.visualize import TopInput, Visualization, top_inputs, visualize
from explorer.inputs.samples import photo_samples
from explorer.models.live import shipped_digits
from explorer.models.train import model_input
from explorer.models.zoo import LoadedModel

TOP = 9
DIGIT_STEPS = 128
PHOTO_STEPS = 96
_cache: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_lock = threading.Lock()


def _cached(key: tuple[object, ...], make: Callable[[], Any], size: int = 64) -> Any:
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = make()
    with _lock:
        _cache[key] = value
        while len(_cache) > size:
            _cache.popitem(last=False)
    return value


def card_layers(result: CaptureResult) -> list[str]:
    """Map layers that are modules (a card needs a module to hook), in execution order."""
    return [
        layer.name
        for layer in result.layers
        if len(layer.shape) == 3 and layer.module == layer.name and "#" not in layer.name
    ]


def default_steps(loaded: LoadedModel) -> int:
    """Gradient steps of a visualisation: more for the small digit nets."""
    return DIGIT_STEPS if loaded.spec.family == "digit" else PHOTO_STEPS


def visualization(
    loaded: LoadedModel,
    layer: str,
    channel: int,
    steps: int,
    progress: Callable[[float], None] | None = None,
    learning_rate: float = 0.05,
) -> Visualization:
    """The channel's visualisation (cached for every session)."""
    mean, std = loaded.normalisation
    key = ("vis", loaded.cache_key, layer, channel, steps, learning_rate)
    return _cached(  # type: ignore[no-any-return]
        key,
        lambda: visualize(
            loaded.model,
            layer,
            channel,
            loaded.spec.input_size,
            mean,
            std,
            steps,
            progress=progress,
        ),
    )


@dataclass(frozen=True)
class TopPicture:
    """One top input as shown: the picture with its peak unit's receptive field outlined."""

    picture: np.ndarray
    caption: str
    found: TopInput


def top_set(loaded: LoadedModel) -> tuple[torch.Tensor, list[np.ndarray], str]:
    """The set top inputs are ranked over: inputs, pictures, and what it is (in words).

    Prepared once per model (cached): every channel of every layer ranks the same set.
    """
    return _cached(("set", loaded.cache_key), lambda: _prepare_set(loaded), size=64)  # type: ignore[no-any-return]


def _prepare_set(loaded: LoadedModel) -> tuple[torch.Tensor, list[np.ndarray], str]:
    if loaded.spec.family == "digit":
        digits = shipped_digits()
        pixels = torch.from_numpy(digits.val_images).float().div(255)[:, None]
        padded = loaded.spec.input_size[-1] == 32
        tensor = model_input(pixels, "harley" if padded else "lenet5")
        pictures = [np.asarray(image) for image in digits.val_images]
        return tensor, pictures, f"the {len(pictures):,} shipped validation digits"
    prepared = [loaded.prepare(path) for path in photo_samples().values()]
    tensor = torch.cat([p.tensor for p in prepared])
    pictures = [p.display for p in prepared]
    return tensor, pictures, f"the {len(pictures)} sample photos only (a small set)"


def top_pictures(loaded: LoadedModel, layer: str, channel: int) -> tuple[list[TopPicture], str]:
    """The inputs of :func:`top_set` that excite the channel most, their peak unit outlined."""

    def make() -> tuple[list[TopPicture], str]:
        tensor, pictures, what = top_set(loaded)
        found = top_inputs(loaded.model, layer, channel, tensor, k=TOP)
        shown = [
            TopPicture(_outlined(loaded, layer, pictures[f.index], f), f"peak {f.peak:.3g}", f)
            for f in found
        ]
        return shown, what

    key = ("top", loaded.cache_key, layer, channel)
    return _cached(key, make)  # type: ignore[no-any-return]


def _outlined(loaded: LoadedModel, layer: str, picture: np.ndarray, found: TopInput) -> np.ndarray:
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
