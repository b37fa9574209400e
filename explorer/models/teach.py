"""Teach a network your classes: train on your pictures, test on the ones held out.

:func:`teach` splits a :class:`~explorer.models.pictures.PictureSet` (seeded, stratified),
builds the network (:mod:`explorer.models.picturenets`) and trains it with the one training
loop (:class:`explorer.models.loop.Trainer`), testing on the held-out pictures after each
epoch: the curves, the watched weight's snapshots, the confusion matrix and the mistakes of
the Train page's views (:class:`explorer.models.live.Point`). The result,
:class:`Taught`, becomes a :class:`~explorer.models.zoo.LoadedModel` with its class names
and input (:func:`taught_model`), so every page's views work on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.models.augment import Augmentation
from explorer.models.live import Point, max_seconds
from explorer.models.loop import Batches, Evaluation, Step, Trainer, evaluate, net_scores
from explorer.models.picturenets import ARCHITECTURES, Built, build_picture_net
from explorer.models.pictures import PictureSet, Split, held_out_split
from explorer.models.weights import weights_digest
from explorer.models.zoo import Family, LoadedModel, ModelSpec, Source

__all__ = [
    "DEFAULT_EPOCHS",
    "PICTURE_AUGMENTATION",
    "PREPARE_SHARE",
    "Taught",
    "TeachSettings",
    "taught_model",
    "teach",
]

PICTURE_AUGMENTATION = Augmentation(
    rotation_deg=10.0,
    scale=(0.9, 1.1),
    aspect=1.05,
    shear_deg=5.0,
    translate_px=4.0,
    elastic_px=0.0,
    thickness=0.0,
)
"""Mild distortions for pictures trained from scratch (no stroke thickness, no wobble)."""
PREPARE_SHARE = 0.1
"""Of the progress reported, decoding the pictures (and the frozen part's features)."""
SNAPSHOT_FILTERS = 16
SNAPSHOT_INPUTS = 8


DEFAULT_EPOCHS = {"small": 15, "finetune:resnet18": 10}
"""Enough for an easy set of a few dozen pictures a class."""


@dataclass(frozen=True)
class TeachSettings:
    """What to train and how: the same settings, seed and pictures give the same model."""

    architecture: str = "small"
    epochs: int = 15
    batch_size: int = 8
    learning_rate: float = 1e-3
    augmentation: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}: "
                f"choose one of {', '.join(ARCHITECTURES)}"
            )
        if not (1 <= self.epochs <= 100 and 4 <= self.batch_size <= 256):
            raise ValueError("epochs 1…100, batch size 4…256")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("learning rate in (0, 1]")

    @property
    def distorted(self) -> bool:
        """Whether the pictures are distorted as it trains: from scratch only.

        A fine-tuned head trains on its frozen part's features, which no distortion reaches.
        """
        return self.augmentation and self.architecture == "small"


@dataclass
class Taught:
    """A network trained on your pictures, and how it went.

    Attributes:
        net: The whole network, eval mode, no grad.
        built: How it was built (input spec, the watched weight, where weights came from).
        classes: Class names, index-aligned with its scores.
        settings: How it trained.
        points: One per epoch: training means and the held-out loss and accuracy.
        snapshots: The watched weight (first filters and inputs) at each point.
        confusion: Held-out confusion matrix at the end (rows: true class).
        mistakes: ``(held-out index, true, predicted, probability)``, most confident first.
        held_out: The held-out pictures as the net saw them, uint8 ``(M, C, H, W)``.
        held_out_labels: Their classes.
        train_count: Pictures trained on.
        seconds: Training time.
        message: How it ended (all epochs, or the time budget).
    """

    net: nn.Module
    built: Built
    classes: tuple[str, ...]
    settings: TeachSettings
    points: tuple[Point, ...]
    snapshots: tuple[np.ndarray, ...]
    confusion: np.ndarray
    mistakes: tuple[tuple[int, int, int, float], ...]
    held_out: np.ndarray
    held_out_labels: np.ndarray
    train_count: int
    seconds: float
    message: str
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d"))

    @property
    def held_out_accuracy(self) -> float:
        """The held-out accuracy at the end."""
        return float(np.trace(self.confusion) / max(int(self.confusion.sum()), 1))

    def card(self) -> dict[str, Any]:
        """The model's card: classes, input, architecture, weights, held-out accuracy, date."""
        spec = self.built.spec
        mean, std = spec.normalisation
        return {
            "kind": "cnn-explorer pictures model",
            "classes": list(self.classes),
            "input": {
                "channels": spec.channels,
                "height": spec.height,
                "width": spec.width,
                "mean": list(mean),
                "std": list(std),
            },
            "architecture": self.settings.architecture,
            "start_weights": self.built.weights,
            "held_out_accuracy": round(self.held_out_accuracy, 4),
            "pictures": {"trained": self.train_count, "held_out": len(self.held_out)},
            "epochs": len(self.points),
            "date": self.date,
            "torch": torch.__version__,
        }


Report = Callable[[float], None]


def teach(
    pictures: PictureSet,
    settings: TeachSettings,
    report: Report | None = None,
    on_epoch: Callable[[Taught], None] | None = None,
) -> Taught:
    """Train ``settings.architecture`` on ``pictures``; test on a held-out part after each epoch.

    Args:
        pictures: The classes and their pictures.
        settings: Architecture, epochs, batch size, learning rate, seed.
        report: Called with the fraction done after each step (it may raise to cancel, as
            the scheduler's progress does).
        on_epoch: Called after each epoch with the training so far, as a :class:`Taught`
            whose points, snapshots, confusion matrix and mistakes are that epoch's (the
            page's live views; the CLI prints the last point). Its ``net`` is still training:
            read it, do not run it.
    """
    started = time.monotonic()
    say = report or _quiet
    built = build_picture_net(settings.architecture, len(pictures.classes), settings.seed)
    labels = pictures.labels
    split = held_out_split(labels, seed=settings.seed)
    # progress: decoding the first tenth, the frozen part's features the next, then training
    images = pictures.fitted(built.spec, report=lambda done: say(PREPARE_SHARE / 2 * done))
    trainer, held_inputs = _trainer(
        built, images, labels, split, settings,
        lambda done: say(PREPARE_SHARE / 2 * (1 + done)),
    )  # fmt: skip
    held_labels = torch.from_numpy(labels[split.held_out])
    total = trainer.batches.per_epoch * settings.epochs
    points: list[Point] = []
    snapshots: list[np.ndarray] = []
    budget, message = max_seconds(), f"Done: {settings.epochs} epochs."
    classes = len(pictures.classes)

    def so_far(held: Evaluation, message: str) -> Taught:
        return Taught(
            built.net, built, pictures.classes, settings, tuple(points), tuple(snapshots),
            held.confusion, held.mistakes, images[split.held_out], labels[split.held_out],
            len(split.train), time.monotonic() - started, message,
        )  # fmt: skip

    for epoch in range(1, settings.epochs + 1):
        seen = []
        for _ in range(trainer.batches.per_epoch):
            seen.append(trainer.step())
            done = len(points) / settings.epochs + len(seen) / total
            say(PREPARE_SHARE + (1 - PREPARE_SHARE) * done)
        held = evaluate(net_scores(built.head, held_inputs, 64), held_labels, classes)
        points.append(_point(seen, held, epoch, time.monotonic() - started))
        snapshots.append(_snapshot(built))
        if on_epoch is not None:
            on_epoch(so_far(held, f"Epoch {epoch} of {settings.epochs}…"))
        if time.monotonic() - started > budget and epoch < settings.epochs:
            message = f"Time budget ({budget:g} s) reached after {epoch} epochs."
            break
    built.net.eval().requires_grad_(False)
    return so_far(held, message)


def _quiet(_done: float) -> None:
    pass


def _trainer(
    built: Built,
    images: np.ndarray,
    labels: np.ndarray,
    split: Split,
    settings: TeachSettings,
    report: Report,
) -> tuple[Trainer, torch.Tensor]:
    """The trainer of ``built``'s head and the held-out pictures as the head takes them.

    A frozen part (a fine-tuned net's first blocks, eval mode) runs once per picture: the
    head trains on its features, which no augmentation could reach.
    """
    spec = built.spec
    prepare: Callable[[torch.Tensor], torch.Tensor]
    pixels = torch.from_numpy(images).float().div_(255)
    if built.frozen is not None:
        chunks = torch.split(pixels, 32)
        found = []
        with torch.no_grad():
            for index, chunk in enumerate(chunks, 1):
                found.append(built.frozen(spec.normalise(chunk)))
                report(index / len(chunks))
        features = torch.cat(found).numpy()
        data, aug, prepare = features, None, _same
    else:
        data, prepare = images, spec.normalise
        aug = PICTURE_AUGMENTATION if settings.distorted else None
    train, held = split.train, split.held_out
    batches = Batches(data[train], labels[train], settings.batch_size, settings.seed, aug)
    parameters = [p for p in built.head.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(parameters, lr=settings.learning_rate)
    held_data = torch.from_numpy(data[held])
    held_inputs = prepare(held_data.float().div_(255) if built.frozen is None else held_data)
    return Trainer(built.head, optimiser, batches, prepare=prepare), held_inputs


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _point(seen: list[Step], held: Evaluation, epoch: int, seconds: float) -> Point:
    size = sum(s.size for s in seen)
    return Point(
        step=epoch * len(seen),
        epoch=float(epoch),
        train_loss=sum(s.loss * s.size for s in seen) / size,
        train_accuracy=sum(s.correct for s in seen) / size,
        val_loss=held.loss,
        val_accuracy=held.accuracy,
        seconds=seconds,
    )


def _snapshot(built: Built) -> np.ndarray:
    weight = built.net.get_parameter(built.watched).detach()
    return weight[:SNAPSHOT_FILTERS, :SNAPSHOT_INPUTS].numpy().copy()


def taught_model(taught: Taught, name: str = "pictures") -> LoadedModel:
    """The trained network as every page uses a model: its class names and its input."""
    title = ARCHITECTURES[taught.settings.architecture].split(" (")[0]
    spec = taught.built.spec
    entry = ModelSpec(
        name=f"{name}:{taught.settings.architecture}",
        title=f"Your pictures: {', '.join(taught.classes)} ({title})",
        family=Family.PHOTO,
        input_size=spec.shape,
        year=0,
        description=f"Trained on your pictures in this session; starting weights: "
        f"{taught.built.weights}.",
        source=Source.TRAINED,
        input=spec,
    )
    digest = weights_digest(taught.net)
    return LoadedModel(
        spec=entry,
        model=taught.net,
        device=torch.device("cpu"),
        weights=f"{name}-{digest[:12]}.pt2",
        categories=taught.classes,
        notice=taught.built.notice,
        identity=f"{digest}:{'|'.join(taught.classes)}",
    )
