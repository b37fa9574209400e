"""The networks a set of your pictures can train: a small CNN, or a zoo net's last block.

- ``small``: :class:`SmallPictureNet`, three conv/ReLU/pool blocks on a 64×64 RGB picture,
  trained from scratch; its layers are named ``conv1``, ``relu1``, ``pool1`` … so every
  view of the app shows them by name.
- ``finetune:resnet18``: torchvision's ResNet-18 with ``ResNet18_Weights.IMAGENET1K_V1``
  (through the zoo's loader, :func:`explorer.models.zoo.load_model`), everything frozen but
  ``layer4`` and a new ``fc`` for your classes. Without those weights (offline, or no
  download), it starts from random weights and says so.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from explorer.inputs.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, photo_spec
from explorer.models.zoo import PRETRAINED, load_model

__all__ = [
    "ARCHITECTURES",
    "PASS_MULT_ADDS",
    "SMALL_SIDE",
    "Built",
    "SmallPictureNet",
    "build_picture_net",
]

SMALL_SIDE = 64
ARCHITECTURES = {
    "small": "Small CNN from scratch (64×64, 3 conv blocks)",
    "finetune:resnet18": "Fine-tune ResNet-18's last block (layer4 + a new fc)",
}
"""What :func:`build_picture_net` builds, with a title for each."""
PASS_MULT_ADDS = {"small": (0, 11_200_000), "finetune:resnet18": (1_402_500_000, 411_000_000)}
"""Multiply-adds of one picture's pass (conv and linear layers): through the frozen part, and
through the trained part (counted by a test, to a few per mille; the classes' fc aside)."""
RESNET_WEIGHTS = "torchvision ResNet18_Weights.IMAGENET1K_V1 (ImageNet-1k)"


class SmallPictureNet(nn.Sequential):
    """Three blocks of 3×3 conv, ReLU and 2×2 max-pool (16, 32, 64 channels), then a linear.

    Args:
        classes: How many classes it scores.
        side: The input picture's side (divisible by 8).
    """

    def __init__(self, classes: int, side: int = SMALL_SIDE) -> None:
        layers: dict[str, nn.Module] = {}
        channels = 3
        for block, width in enumerate((16, 32, 64), start=1):
            layers[f"conv{block}"] = nn.Conv2d(channels, width, 3, padding=1)
            layers[f"relu{block}"] = nn.ReLU()
            layers[f"pool{block}"] = nn.MaxPool2d(2)
            channels = width
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels * (side // 8) ** 2, classes)
        super().__init__(OrderedDict(layers))


@dataclass
class Built:
    """A network ready to train, and how to train it.

    Attributes:
        net: The whole network (what is exported and shown).
        spec: Its input.
        frozen: The part that never trains (run once per picture), or ``None``.
        head: The part that trains (on ``frozen``'s output): ``net`` itself when nothing
            is frozen.
        watched: The weight shown changing while it trains.
        weights: Where the starting weights came from, in words.
        notice: One sentence to show (no pretrained weights …), or ``None``.
    """

    net: nn.Module
    spec: InputSpec
    frozen: nn.Module | None
    head: nn.Module
    watched: str
    weights: str
    notice: str | None = None


def build_picture_net(architecture: str, classes: int, seed: int = 0) -> Built:
    """The network of ``architecture`` (a key of :data:`ARCHITECTURES`) for ``classes``.

    Raises:
        ValueError: An unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if architecture == "small":
            net = SmallPictureNet(classes)
            spec = InputSpec(3, SMALL_SIDE, SMALL_SIDE, IMAGENET_MEAN, IMAGENET_STD)
            return Built(net, spec, None, net, "conv1.weight", "random (trained from scratch)")
        return _finetune_resnet18(classes)


def _finetune_resnet18(classes: int) -> Built:
    loaded = load_model("resnet18", device="cpu")
    net = loaded.model
    net.fc = nn.Linear(net.fc.in_features, classes)  # type: ignore[union-attr,arg-type]
    net.requires_grad_(False)
    for trained in (net.layer4, net.fc):
        trained.requires_grad_(True)
    frozen = nn.Sequential(
        *(net.get_submodule(n) for n in ("conv1", "bn1", "relu", "maxpool", "layer1")),
        net.get_submodule("layer2"),
        net.get_submodule("layer3"),
    ).eval()
    head = nn.Sequential(
        net.get_submodule("layer4"), net.get_submodule("avgpool"), nn.Flatten(), net.fc
    )
    if loaded.weights == PRETRAINED:
        weights, notice = RESNET_WEIGHTS, None
    else:
        weights = "random init (no pretrained weights)"
        notice = (
            f"ResNet-18's pretrained weights ({RESNET_WEIGHTS}) are not available here"
            f"{_reason(loaded.notice)}: fine-tuning starts from RANDOM weights, so only "
            "layer4 and fc learn and the frozen layers are random filters."
        )
    return Built(net, photo_spec(), frozen, head, "layer4.1.conv2.weight", weights, notice)


def _reason(notice: str | None) -> str:
    """The zoo's reason, e.g. " (downloads are off (EXPLORER_OFFLINE is set))"."""
    if not notice or "—" not in notice:
        return ""
    return f" ({notice.split('—', 1)[1].split('. ', 1)[0].strip()})"
