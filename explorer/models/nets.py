"""Network definitions that torchvision does not ship: the digit nets and ZFNet.

:class:`DigitNet` is the one definition of the digit nets: the shipped LeNet-5 and Harley's
net are its defaults, and the Train page builds the same classes with a student's channels,
kernel, pooling and activation. Every stage is its own named module (no functional
activations, no in-place ops), so each one shows up in the capture under a readable name.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
from torch import nn

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
"""Activation name (also its modules' name: ``relu1``, ``tanh1``…) → module class."""
POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
KERNELS = (3, 5)
DIGIT_SIDE = 28
"""A digit is 28×28 pixels, as in MNIST."""
Net = TypeVar("Net", bound=nn.Module)


class DigitNet(nn.Module):
    """Two conv → activation → pool stages, then fully connected layers, for one digit.

    The modules, in order: ``conv1``, ``relu1``, ``pool1``, ``conv2``, ``relu2``, ``pool2``,
    ``flatten``, then ``fc1``, ``relu3``, ``fc2``, ``relu4`` … for the hidden layers and
    ``fc{len(hidden) + 1}`` for the class scores (``fc3`` in LeNet-5 and Harley's net, ``fc1``
    in the tiny net); an activation is named after its kind (``tanh1`` with tanh). A subclass
    fixes the design; its arguments are what a student may change on the Train page.

    Args:
        num_classes: Class scores out.
        channels: conv1's and conv2's output channels (default: the design's).
        kernel: Both convs' kernel size.
        pooling: A key of :data:`POOLS` (2×2, stride 2).
        activation: A key of :data:`ACTIVATIONS`.

    Attributes:
        title: The design's name in words.
        default_channels: conv1's and conv2's output channels in the design.
        hidden: Sizes of the hidden fully connected layers.
        input_padding: Zero pixels around the 28×28 digit in the input. When 0, conv1 pads
            the digit itself to keep 28×28 ("same" padding); otherwise conv1 has no padding.
    """

    conv1: nn.Conv2d  # every design has the two convs; what follows them depends on it
    conv2: nn.Conv2d
    title = "Digit CNN"
    default_channels: tuple[int, int] = (6, 16)
    hidden: tuple[int, ...] = (120, 84)
    input_padding = 0

    def __init__(
        self,
        num_classes: int = 10,
        *,
        channels: tuple[int, int] | None = None,
        kernel: int = 5,
        pooling: str = "max",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        c1, c2 = channels or self.default_channels
        act, pool = ACTIVATIONS[activation], POOLS[pooling]
        padding = 0 if self.input_padding else kernel // 2
        side = (self.input_size[-1] + 2 * padding - kernel + 1) // 2
        side = (side - kernel + 1) // 2
        layers: list[tuple[str, nn.Module]] = [
            ("conv1", nn.Conv2d(1, c1, kernel, padding=padding)),
            (f"{activation}1", act()),
            ("pool1", pool(2)),
            ("conv2", nn.Conv2d(c1, c2, kernel)),
            (f"{activation}2", act()),
            ("pool2", pool(2)),
            ("flatten", nn.Flatten()),
        ]
        width = c2 * side * side
        for i, size in enumerate(self.hidden, start=1):
            layers += [(f"fc{i}", nn.Linear(width, size)), (f"{activation}{i + 2}", act())]
            width = size
        layers.append((f"fc{len(self.hidden) + 1}", nn.Linear(width, num_classes)))
        for name, layer in layers:
            self.add_module(name, layer)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(1, side, side)``: the 28×28 digit and its zero padding."""
        side = DIGIT_SIDE + 2 * self.input_padding
        return (1, side, side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, classes)`` of a batch of normalised digits."""
        for layer in self.children():
            x = layer(x)
        return x


class LeNet5(DigitNet):
    """LeNet-5 for 28×28 MNIST digits, with ReLU and max-pooling.

    conv 6@5×5 pad 2 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 →
    FC 120 → ReLU → FC 84 → ReLU → FC 10 (logits).
    """

    fc1: nn.Linear
    fc2: nn.Linear
    fc3: nn.Linear
    title = "LeNet-5"
    hidden = (120, 84)


class HarleyNet(DigitNet):
    """The net of Adam Harley's interactive MNIST visualisation (32×32 input).

    conv 6@5×5 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 →
    FC 120 → ReLU → FC 100 → ReLU → FC 10. Harley's figure does not draw the
    activations; a ReLU after each conv and hidden FC layer makes it trainable.
    The 28×28 digit is zero-padded by 2 pixels (before normalisation) to 32×32.
    """

    fc1: nn.Linear
    fc2: nn.Linear
    fc3: nn.Linear
    title = "Harley's net"
    hidden = (120, 100)
    input_padding = 2


class TinyNet(DigitNet):
    """The smallest digit net: conv 4@5×5 and conv 8@5×5, then straight to the 10 scores."""

    title = "Tiny (2 conv, no hidden FC)"
    default_channels = (4, 8)
    hidden = ()


DIGIT_NETS: dict[str, type[DigitNet]] = {"lenet5": LeNet5, "harley": HarleyNet, "tiny": TinyNet}
"""Name (as the CLI, the cards and the Train page use it) → digit net."""


def build_digit_net(name: str, seed: int, **options: Any) -> DigitNet:
    """A fresh ``DIGIT_NETS[name]``, its weights drawn from ``seed`` (see :func:`initialise`).

    Args:
        name: A key of :data:`DIGIT_NETS`.
        seed: Seeds the weights; the global generator is left as it was.
        **options: What :class:`DigitNet` takes besides the design (channels, kernel…).
    """
    with torch.random.fork_rng(devices=[]):
        net = DIGIT_NETS[name](**options)
    return initialise(net, seed)


def initialise(net: Net, seed: int) -> Net:
    """Give every conv and linear layer PyTorch's default init, drawn from ``seed``.

    The same numbers as ``torch.manual_seed(seed)`` then building the net, without touching
    the global generator, so the same seed gives the same net in any thread.

    Returns:
        ``net``, initialised in place.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(module.weight[0].numel())
            if module.bias is not None:
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return net


class ZFNet(nn.Module):
    """ZFNet (Zeiler & Fergus 2013, Fig. 3) for 224×224 RGB images.

    conv1 96@7×7/2 → ReLU → max-pool 3/2 → LRN → conv2 256@5×5/2 → ReLU → max-pool 3/2 →
    LRN → conv3 384@3×3 → ReLU → conv4 384@3×3 → ReLU → conv5 256@3×3 → ReLU →
    max-pool 3/2 → FC 4096 → FC 4096 → FC 1000. Map sizes 110, 55, 26, 13, 13, 13, 6 as in
    the paper. No pretrained weights exist in torchvision: always untrained here.
    """

    input_size = (3, 224, 224)

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.LocalResponseNorm(5),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            nn.LocalResponseNorm(5),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, classes)`` of a batch of images."""
        logits: torch.Tensor = self.classifier(self.flatten(self.features(x)))
        return logits
