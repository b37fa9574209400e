"""Digit CNNs a student configures on the Train page: LeNet-5, Harley's net, a tiny net.

Every architecture is conv → activation → pool, twice, then fully connected layers; the
student picks each conv's channels, the kernel size, max or average pooling and ReLU, tanh
(as the historic LeNet used) or sigmoid. Weights are initialised from a seeded generator, as
PyTorch's defaults would be, so the same seed gives the same network in any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ARCHITECTURES = {
    "lenet5": ("LeNet-5", (6, 16), (120, 84)),
    "harley": ("Harley's net", (6, 16), (120, 100)),
    "tiny": ("Tiny (2 conv, no hidden FC)", (4, 8), ()),
}
"""Name → (title, default conv channels, hidden fully connected sizes)."""
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
KERNELS = (3, 5)


@dataclass(frozen=True)
class NetSettings:
    """What the student chose.

    Attributes:
        architecture: A key of :data:`ARCHITECTURES`.
        channels: Output channels of conv1 and conv2.
        kernel: Both convs' kernel size (3 or 5); conv1 is padded to keep 28×28.
        pooling: ``"max"`` or ``"avg"`` (2×2, stride 2).
        activation: A key of :data:`ACTIVATIONS`.
    """

    architecture: str = "lenet5"
    channels: tuple[int, int] = (6, 16)
    kernel: int = 5
    pooling: str = "max"
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}")
        if self.kernel not in KERNELS or self.pooling not in POOLS:
            raise ValueError(f"kernel must be one of {KERNELS}, pooling one of {list(POOLS)}")
        if self.activation not in ACTIVATIONS or not all(1 <= c <= 64 for c in self.channels):
            raise ValueError(f"activation one of {list(ACTIVATIONS)}, channels 1…64")


def build_net(settings: NetSettings, seed: int) -> nn.Sequential:
    """A fresh network for 1×28×28 digits with 10 class scores, its weights from ``seed``."""
    c1, c2 = settings.channels
    k = settings.kernel
    act, pool = ACTIVATIONS[settings.activation], POOLS[settings.pooling]
    side = ((28 // 2) - k + 1) // 2  # conv1 keeps 28, pool halves, conv2 (valid) shrinks
    layers: dict[str, nn.Module] = {
        "conv1": nn.Conv2d(1, c1, k, padding=k // 2),
        "act1": act(),
        "pool1": pool(2),
        "conv2": nn.Conv2d(c1, c2, k),
        "act2": act(),
        "pool2": pool(2),
        "flatten": nn.Flatten(),
    }
    width = c2 * side * side
    for i, hidden in enumerate(ARCHITECTURES[settings.architecture][2], start=1):
        layers[f"fc{i}"] = nn.Linear(width, hidden)
        layers[f"act_fc{i}"] = act()
        width = hidden
    layers["out"] = nn.Linear(width, 10)
    net = nn.Sequential()
    for name, layer in layers.items():
        net.add_module(name, layer)
    _initialise(net, torch.Generator().manual_seed(seed))
    return net


def _initialise(net: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default init of conv and linear layers, drawn from ``generator``."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            fan_in = module.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            if module.bias is not None:
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
