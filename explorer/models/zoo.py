"""The model zoo: shipped digit nets and the famous torchvision CNNs, with their weights.

``load_model(name)`` gives a :class:`LoadedModel`: the network in eval mode on the chosen
device, where its weights came from (``pretrained``, ``untrained`` or a file path), its class
names and the preprocessing it expects. Pretrained torchvision weights come through
torchvision's weights API; when they cannot be downloaded the model still loads, untrained
and flagged so, with one notice saying why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import torch
from torch import nn

from explorer.analysis.capture import CaptureResult, LayerOutput, capture
from explorer.inputs.preprocess import PreparedInput, preprocess_digit, preprocess_photo
from explorer.models.device import describe_device, is_out_of_memory, pick_device
from explorer.models.nets import DIGIT_CLASSES, MNIST_MEAN, MNIST_STD, HarleyNet, LeNet5, ZFNet
from explorer.models.weights import WeightsError, load_weights_into

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
MODELS_DIR = ASSETS_DIR / "models"
OFFLINE_ENV_VAR = "EXPLORER_OFFLINE"

PRETRAINED = "pretrained"
UNTRAINED = "untrained"


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model before loading it."""

    name: str
    title: str
    family: str  # "digit" (MNIST, 1 channel) or "photo" (ImageNet, RGB)
    input_size: tuple[int, int, int]
    year: int
    description: str
    source: str  # "shipped" (weights in assets/), "torchvision", or "paper" (never trained)
    torchvision_name: str | None = None
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def has_pretrained(self) -> bool:
        """Whether trained weights exist for it (shipped or from torchvision)."""
        return self.source != "paper"


ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "lenet5",
            "LeNet-5",
            "digit",
            (1, 28, 28),
            1998,
            "LeCun's digit reader: 2 conv + 2 pool + 3 FC; trained on MNIST, weights shipped.",
            "shipped",
        ),
        ModelSpec(
            "harley",
            "Harley's MNIST net",
            "digit",
            (1, 32, 32),
            2015,
            "The net of Adam Harley's 3-D MNIST visualisation (32×32 input); weights shipped.",
            "shipped",
        ),
        ModelSpec(
            "alexnet",
            "AlexNet",
            "photo",
            (3, 224, 224),
            2012,
            "ImageNet 2012 winner: 5 conv + 3 FC, ReLU, dropout.",
            "torchvision",
            "alexnet",
        ),
        ModelSpec(
            "zfnet",
            "ZFNet",
            "photo",
            (3, 224, 224),
            2013,
            "ImageNet 2013 winner: AlexNet with a 7×7 stride-2 first layer (Zeiler & Fergus); "
            "built from the paper, no pretrained weights exist.",
            "paper",
        ),
        ModelSpec(
            "vgg11",
            "VGG-11",
            "photo",
            (3, 224, 224),
            2014,
            "Stacks of 3×3 convolutions (Simonyan & Zisserman), 8 conv + 3 FC.",
            "torchvision",
            "vgg11",
        ),
        ModelSpec(
            "vgg16",
            "VGG-16",
            "photo",
            (3, 224, 224),
            2014,
            "ImageNet 2014 runner-up: 13 conv + 3 FC, all 3×3.",
            "torchvision",
            "vgg16",
        ),
        ModelSpec(
            "googlenet",
            "GoogLeNet",
            "photo",
            (3, 224, 224),
            2014,
            "ImageNet 2014 winner: Inception blocks, global average pooling.",
            "torchvision",
            "googlenet",
            {"aux_logits": False, "transform_input": True, "init_weights": True},
        ),
        ModelSpec(
            "resnet18",
            "ResNet-18",
            "photo",
            (3, 224, 224),
            2015,
            "ImageNet 2015 winner's family: identity shortcut connections, 18 layers.",
            "torchvision",
            "resnet18",
        ),
        ModelSpec(
            "resnet50",
            "ResNet-50",
            "photo",
            (3, 224, 224),
            2015,
            "Deeper ResNet with 1×1-3×3-1×1 bottleneck blocks.",
            "torchvision",
            "resnet50",
        ),
        ModelSpec(
            "mobilenet_v3_small",
            "MobileNetV3-Small",
            "photo",
            (3, 224, 224),
            2019,
            "Depthwise separable convs, squeeze-and-excitation, hard-swish; made for phones.",
            "torchvision",
            "mobilenet_v3_small",
        ),
        ModelSpec(
            "squeezenet1_1",
            "SqueezeNet 1.1",
            "photo",
            (3, 224, 224),
            2016,
            "AlexNet accuracy with 50× fewer parameters: Fire modules (squeeze 1×1, expand).",
            "torchvision",
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
def _host_reachable(host: str, timeout: float = 3.0) -> bool:
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


def _torchvision_weights(spec: ModelSpec) -> Any:
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
    if not _host_reachable(host):
        return f"{host} cannot be reached (no internet?)"
    return None


def _pretrained_state(weights: Any) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """Torchvision's pretrained state dict, or ``None`` and the reason it is unavailable."""
    if not cached_weights_path(weights).is_file():
        blocked = download_blocked(weights.url)
        if blocked:
            return None, blocked
    try:
        return weights.get_state_dict(progress=False, check_hash=True), None
    except Exception as exc:  # network, hash and disk errors all mean "not available"
        return None, f"the download failed ({type(exc).__name__}: {str(exc)[:120]})"


def _build(spec: ModelSpec) -> nn.Module:
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
    """A zoo model ready to run.

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
                if self.spec.family == "digit"
                else "pretrained (ImageNet)"
            )
        if self.weights == UNTRAINED:
            return "untrained (random weights)"
        if self.spec.source == "own":
            return f"in the file ({Path(self.weights).name})"
        if self.spec.source == "trained":
            return "trained by you, on the Train page"
        return f"own weights ({Path(self.weights).name})"

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ``(mean, std)`` per channel that :meth:`prepare` normalises the input with."""
        if self.spec.family == "digit":
            return (MNIST_MEAN,), (MNIST_STD,)
        transform = self._photo_transform
        mean = getattr(transform, "mean", (0.0,))
        std = getattr(transform, "std", (1.0,))
        return tuple(map(float, mean)), tuple(map(float, std))

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
        if self.spec.family == "digit":
            return preprocess_digit(source, size=self.spec.input_size[-1])
        transform = self._photo_transform
        assert transform is not None
        return preprocess_photo(source, transform, transform.mean, transform.std)  # type: ignore[attr-defined]

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
            self.model.to("cpu")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.device = torch.device("cpu")
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


def own_loaded_model(
    module: nn.Module,
    filename: str,
    file_format: str,
    spec: Any,
    categories: tuple[str, ...],
    digest: str = "",
) -> LoadedModel:
    """A user's model (see :mod:`explorer.models.own`) as the pages and the CLI use any model.

    Args:
        module: Its graph, in eval mode, on its device.
        filename: The file it came from (its weights' label).
        file_format: ``"torch.export"`` or ``"ONNX"``.
        spec: Its :class:`~explorer.models.own.InputSpec`.
        categories: Its class names.
        digest: sha256 of the file (graph and weights); ``""``: the weights' own digest.
    """
    from explorer.models.own import OwnTransform

    entry = ModelSpec(
        name=f"own:{Path(filename).name}",
        title=f"Your model ({Path(filename).name})",
        family="digit" if spec.digit else "photo",
        input_size=spec.shape,
        year=0,
        description=f"A {file_format} graph you brought.",
        source="own",
    )
    device = next(iter(module.parameters()), torch.zeros(0)).device
    return LoadedModel(
        spec=entry,
        model=module,
        device=device,
        weights=Path(filename).name,
        categories=categories,
        identity=f"{digest or weights_digest(module)}:{spec}",  # the file's content, its input
        _photo_transform=None if spec.digit else OwnTransform(spec),
    )


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's weights (names and values): what tells two uploads apart."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _own_weights(
    model: nn.Module, weights: str | os.PathLike[str] | bytes | BinaryIO
) -> tuple[str, str]:
    """Load the user's state dict into ``model``; its label and what tells it apart.

    Raises:
        ModelError: The weights do not fit (the message lists the mismatches).
    """
    try:
        load_weights_into(model, weights)
    except WeightsError as exc:
        raise ModelError(str(exc)) from None
    label = (
        str(weights)
        if isinstance(weights, str | os.PathLike)
        else getattr(weights, "name", "uploaded file")
    )
    return label, weights_digest(model)


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
    model = _build(spec)
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
        label, identity = _own_weights(model, weights)
    model.eval().requires_grad_(False)
    try:
        model.to(target)
    except Exception as exc:
        if target.type == "cpu" or not is_out_of_memory(exc):
            raise
        model.to("cpu")
        note = f"{target} ran out of memory loading {spec.title}: running on the CPU instead."
        notice = f"{notice} {note}" if notice else note
        target = torch.device("cpu")
    if spec.family == "digit":
        categories = DIGIT_CLASSES
        transform = None
    else:
        tv_weights = _torchvision_weights(spec)
        categories = tuple(tv_weights.meta["categories"])
        transform = tv_weights.transforms()
    return LoadedModel(
        spec=spec,
        model=model,
        device=target,
        weights=label,
        categories=categories,
        notice=notice,
        card=shipped_card(spec.name) if spec.source == "shipped" else None,
        identity=identity,
        _photo_transform=transform,
    )


def _pretrained_weights(spec: ModelSpec) -> tuple[dict[str, torch.Tensor] | None, str]:
    if spec.source == "paper":
        return None, "none exist for this architecture (it is built from the paper)"
    if spec.source == "shipped":
        path = MODELS_DIR / f"{spec.name}.pth"
        if not path.is_file():
            return None, f"the shipped weights file {path.name} is missing"
        return torch.load(path, map_location="cpu", weights_only=True), ""
    state, reason = _pretrained_state(_torchvision_weights(spec))
    return state, reason or ""


def pretrained_download(spec: ModelSpec) -> tuple[str, Path] | None:
    """The URL of a zoo model's torchvision weights and where the app looks for them.

    None for the models with nothing to download: the digit nets (weights shipped in
    ``assets/models/``) and ZFNet (no pretrained weights exist).
    """
    if spec.source != "torchvision":
        return None
    weights = _torchvision_weights(spec)
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
                    "shipped": "shipped in assets/ (trained on MNIST)",
                    "torchvision": f"torchvision {_torchvision_version()} weights API (download; "
                    "untrained and labelled so when offline)",
                    "paper": "none (untrained)",
                }[spec.source],
                "description": spec.description,
            }
        )
    return rows
