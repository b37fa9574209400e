"""Why did it decide? Maps of how much each input pixel counts for a class.

Class activation maps of a conv layer come from torchcam (Grad-CAM, Grad-CAM++, Layer-CAM,
Score-CAM); gradient and perturbation methods from Captum (saliency, SmoothGrad, Integrated
Gradients, Guided Backprop, occlusion). torchcam rather than pytorch-grad-cam: it needs only
torch, numpy, Pillow and matplotlib (pytorch-grad-cam pulls in OpenCV, ttach and
scikit-learn), it is maintained, and it returns the raw, unnormalised map on request.

Shared models, many sessions: every call runs on its own *structural copy* of the cached
model (:func:`private_copy`: the module objects copied, the parameters and buffers shared,
and those never require grad). The hooks torchcam and Captum register, and the in-place
switches turned off for them, live on that copy only: the shared model, and every other
session's capture, never see them, and two sessions attributing at once each get their own
answer. Nothing here runs under ``torch.inference_mode``: attribution needs gradients, and
an input made under inference mode is cloned into a normal tensor first.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Family = Literal["cam", "gradient", "perturbation"]
Progress = Callable[[float], None]
"""Called with the fraction done (0…1) after each forward pass of a slow method. The page
updates a progress bar with it, which is also where Streamlit stops a run that is no longer
wanted (its input changed)."""

CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcampp": "GradCAMpp",
    "layercam": "LayerCAM",
    "scorecam": "ScoreCAM",
}
"""Each CAM method's torchcam class (imported when first used: Captum and torchcam stay out of
the server's start-up)."""
SCORECAM_BATCH = 32
"""Masked inputs per forward pass of Score-CAM."""
OCCLUSION_BATCH = 16
"""Occluded inputs per forward pass."""
SMOOTHGRAD_BATCH = 8
"""Noisy inputs per forward pass of SmoothGrad."""
IG_BATCH = 8
"""Points of Integrated Gradients' path per forward pass."""


@dataclass(frozen=True)
class Method:
    """An attribution method, as the pages and the CLI name and explain it.

    Attributes:
        label: Its name in the pages (its key in :data:`METHODS` is its name on the
            command line).
        family: ``"cam"`` (a map of a conv layer's channels), ``"gradient"`` or
            ``"perturbation"``.
        caption: One line: what the map shows.
        formula: The formula (Markdown with LaTeX), and how the map's channels are reduced.
        slow: Whether it runs many forward passes (the page shows progress).
    """

    label: str
    family: Family
    caption: str
    formula: str
    slow: bool = False


METHODS_FILE = Path(__file__).with_name("attribution_methods.toml")


def _read_methods() -> dict[str, Method]:
    with METHODS_FILE.open("rb") as file:
        return {key: Method(**fields) for key, fields in tomllib.load(file).items()}


METHODS: dict[str, Method] = _read_methods()
"""Every method by its command-line name, in the order the pages list them
(:file:`attribution_methods.toml` holds their names, captions and formulas)."""

BASELINES = ("black", "zero")
"""Integrated Gradients' start: ``"black"`` (every pixel 0 before normalisation) or
``"zero"`` (the all-zero tensor: the data set's mean colour for a normalised model)."""


@dataclass(frozen=True)
class Knob:
    """One of a method's settings: its default, its range, and its names in the page and CLI.

    Attributes:
        label: Its name in the pages.
        help: What it is, in a few words (the command line's help).
        default: Its value when none is given (:class:`Settings`' default, the command
            line's, and where the page's widget starts; see :func:`start_value`).
        low: The page slider's smallest value (None: not a slider).
        high: Its largest (None: the input's side, in pixels).
        step: Its step (None: Streamlit's default, 1 for whole numbers).
        choices: The values of a setting picked from a list.
        details: A longer explanation the page shows on hover.
    """

    label: str
    help: str
    default: Any
    low: Any = None
    high: Any = None
    step: Any = None
    choices: tuple[str, ...] = ()
    details: str = ""

    def bounds(self, side: int) -> tuple[Any, Any]:
        """The slider's ``(low, high)`` for an input of ``side`` pixels."""
        return self.low, side if self.high is None else self.high


KNOBS: dict[str, Knob] = {
    "steps": Knob("Steps", "Integrated Gradients' steps", 32, 8, 128, 8),
    "baseline": Knob(
        "Baseline",
        "Integrated Gradients' baseline",
        "black",
        choices=BASELINES,
        details="black: every pixel 0 before normalisation · zero: the all-zero tensor "
        "(the data set's mean colour for a normalised model)",
    ),
    "samples": Knob("Noisy copies", "SmoothGrad's noisy copies", 16, 4, 64, 4),
    "noise": Knob(
        "Noise σ (fraction of the range)",
        "SmoothGrad's σ, a fraction of the input's value range",
        0.15,
        0.05,
        0.5,
        0.05,
    ),
    "window": Knob("Window (px)", "occlusion window (px)", 32, 1),
    "stride": Knob("Stride (px)", "occlusion stride (px)", 16, 1),
}
"""Every method setting but a CAM's layer, by its :class:`Settings` field (and its command
line option, ``--steps`` …)."""
LAYER_LABEL = "Layer"
AUTO_LAYER = "last conv block (auto)"
"""How the page names a CAM's default layer (:func:`default_cam_layer`)."""
METHOD_SETTINGS: dict[str, tuple[str, ...]] = {
    "gradcam": ("layer",),
    "gradcampp": ("layer",),
    "layercam": ("layer",),
    "scorecam": ("layer",),
    "integrated_gradients": ("steps", "baseline"),
    "smoothgrad": ("samples", "noise"),
    "occlusion": ("window", "stride"),
}
"""The :class:`Settings` fields each method uses, in the order the page shows them (a method
not listed uses none)."""


def start_value(name: str, side: int, chosen: dict[str, Any]) -> Any:
    """Where the page's widget for ``name`` starts, for an input of ``side`` pixels.

    Occlusion's window starts at a quarter of the input (at most its default) and its stride
    at the window (no overlap): 49 passes at 224×224, which fit the heavy-work budget on every
    zoo model (VGG-16 with half-window strides, 173 passes, does not).

    Args:
        name: A key of :data:`KNOBS`.
        side: The input's shorter side, in pixels.
        chosen: The settings chosen so far, in :data:`METHOD_SETTINGS`' order.
    """
    if name == "window":
        return max(1, min(KNOBS["window"].default, side // 4))
    if name == "stride" and "window" in chosen:
        return chosen["window"]
    return KNOBS[name].default


@dataclass(frozen=True)
class Settings:
    """What to attribute and how.

    Fields a method does not use are ignored (and normalised away by :meth:`used`, so they do
    not split a cache). Defaults, ranges and names: :data:`KNOBS`.

    Attributes:
        method: A key of :data:`METHODS`.
        target: The class index.
        layer: A CAM's layer (a module name); ``None``: the last conv block
            (:func:`default_cam_layer`).
        steps: Integrated Gradients' steps.
        baseline: Integrated Gradients' baseline, one of :data:`BASELINES`.
        samples: SmoothGrad's noisy copies.
        noise: SmoothGrad's σ, as a fraction of the input's value range.
        window: Occlusion's window side, in input pixels.
        stride: Occlusion's stride, in input pixels.
    """

    method: str
    target: int
    layer: str | None = None
    steps: int = KNOBS["steps"].default
    baseline: str = KNOBS["baseline"].default
    samples: int = KNOBS["samples"].default
    noise: float = KNOBS["noise"].default
    window: int = KNOBS["window"].default
    stride: int = KNOBS["stride"].default

    def used(self) -> Settings:
        """These settings with the fields the method ignores set to their defaults."""
        default = Settings(self.method, self.target)
        keep = METHOD_SETTINGS.get(self.method, ())
        return replace(default, **{name: getattr(self, name) for name in keep})


@dataclass(frozen=True)
class Attribution:
    """A map of how much each input pixel counts for a class.

    Attributes:
        values: ``(H, W)`` float32 at the model's input resolution, not normalised.
        settings: What was computed (:meth:`Settings.used`), with a CAM's layer filled in.
        probability: The class's probability on the input.
    """

    values: np.ndarray
    settings: Settings
    probability: float

    @property
    def method(self) -> Method:
        """The method that made the map."""
        return METHODS[self.settings.method]


class AttributionError(ValueError):
    """Settings that do not fit the model or the input (a message for the user)."""


def private_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s module objects that shares its parameters and buffers.

    Hooks and ``inplace`` switches set on the copy never reach ``model``; its tensors are not
    copied (no memory, no time). In-place activations are turned off on the copy: hooked
    gradients need the values they would overwrite.
    """
    shared = itertools.chain(model.parameters(), model.buffers())
    twin = copy.deepcopy(model, memo={id(tensor): tensor for tensor in shared})
    for module in twin.modules():
        if getattr(module, "inplace", False):
            module.inplace = False  # type: ignore[assignment]
    return twin


def cam_layers(model: nn.Module) -> list[str]:
    """The modules a CAM can look at: every conv layer, and the model's top-level blocks."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    blocks = [name for name, module in model.named_children() if _has_conv(module)]
    return [*dict.fromkeys([*blocks, *names])]


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def default_cam_layer(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """The last layer with a spatial output before the model pools it away (torchcam's rule).

    Raises:
        AttributionError: The model has no such layer.
    """
    from torchcam.methods._utils import locate_candidate_layer

    name = locate_candidate_layer(private_copy(model), input_shape)
    if not isinstance(name, str):
        raise AttributionError(
            "this model has no conv module to make a class activation map of (a torch.export "
            "graph's convs are operators): pick a gradient method or occlusion"
        )
    return name


@contextmanager
def _counting_forwards(
    model: nn.Module, expected: int, progress: Progress | None
) -> Iterator[None]:
    """Report ``progress`` after each forward pass of ``model`` (a private copy)."""
    if progress is None:
        yield
        return
    done = itertools.count(1)

    def tick(_module: nn.Module, _output: Any, *_: Any) -> None:
        progress(min(next(done) / max(expected, 1), 1.0))

    handle = model.register_forward_hook(tick)
    try:
        yield
    finally:
        handle.remove()


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    settings: Settings,
    progress: Progress | None = None,
    black: torch.Tensor | None = None,
) -> Attribution:
    """The attribution map of ``settings.target`` for the input ``x``.

    Args:
        model: The shared model (never changed: the work runs on a :func:`private_copy`).
        x: The input, ``(1, C, H, W)``, normalised as the model expects.
        settings: The method and its settings.
        progress: Called with the fraction done after each forward pass of a slow method.
        black: Integrated Gradients' ``"black"`` baseline (a black input, normalised like
            ``x``); ``None``: zeros.

    Raises:
        AttributionError: Unknown method or layer, a class index out of range, a window
            larger than the input.
    """
    if settings.method not in METHODS:
        raise AttributionError(f"unknown method {settings.method!r}: one of {', '.join(METHODS)}")
    twin = private_copy(model)
    device = next(itertools.chain(model.parameters(), model.buffers()), x).device
    # A normal tensor (the capture's may be an inference tensor), on the model's device.
    x = x.detach().clone().to(device)
    with torch.no_grad():
        probs = torch.softmax(twin(x), dim=1)[0]
    if not 0 <= settings.target < len(probs):
        raise AttributionError(f"class {settings.target} is out of range: 0…{len(probs) - 1}")
    used = settings.used()
    if METHODS[settings.method].family == "cam":
        used = replace(used, layer=used.layer or default_cam_layer(model, tuple(x.shape[1:])))
    if settings.method == "guided_backprop" and not any(
        isinstance(m, nn.ReLU) for m in twin.modules()
    ):
        raise AttributionError(
            "Guided Backprop needs ReLU modules to guide, and this graph has none (its ReLUs "
            "are operators): pick another method"
        )
    try:
        values = _compute(twin, x, used, progress, black)
    except AttributionError:
        raise
    except (RuntimeError, AssertionError, ValueError):
        # A graph exported for a batch of one (a user's .pt2 or .onnx) refuses batches.
        _batches.size = 1
        try:
            values = _compute(twin, x, used, progress, black)
        except AttributionError:
            raise
        except Exception as exc:
            label = METHODS[settings.method].label
            raise AttributionError(f"{label} cannot run on this model: {exc}") from None
        finally:
            _batches.size = None
    return Attribution(values.astype(np.float32), used, float(probs[settings.target]))


class _Batches(threading.local):
    """The batch size of the batched methods in this thread: ``None`` for their own."""

    size: int | None = None


_batches = _Batches()


def _batch(default: int) -> int:
    return _batches.size or default


def _compute(
    twin: nn.Module,
    x: torch.Tensor,
    settings: Settings,
    progress: Progress | None,
    black: torch.Tensor | None,
) -> np.ndarray:
    if METHODS[settings.method].family == "cam":
        return _cam(twin, x.detach().clone(), settings, progress)
    if settings.method == "occlusion":
        return _occlusion(twin, x.detach().clone(), settings, progress)
    return _gradient(twin, x.detach().clone(), settings, progress, black)


def _cam(
    model: nn.Module, x: torch.Tensor, settings: Settings, progress: Progress | None
) -> np.ndarray:
    layer = settings.layer or ""
    if layer not in dict(model.named_modules()):
        raise AttributionError(f"no layer named {layer!r} in this model")
    import torchcam.methods

    kind = getattr(torchcam.methods, CAM_CLASSES[settings.method])
    if settings.method == "gradcampp":
        kind = _grad_cam_pp()
    score = settings.method == "scorecam"
    options: dict[str, Any] = {"batch_size": _batch(SCORECAM_BATCH)} if score else {}
    extractor = kind(model, layer, input_shape=tuple(x.shape[1:]), **options)
    try:
        x = x.requires_grad_(not score)
        channels = _layer_channels(model, layer, x) if score else 1
        expected = 1 + math.ceil(channels / _batch(SCORECAM_BATCH))
        with torch.enable_grad(), _counting_forwards(model, expected, progress):
            scores = model(x)
            cam = extractor(settings.target, scores, normalized=False)[0]
    finally:
        extractor.remove_hooks()
    return upsample(cam.detach()[0], (int(x.shape[-2]), int(x.shape[-1])))


@functools.cache
def _grad_cam_pp() -> type:
    """Grad-CAM++ as the paper defines α (torchcam's class, one method replaced).

    torchcam 0.5 divides ``alpha[mask]`` in place, a copy made by boolean indexing, so its
    weights come out as ``Σ (∂y/∂A)² ReLU(∂y/∂A)``: the denominator is never applied.
    """
    from torchcam.methods import GradCAMpp

    class PaperGradCAMpp(GradCAMpp):
        def _get_weights(
            self,
            class_idx: int | list[int],
            scores: torch.Tensor,
            eps: float = 1e-8,
            **kwargs: Any,
        ) -> list[torch.Tensor]:
            self._backprop(scores, class_idx, **kwargs)
            weights = []
            for activation, grad in zip(self.hook_a, self.hook_g, strict=True):
                squared = grad.pow(2)
                spatial = (None,) * (activation.ndim - 2)
                sums = (squared * grad * activation).flatten(2).sum(-1)[(..., *spatial)]
                alpha = torch.where(
                    squared > 0, squared / (2 * squared + sums + eps), torch.zeros_like(squared)
                )
                weights.append((alpha * torch.relu(grad)).flatten(2).sum(-1))
            return weights

    return PaperGradCAMpp


def _layer_channels(model: nn.Module, layer: str, x: torch.Tensor) -> int:
    """How many channels ``layer`` outputs (one untracked forward pass of ``model``)."""
    seen: list[int] = []
    module = dict(model.named_modules())[layer]
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(int(out.shape[1])))
    try:
        with torch.no_grad():
            model(x.detach())
    finally:
        handle.remove()
    return seen[0]


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A ``(h, w)`` map resized to ``size`` (bilinear, corners not aligned), as a numpy array."""
    grown = F.interpolate(cam[None, None].float(), size=size, mode="bilinear", align_corners=False)
    result: np.ndarray = grown[0, 0].cpu().numpy()
    return result


def _gradient(
    model: nn.Module,
    x: torch.Tensor,
    settings: Settings,
    progress: Progress | None,
    black: torch.Tensor | None,
) -> np.ndarray:
    from captum.attr import GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency

    target = settings.target
    x = x.requires_grad_(True)
    if settings.method == "integrated_gradients":
        baseline = _baseline(x, settings.baseline, black)
        per_pass = _batch(IG_BATCH)
        with _counting_forwards(model, math.ceil(settings.steps / per_pass), progress):
            found = IntegratedGradients(model).attribute(
                x, baseline, target=target, n_steps=settings.steps, internal_batch_size=per_pass
            )
        return _reduce(found, "sum")
    if settings.method == "smoothgrad":
        sigma = settings.noise * float(x.detach().max() - x.detach().min())
        expected = math.ceil(settings.samples / _batch(SMOOTHGRAD_BATCH))
        with _counting_forwards(model, expected, progress):
            found = NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=settings.samples,
                nt_samples_batch_size=_batch(SMOOTHGRAD_BATCH),
                stdevs=sigma,
                target=target,
            )
        return _reduce(found, "max")
    if settings.method == "guided_backprop":
        return _reduce(GuidedBackprop(model).attribute(x, target=target).abs(), "max")
    return _reduce(Saliency(model).attribute(x, target=target, abs=True), "max")


def _baseline(x: torch.Tensor, name: str, black: torch.Tensor | None) -> torch.Tensor:
    if name not in BASELINES:
        raise AttributionError(f"unknown baseline {name!r}: one of {', '.join(BASELINES)}")
    if name == "black" and black is not None:
        return black.to(x.device, x.dtype).expand_as(x).detach().clone()
    return torch.zeros_like(x)


def _reduce(found: torch.Tensor, how: Literal["sum", "max"]) -> np.ndarray:
    """A ``(1, C, H, W)`` attribution as ``(H, W)``: summed or the largest over channels."""
    values = found.detach()[0]
    reduced = values.sum(dim=0) if how == "sum" else values.max(dim=0).values
    result: np.ndarray = reduced.cpu().numpy()
    return result


def occlusion_windows(size: tuple[int, int], window: int, stride: int) -> int:
    """How many windows occlusion slides over an input of ``size``."""
    rows = (size[0] - window) // stride + 1
    cols = (size[1] - window) // stride + 1
    return rows * cols


def attribution_passes(
    settings: Settings, size: tuple[int, int], channels: int = 1, backward: float = 1.0
) -> float:
    """Forward-pass equivalents :func:`attribute` runs, to cost it before it runs.

    Counts the class's probability (one pass) and the method's own passes, each input of a
    batch a pass: one per occlusion window (plus Captum's unoccluded pass), one per channel of
    Score-CAM's layer (plus the pass that counts them and the scored one), a forward and a
    backward pass per Integrated Gradients step or SmoothGrad copy, one of each otherwise.

    Args:
        settings: The method and its settings.
        size: The input's ``(height, width)``.
        channels: The channels of Score-CAM's layer.
        backward: What a backward pass costs, in forward passes.
    """
    both = 1.0 + backward
    method = settings.method
    if method == "occlusion":
        window, stride = max(settings.window, 1), max(settings.stride, 1)
        own = max(occlusion_windows(size, window, stride), 0) + 1.0
    elif method == "scorecam":
        own = 2.0 + channels
    elif method == "integrated_gradients":
        own = settings.steps * both
    elif method == "smoothgrad":
        own = settings.samples * both
    else:
        own = both
    return 1.0 + own


def _occlusion(
    model: nn.Module, x: torch.Tensor, settings: Settings, progress: Progress | None
) -> np.ndarray:
    from captum.attr import Occlusion

    channels, h, w = x.shape[1:]
    window, stride = settings.window, settings.stride
    if not (1 <= window <= min(h, w)) or stride < 1:
        raise AttributionError(
            f"the occlusion window must be 1…{min(h, w)} px and the stride ≥ 1 "
            f"(got window {window}, stride {stride})"
        )
    per_pass = _batch(OCCLUSION_BATCH)
    expected = math.ceil(occlusion_windows((h, w), window, stride) / per_pass) + 1

    def probability(batch: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(batch), dim=1)

    with torch.no_grad(), _counting_forwards(model, expected, progress):
        found = Occlusion(probability).attribute(
            x.detach(),
            sliding_window_shapes=(int(channels), window, window),
            strides=(int(channels), stride, stride),
            target=settings.target,
            baselines=0.0,
            perturbations_per_eval=per_pass,
        )
    result: np.ndarray = found.detach()[0, 0].cpu().numpy()
    return result


def deletion_check(
    model: nn.Module, x: torch.Tensor, attribution: Attribution, fraction: float = 0.1
) -> tuple[float, float]:
    """The class's probability before and after hiding the map's top ``fraction`` of pixels.

    Hidden pixels are set to 0 (the data set's mean colour for a normalised model) in every
    channel. A faithful map's top pixels matter: the probability should drop.

    Returns:
        ``(before, after)``.
    """
    values = torch.from_numpy(attribution.values)
    count = max(1, round(fraction * values.numel()))
    top = torch.topk(values.flatten(), count).indices
    mask = torch.zeros(values.numel(), dtype=torch.bool)
    mask[top] = True
    device = next(itertools.chain(model.parameters(), model.buffers()), x).device
    x = x.detach().clone().to(device)
    hidden = x.clone()
    hidden[..., mask.view(values.shape).to(device)] = 0.0
    target = attribution.settings.target
    with torch.no_grad():
        before = torch.softmax(model(x.detach().clone()), dim=1)[0, target]
        after = torch.softmax(model(hidden), dim=1)[0, target]
    return float(before), float(after)
