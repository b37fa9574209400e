"""The one training loop of the digit nets: shuffled batches, one optimiser step, an epoch.

The offline trainer (:mod:`explorer.models.train`) runs :meth:`Trainer.epoch` and the Train
page's live run (:mod:`explorer.models.live`) runs :meth:`Trainer.step` one at a time; an
epoch is nothing but its steps, so both give the same weights from the same seed and data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.inputs.spec import digit_spec
from explorer.models.augment import Augmentation, augment
from explorer.models.nets import DigitNet

__all__ = [
    "MISTAKES_SHOWN",
    "Batches",
    "Evaluation",
    "Step",
    "Trainer",
    "class_scores",
    "evaluate",
    "net_input",
    "net_scores",
]

MISTAKES_SHOWN = 24
"""Misclassified held-out inputs kept, the most confident first."""


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
        images: uint8 (N, 28, 28) digits, white on black; or (N, C, H, W) pictures (uint8,
            scaled to 0–1) or features (float, as they are).
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
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        self.pixels = tensor.unsqueeze(1) if tensor.ndim == 3 else tensor
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
        """The next batch: (B, C, H, W) float pixels in 0–1 (or features) and int64 labels."""
        if self._position >= len(self._order):
            self._order = torch.randperm(len(self.labels), generator=self.generator)
            self._position = 0
        batch = self._order[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        pixels = self.pixels[batch]
        pixels = pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels.float()
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
        prepare: Turns a batch into the net's input; ``None``: a digit net's
            (:func:`net_input`). Any other net needs one (e.g. an ``InputSpec``'s normalise).
    """

    def __init__(
        self,
        net: nn.Module,
        optimiser: torch.optim.Optimizer,
        batches: Batches,
        loss: nn.Module | None = None,
        schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
        prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.net = net
        self.optimiser = optimiser
        self.batches = batches
        self.loss = loss if loss is not None else nn.CrossEntropyLoss()
        self.schedule = schedule
        self.prepare = prepare

    def step(self) -> Step:
        """One optimiser step on the next batch."""
        pixels, labels = self.batches.next()
        self.net.train()
        if self.prepare is not None:
            logits = self.net(self.prepare(pixels))
        else:
            assert isinstance(self.net, DigitNet), "a net other than a digit net needs prepare"
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
def net_scores(
    net: nn.Module,
    inputs: torch.Tensor,
    batch_size: int = 1000,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``net``'s class scores (N, classes) of ``inputs``, a batch at a time, in eval mode.

    Args:
        net: Its mode is restored after.
        inputs: As ``prepare`` takes them (None: as ``net`` takes them).
        batch_size: Inputs a pass.
        prepare: Turns a batch of ``inputs`` into ``net``'s input.
    """
    was_training = net.training
    net.eval()
    try:
        chunks = [
            net(prepare(chunk) if prepare is not None else chunk)
            for chunk in torch.split(inputs, batch_size)
        ]
    finally:
        net.train(was_training)
    return torch.cat(chunks)


def class_scores(net: DigitNet, images: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
    """``net``'s class scores (N, classes) of uint8 (N, 28, 28) digits, in eval mode."""
    pixels = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255).unsqueeze(1)
    return net_scores(net, pixels, batch_size, functools.partial(net_input, net))


@dataclass(frozen=True)
class Evaluation:
    """How class scores of held-out (validation) inputs fare against their labels.

    Attributes:
        loss: Mean cross-entropy.
        accuracy: Fraction right.
        confusion: Counts, rows the true class, columns the predicted one.
        mistakes: ``(index, true, predicted, probability)``, the most confident first, at
            most :data:`MISTAKES_SHOWN`.
    """

    loss: float
    accuracy: float
    confusion: np.ndarray
    mistakes: tuple[tuple[int, int, int, float], ...]


def evaluate(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> Evaluation:
    """The :class:`Evaluation` of ``logits`` (N, classes) for ``labels`` (N,) in 0…classes-1."""
    probs = logits.softmax(1)
    predicted = probs.argmax(1)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels.numpy(), predicted.numpy()), 1)
    wrong = torch.nonzero(predicted != labels).flatten()
    order = wrong[torch.argsort(probs[wrong, predicted[wrong]], descending=True)]
    mistakes = tuple(
        (int(i), int(labels[i]), int(predicted[i]), float(probs[i, predicted[i]]))
        for i in order[:MISTAKES_SHOWN]
    )
    return Evaluation(
        float(F.cross_entropy(logits, labels)),
        float((predicted == labels).float().mean()),
        confusion,
        mistakes,
    )
