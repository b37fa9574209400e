"""Network definitions that torchvision does not ship: LeNet-5, Harley's MNIST net and ZFNet.

Every stage is its own named module (no functional activations, no in-place ops), so each
one shows up in the capture under a readable name.
"""

from __future__ import annotations

import torch
from torch import nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


class _DigitNet(nn.Module):
    """Two conv + pool stages, then three FC layers; every stage its own named module."""

    input_size: tuple[int, int, int]

    def __init__(self, conv1_padding: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=conv1_padding)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, hidden)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits


class LeNet5(_DigitNet):
    """LeNet-5 for 28×28 MNIST digits, with ReLU and max-pooling.

    conv 6@5×5 pad 2 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 →
    FC 120 → ReLU → FC 84 → ReLU → FC 10 (logits).
    """

    input_size = (1, 28, 28)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(conv1_padding=2, hidden=84, num_classes=num_classes)


class HarleyNet(_DigitNet):
    """The net of Adam Harley's interactive MNIST visualisation (32×32 input).

    conv 6@5×5 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 →
    FC 120 → ReLU → FC 100 → ReLU → FC 10. Harley's figure does not draw the
    activations; a ReLU after each conv and hidden FC layer makes it trainable.
    """

    input_size = (1, 32, 32)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(conv1_padding=0, hidden=100, num_classes=num_classes)


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
