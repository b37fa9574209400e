"""The model zoo: shipped digit nets and the famous torchvision CNNs, with their weights.

``load_model(name)`` gives a :class:`LoadedModel`: the network in eval mode on the chosen
device, where its weights came from (``pretrained``, ``untrained`` or a file path), its class
names and the preprocessing it expects. Pretrained torchvision weights come through
torchvision's weights API; when they cannot be downloaded the model still loads, untrained
and flagged so, with one notice saying why.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import torch
from torch import nn

from explorer.analysis.capture import CaptureResult, LayerOutput, capture
from explorer.assets import MODELS_DIR
from explorer.inputs.preprocess import PreparedInput, preprocess_input
from explorer.inputs.spec import InputSpec, digit_spec, photo_spec
from explorer.models.device import (
    describe_device,
    is_out_of_memory,
    move_to_cpu,
    pick_device,
    place_model,
)
from explorer.models.nets import DIGIT_CLASSES, HarleyNet, LeNet5, ZFNet
from explorer.models.weights import WeightsError, load_user_weights

OFFLINE_ENV_VAR = "EXPLORER_OFFLINE"

PRETRAINED = "pretrained"
UNTRAINED = "untrained"


class Family(StrEnum):
    """What a model reads: MNIST digits (1 channel) or photos (ImageNet, RGB)."""

    DIGIT = "digit"
    PHOTO = "photo"


class Source(StrEnum):
    """Where a model and its weights come from."""

    SHIPPED = "shipped"
    """A digit net, its weights in ``assets/models/``."""
    TORCHVISION = "torchvision"
    """Torchvision's architecture and weights API."""
    PAPER = "paper"
    """Built from the paper: no trained weights exist."""
    OWN = "own"
    """A ``.pt2``/``.onnx`` file a user brought (:mod:`explorer.models.own`)."""
    TRAINED = "trained"
    """Trained on the Train page in this session."""


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model before loading it.

    Attributes:
        input: How a picture becomes its input; ``None``: its family's (the MNIST layout for
            digits, ImageNet's normalisation for photos) at ``input_size``.
    """

    name: str
    title: str
    family: Family
    input_size: tuple[int, int, int]
    year: int
    description: str
    source: Source
    torchvision_name: str | None = None
    build_kwargs: dict[str, Any] = field(default_factory=dict)
    input: InputSpec | None = None

    def __post_init__(self) -> None:
        # Plain strings are accepted (and kept as the enums they name) from older callers.
        object.__setattr__(self, "family", Family(self.family))
        object.__setattr__(self, "source", Source(self.source))

    @property
    def input_spec(self) -> InputSpec:
        """What the model takes and how a picture is turned into it."""
        if self.input is not None:
            return self.input
        _, height, width = self.input_size
        return digit_spec(height) if self.family == Family.DIGIT else photo_spec(height, width)


ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "lenet5",
            "LeNet-5",
            Family.DIGIT,
            (1, 28, 28),
            1998,
            "LeCun's digit reader: 2 conv + 2 pool + 3 FC; trained on MNIST, weights shipped.",
            Source.SHIPPED,
        ),
        ModelSpec(
            "harley",
            "Harley's MNIST net",
            Family.DIGIT,
            (1, 32, 32),
            2015,
            "The net of Adam Harley's 3-D MNIST visualisation (32×32 input); weights shipped.",
            Source.SHIPPED,
        ),
        ModelSpec(
            "alexnet",
            "AlexNet",
            Family.PHOTO,
            (3, 224, 224),
            2012,
            "ImageNet 2012 winner: 5 conv + 3 FC, ReLU, dropout.",
            Source.TORCHVISION,
            "alexnet",
        ),
        ModelSpec(
            "zfnet",
            "ZFNet",
            Family.PHOTO,
            (3, 224, 224),
            2013,
            "ImageNet 2013 winner: AlexNet with a 7×7 stride-2 first layer (Zeiler & Fergus); "
            "built from the paper, no pretrained weights exist.",
            Source.PAPER,
        ),
        ModelSpec(
            "vgg11",
            "VGG-11",
            Family.PHOTO,
            (3, 224, 224),
            2014,
            "Stacks of 3×3 convolutions (Simonyan & Zisserman), 8 conv + 3 FC.",
            Source.TORCHVISION,
            "vgg11",
        ),
        ModelSpec(
            "vgg16",
            "VGG-16",
            Family.PHOTO,
            (3, 224, 224),
            2014,
            "ImageNet 2014 runner-up: 13 conv + 3 FC, all 3×3.",
            Source.TORCHVISION,
            "vgg16",
        ),
        ModelSpec(
            "googlenet",
            "GoogLeNet",
            Family.PHOTO,
            (3, 224, 224),
            2014,
            "ImageNet 2014 winner: Inception blocks, global average pooling.",
            Source.TORCHVISION,
            "googlenet",
            {"aux_logits": False, "transform_input": True, "init_weights": True},
        ),
        ModelSpec(
            "resnet18",
            "ResNet-18",
            Family.PHOTO,
            (3, 224, 224),
            2015,
            "ImageNet 2015 winner's family: identity shortcut connections, 18 layers.",
            Source.TORCHVISION,
            "resnet18",
        ),
        ModelSpec(
            "resnet50",
            "ResNet-50",
            Family.PHOTO,
            (3, 224, 224),
            2015,
            "Deeper ResNet with 1×1-3×3-1×1 bottleneck blocks.",
            Source.TORCHVISION,
            "resnet50",
        ),
        ModelSpec(
            "mobilenet_v3_small",
            "MobileNetV3-Small",
            Family.PHOTO,
            (3, 224, 224),
            2019,
            "Depthwise separable convs, squeeze-and-excitation, hard-swish; made for phones.",
            Source.TORCHVISION,
            "mobilenet_v3_small",
        ),
        ModelSpec(
            "squeezenet1_1",
            "SqueezeNet 1.1",
            Family.PHOTO,
            (3, 224, 224),
            2016,
            "AlexNet accuracy with 50× fewer parameters: Fire modules (squeeze 1×1, expand).",
            Source.TORCHVISION,
            "squeezenet1_1",
        ),
    )
}


class ModelError(ValueError):
    """An unknown model name or weights that cannot be used with it."""


def get_spec(name: str) -> ModelSpec:
    """The zoo entry called ``name``.

    Raises:
        ModelError: no such model (the message lists the zoo).
    """
    try:
        return ZOO[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}: choose one of {', '.join(ZOO)}") from None


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV_VAR, "").strip().lower() in {"1", "true", "yes"}


@functools.lru_cache(maxsize=8)
def host_reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host:443`` accepts a connection within ``timeout`` seconds, DNS included.

    ``create_connection``'s timeout does not cover the name lookup, which can hang for
    much longer on a machine without internet: the attempt runs in a daemon thread and
    is abandoned at the deadline.
    """
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=attempt, name=f"reach-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


def torchvision_weights(spec: ModelSpec) -> Any:
    """Torchvision's default weights enum entry of a zoo photo model (AlexNet's for ZFNet)."""
    name = spec.torchvision_name or "alexnet"  # ZFNet shares AlexNet's classes and transforms
    from torchvision.models import get_model_weights  # lazy: ~1.4 s the Draw page never needs

    return get_model_weights(name).DEFAULT


def cached_weights_path(weights: Any) -> Path:
    """Where torch's hub cache keeps a torchvision weights file.

    The same name ``torch.hub.load_state_dict_from_url`` uses: ``$TORCH_HOME/hub/checkpoints/``
    (``~/.cache/torch/hub/checkpoints/`` by default) and the URL's file name.
    """
    name = os.path.basename(urlparse(str(weights.url)).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def download_blocked(url: str) -> str | None:
    """Why ``url`` cannot be downloaded now (offline, host unreachable), or None to try."""
    if _offline():
        return f"downloads are off ({OFFLINE_ENV_VAR} is set)"
    host = urlparse(url).hostname or ""
    if not host_reachable(host):
        return f"{host} cannot be reached (no internet?)"
    return None


def pretrained_state(weights: Any) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """Torchvision's pretrained state dict, or ``None`` and the reason it is unavailable."""
    if not cached_weights_path(weights).is_file():
        blocked = download_blocked(weights.url)
        if blocked:
            return None, blocked
    try:
        return weights.get_state_dict(progress=False, check_hash=True), None
    except Exception as exc:  # network, hash and disk errors all mean "not available"
        return None, f"the download failed ({type(exc).__name__}: {str(exc)[:120]})"


def build_architecture(spec: ModelSpec) -> nn.Module:
    """The architecture with deterministic untrained weights (seed 0)."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.manual_seed(0)
        if spec.name == "lenet5":
            return LeNet5()
        if spec.name == "harley":
            return HarleyNet()
        if spec.name == "zfnet":
            return ZFNet()
        assert spec.torchvision_name is not None
        from torchvision.models import get_model

        model: nn.Module = get_model(spec.torchvision_name, weights=None, **spec.build_kwargs)
        return model


def shipped_card(name: str) -> dict[str, Any] | None:
    """The JSON card of a shipped model's weights (data, epochs, accuracy…), if any."""
    path = MODELS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class LoadedModel:
    """A model ready to run: a zoo model, a user's file or a run trained on the Train page.

    How a picture becomes its input is its spec's :class:`~explorer.inputs.spec.InputSpec`
    (:attr:`input_spec`); where it runs and the move to the CPU are
    :mod:`explorer.models.device`'s.

    Attributes:
        spec: Its zoo entry.
        model: The network, in eval mode, on ``device``.
        device: Where it runs.
        weights: ``"pretrained"``, ``"untrained"`` or the path/name of the user's file.
        categories: Class names, index-aligned with the logits.
        notice: One sentence to show the user (e.g. why the weights are untrained), or None.
        card: The shipped weights' card, for digit models.
    """

    spec: ModelSpec
    model: nn.Module
    device: torch.device
    weights: str
    categories: tuple[str, ...]
    notice: str | None = None
    card: dict[str, Any] | None = None
    identity: str = ""
    """What tells these weights apart from others of the same name and label: the sha256 of an
    upload, a trained run's step; empty for the zoo's own weights."""
    _photo_transform: Callable[..., torch.Tensor] | None = None
    """Torchvision's transform of its weights (fit and normalise); ``None``: the spec's own."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        """The zoo name, e.g. ``resnet18``."""
        return self.spec.name

    @property
    def cache_key(self) -> str:
        """A key for results computed from this model: name, weights and what they hold."""
        return f"{self.name}|{self.weights}|{self.identity}"

    @property
    def is_untrained(self) -> bool:
        """True when the weights are random: predictions mean nothing."""
        return self.weights == UNTRAINED

    @property
    def weights_label(self) -> str:
        """How the weights are shown to a person."""
        if self.weights == PRETRAINED:
            return (
                "pretrained (MNIST, shipped)"
                if self.spec.family == Family.DIGIT
                else "pretrained (ImageNet)"
            )
        if self.weights == UNTRAINED:
            return "untrained (random weights)"
        if self.spec.source == Source.OWN:
            return f"in the file ({Path(self.weights).name})"
        if self.spec.source == Source.TRAINED:
            where = "the Train page" if self.spec.family == Family.DIGIT else "your pictures"
            return f"trained by you, on {where}"
        return f"own weights ({Path(self.weights).name})"

    @property
    def input_spec(self) -> InputSpec:
        """What the model takes and how :meth:`prepare` turns a picture into it."""
        return self.spec.input_spec

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ``(mean, std)`` per channel that :meth:`prepare` normalises the input with."""
        return self.input_spec.normalisation

    @property
    def device_label(self) -> str:
        """The device in words."""
        return describe_device(self.device)

    @property
    def parameter_count(self) -> int:
        """Number of learnable parameters."""
        return sum(p.numel() for p in self.model.parameters())

    def weight_of(self, layer: LayerOutput) -> torch.Tensor:
        """The weight of the module that computed ``layer`` (a conv or linear layer).

        Raises:
            ValueError: that layer's module has no weight tensor.
        """
        module = self.model.get_submodule(layer.module or "")
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"{layer.name} has no weights")
        return weight

    def prepare(self, source: Any) -> PreparedInput:
        """Preprocess an image (bytes, path, file or PIL image) the way this model expects.

        Raises:
            explorer.inputs.preprocess.ImageError: a bad image or (digits) nothing drawn.
        """
        return preprocess_input(source, self.input_spec, self._photo_transform)

    def capture(
        self, x: PreparedInput | torch.Tensor, layers: Iterable[str] | None = None
    ) -> CaptureResult:
        """Capture every layer (see :func:`explorer.analysis.capture.capture`).

        Falls back to the CPU, with a notice, if the accelerator runs out of memory.
        """
        tensor = x.tensor if isinstance(x, PreparedInput) else x
        try:
            return capture(self.model, tensor, layers)
        except Exception as exc:
            if self.device.type == "cpu" or not is_out_of_memory(exc):
                raise
            self.fallback_to_cpu(f"{self.device} ran out of memory")
            return capture(self.model, tensor, layers)

    def fallback_to_cpu(self, reason: str) -> None:
        """Move the model to the CPU for good, recording why in :attr:`notice`."""
        with self._lock:
            if self.device.type == "cpu":
                return
            self.device = move_to_cpu(self.model)
            note = f"{reason}: running on the CPU instead."
            self.notice = f"{self.notice} {note}" if self.notice else note

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the CLI's ``models``/``predict`` fields)."""
        return {
            "model": self.name,
            "title": self.spec.title,
            "weights": self.weights,
            "device": str(self.device),
            "input_size": list(self.spec.input_size),
            "parameters": self.parameter_count,
            "notice": self.notice,
        }


def _user_weights(
    model: nn.Module, weights: str | os.PathLike[str] | bytes | BinaryIO
) -> tuple[str, str]:
    """Load the user's state dict into ``model``; its label and what tells it apart.

    Raises:
        ModelError: The weights do not fit (the message lists the mismatches).
    """
    try:
        return load_user_weights(model, weights)
    except WeightsError as exc:
        raise ModelError(str(exc)) from None


def load_model(
    name: str,
    weights: str | os.PathLike[str] | bytes | BinaryIO | None = None,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Load a zoo model.

    Args:
        name: A key of :data:`ZOO`.
        weights: ``None``/``"pretrained"`` for the trained weights (shipped or torchvision,
            falling back to untrained with a notice), ``"untrained"`` for random weights, or a
            ``.pth``/``.pt`` state dict (path, bytes or file) for this architecture.
        device: A device or preference (see :func:`explorer.models.device.pick_device`).

    Raises:
        ModelError: unknown model, or own weights that do not fit (message lists mismatches).
        explorer.models.device.DeviceError: the device is not available.
    """
    spec = get_spec(name)
    target = device if isinstance(device, torch.device) else pick_device(device)
    model = build_architecture(spec)
    notice: str | None = None
    label: str
    identity = ""
    if weights is None or weights == PRETRAINED:
        state, reason = _pretrained_weights(spec)
        if state is None:
            label = UNTRAINED
            notice = (
                f"{spec.title}: no pretrained weights — {reason}. Showing UNTRAINED (random) "
                "weights: every layer runs, but the predictions are meaningless."
            )
        else:
            model.load_state_dict(state, strict=True)
            label = PRETRAINED
    elif weights == UNTRAINED:
        label = UNTRAINED
    else:
        label, identity = _user_weights(model, weights)
    model.eval().requires_grad_(False)
    placed = place_model(model, target)
    if placed != target:
        note = f"{target} ran out of memory loading {spec.title}: running on the CPU instead."
        notice = f"{notice} {note}" if notice else note
        target = placed
    if spec.family == Family.DIGIT:
        categories = DIGIT_CLASSES
        transform = None
    else:
        tv_weights = torchvision_weights(spec)
        categories = tuple(tv_weights.meta["categories"])
        transform = tv_weights.transforms()
    return LoadedModel(
        spec=spec,
        model=model,
        device=target,
        weights=label,
        categories=categories,
        notice=notice,
        card=shipped_card(spec.name) if spec.source == Source.SHIPPED else None,
        identity=identity,
        _photo_transform=transform,
    )


def _pretrained_weights(spec: ModelSpec) -> tuple[dict[str, torch.Tensor] | None, str]:
    if spec.source == Source.PAPER:
        return None, "none exist for this architecture (it is built from the paper)"
    if spec.source == Source.SHIPPED:
        path = MODELS_DIR / f"{spec.name}.pth"
        if not path.is_file():
            return None, f"the shipped weights file {path.name} is missing"
        return torch.load(path, map_location="cpu", weights_only=True), ""
    state, reason = pretrained_state(torchvision_weights(spec))
    return state, reason or ""


def pretrained_download(spec: ModelSpec) -> tuple[str, Path] | None:
    """The URL of a zoo model's torchvision weights and where the app looks for them.

    None for the models with nothing to download: the digit nets (weights shipped in
    ``assets/models/``) and ZFNet (no pretrained weights exist).
    """
    if spec.source != Source.TORCHVISION:
        return None
    weights = torchvision_weights(spec)
    return str(weights.url), cached_weights_path(weights)


def download_pretrained(spec: ModelSpec, progress: bool = True) -> Path:
    """Download a zoo model's torchvision weights into torch's hub cache, hash checked.

    Writes what ``weights.get_state_dict()`` would (same file, same hash check) without
    loading the tensors, so fetching VGG-16 does not hold 0.5 GB in memory.

    Args:
        spec: A zoo entry with torchvision weights.
        progress: Show torch's progress bar on stderr.

    Returns:
        The cached file.

    Raises:
        ModelError: the model has no torchvision weights, or downloads are blocked.
        OSError: the download failed (network, disk).
        RuntimeError: the file's sha256 does not start with the hash in its name.
    """
    target = pretrained_download(spec)
    if target is None:
        raise ModelError(f"{spec.name} has no torchvision weights to download")
    url, path = target
    blocked = download_blocked(url)
    if blocked:
        raise ModelError(f"cannot download the weights of {spec.name}: {blocked}")
    path.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(path.name)
    torch.hub.download_url_to_file(
        url, str(path), match.group(1) if match else None, progress=progress
    )
    return path


def _torchvision_version() -> str:
    import torchvision

    return str(torchvision.__version__)


def zoo_table() -> list[dict[str, Any]]:
    """Every zoo entry as a JSON-ready row (for ``python -m explorer models``)."""
    rows = []
    for spec in ZOO.values():
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "family": spec.family,
                "input_size": list(spec.input_size),
                "year": spec.year,
                "weights": {
                    Source.SHIPPED: "shipped in assets/ (trained on MNIST)",
                    Source.TORCHVISION: f"torchvision {_torchvision_version()} weights API "
                    "(download; untrained and labelled so when offline)",
                    Source.PAPER: "none (untrained)",
                }[spec.source],
                "description": spec.description,
            }
        )
    return rows
