"""Digit CNNs a student configures on the Train page: LeNet-5, Harley's net, a tiny net.

Each is the one definition in :mod:`explorer.models.nets` (the shipped LeNet-5 and Harley's
net are the defaults); the student picks each conv's channels, the kernel size, max or
average pooling and ReLU, tanh (as the historic LeNet used) or sigmoid. Weights come from a
seeded generator, as PyTorch's defaults would, so the same seed gives the same network in
any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.models.nets import ACTIVATIONS, DIGIT_NETS, KERNELS, POOLS, DigitNet, build_digit_net

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "KERNELS", "POOLS", "NetSettings", "build_net"]

ARCHITECTURES = {
    name: (net.title, net.default_channels, net.hidden) for name, net in DIGIT_NETS.items()
}
"""Name → (title, default conv channels, hidden fully connected sizes)."""


@dataclass(frozen=True)
class NetSettings:
    """What the student chose.

    Attributes:
        architecture: A key of :data:`ARCHITECTURES`.
        channels: Output channels of conv1 and conv2.
        kernel: Both convs' kernel size (3 or 5).
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


def build_net(settings: NetSettings, seed: int) -> DigitNet:
    """A fresh network with 10 class scores, its weights from ``seed``."""
    return build_digit_net(
        settings.architecture,
        seed,
        channels=settings.channels,
        kernel=settings.kernel,
        pooling=settings.pooling,
        activation=settings.activation,
    )
