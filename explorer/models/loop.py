"""The one training loop of the digit nets: shuffled batches, one optimiser step, an epoch.

The offline trainer (:mod:`explorer.models.train`) runs :meth:`Trainer.epoch` and the Train
page's live run (:mod:`explorer.models.live`) runs :meth:`Trainer.step` one at a time; an
epoch is nothing but its steps, so both give the same weights from the same seed and data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.inputs.spec import digit_spec
from explorer.models.augment import Augmentation, augment
from explorer.models.nets import DigitNet

__all__ = ["Batches", "Step", "Trainer", "class_scores", "net_input"]


def net_input(net: DigitNet, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits in 0–1, white on black, as ``net`` takes them (padded, normalised)."""
    return digit_spec(net.input_size[-1]).digit_batch(pixels)


@dataclass(frozen=True)
class Step:
    """What some optimiser steps saw.

    Attributes:
        loss: Mean loss per digit.
        correct: Digits classified right (before the update).
        size: Digits seen.
    """

    loss: float
    correct: int
    size: int

    @property
    def accuracy(self) -> float:
        """``correct / size``."""
        return self.correct / self.size


class Batches:
    """Endless batches of the training digits, reshuffled each epoch, distorted if asked.

    One generator, seeded by ``seed``, draws each epoch's order and each batch's distortions.

    Args:
        images: uint8 (N, 28, 28) digits, white on black.
        labels: Their classes, 0–9.
        batch_size: Digits per batch (an epoch's last batch may be smaller).
        seed: Seeds the order and the distortions.
        aug: Ranges of the distortions, or ``None`` for none.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        seed: int,
        aug: Augmentation | None = None,
    ) -> None:
        self.pixels = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)  # uint8
        self.labels = torch.from_numpy(np.asarray(labels).astype(np.int64))
        self.batch_size = batch_size
        self.aug = aug
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.int64)
        self._position = 0

    @property
    def per_epoch(self) -> int:
        """Batches in one pass over the digits."""
        return -(-len(self.labels) // self.batch_size)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: (B, 1, 28, 28) float pixels in 0–1 and int64 labels."""
        if self._position >= len(self._order):
            self._order = torch.randperm(len(self.labels), generator=self.generator)
            self._position = 0
        batch = self._order[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        pixels = self.pixels[batch].float().div_(255)
        if self.aug is not None:
            pixels = augment(pixels, self.generator, self.aug)
        return pixels, self.labels[batch]


class Trainer:
    """A net, its optimiser, loss and batches: trains a step or an epoch at a time.

    Args:
        net: The digit net to train (in place).
        optimiser: Over ``net``'s parameters.
        batches: The training digits.
        loss: Of the class scores and the labels (mean over the batch).
        schedule: Steps once after each optimiser step, if given.
    """

    def __init__(
        self,
        net: DigitNet,
        optimiser: torch.optim.Optimizer,
        batches: Batches,
        loss: nn.Module | None = None,
        schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> None:
        self.net = net
        self.optimiser = optimiser
        self.batches = batches
        self.loss = loss if loss is not None else nn.CrossEntropyLoss()
        self.schedule = schedule

    def step(self) -> Step:
        """One optimiser step on the next batch."""
        pixels, labels = self.batches.next()
        self.net.train()
        logits = self.net(net_input(self.net, pixels))
        loss = self.loss(logits, labels)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        if self.schedule is not None:
            self.schedule.step()
        correct = int((logits.argmax(1) == labels).sum())
        return Step(float(loss.detach()), correct, len(labels))

    def epoch(self) -> Step:
        """One pass over the digits (:attr:`Batches.per_epoch` steps); its means."""
        steps = [self.step() for _ in range(self.batches.per_epoch)]
        size = sum(s.size for s in steps)
        loss = sum(s.loss * s.size for s in steps) / size
        return Step(loss, sum(s.correct for s in steps), size)


@torch.no_grad()
def class_scores(net: DigitNet, images: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
    """``net``'s class scores (N, classes) of uint8 (N, 28, 28) digits, in eval mode."""
    was_training = net.training
    net.eval()
    try:
        pixels = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255).unsqueeze(1)
        chunks = [
            net(net_input(net, pixels[i : i + batch_size]))
            for i in range(0, len(pixels), batch_size)
        ]
    finally:
        net.train(was_training)
    return torch.cat(chunks)
