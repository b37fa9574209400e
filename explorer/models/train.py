"""Train the digit models (LeNet-5, Harley's net) offline and write their weights and JSON card.

The shipped weights in ``assets/models/`` come from :func:`train` on the offline MNIST subset
with seed 0. A fixed-seed, class-stratified validation split is held out and never trained on;
:func:`explorer.models.digits.split_train_val` recomputes it, so tests and the sample gallery
can use the same digits. The loop itself is :class:`explorer.models.loop.Trainer`, the one the
Train page's live runs use.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models.augment import DEFAULT_AUGMENTATION, Augmentation
from explorer.models.digits import Digits, TrainingError, limited, sha256, split_digits
from explorer.models.loop import Batches, Trainer, class_scores
from explorer.models.nets import DIGIT_CLASSES, DigitNet, HarleyNet, LeNet5, build_digit_net

__all__ = [
    "DEFAULT_EPOCHS",
    "DIGIT_MODELS",
    "Recipe",
    "TrainResult",
    "TrainingError",
    "build_model",
    "load_trained",
    "predict_proba",
    "summary_line",
    "train",
]

DIGIT_MODELS: dict[str, type[DigitNet]] = {"lenet5": LeNet5, "harley": HarleyNet}
"""Model name (as used by the CLI and the card) → network class."""

DEFAULT_EPOCHS = 60


@dataclass(frozen=True)
class Recipe:
    """How the shipped digit nets train: AdamW, a one-cycle schedule, label smoothing.

    Attributes:
        lr: Peak learning rate of the one-cycle schedule.
        weight_decay: AdamW's decoupled weight decay.
        smoothing: Label smoothing of the cross-entropy loss.
        warmup: Share of the steps spent warming up.
    """

    lr: float = 3e-3
    weight_decay: float = 0.05
    smoothing: float = 0.1
    warmup: float = 0.15

    def trainer(self, net: DigitNet, batches: Batches, epochs: int) -> Trainer:
        """A :class:`~explorer.models.loop.Trainer` of ``net`` for ``epochs`` passes."""
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=self.lr, total_steps=epochs * batches.per_epoch, pct_start=self.warmup
        )
        loss = nn.CrossEntropyLoss(label_smoothing=self.smoothing)
        return Trainer(net, optimiser, batches, loss, schedule)

    def card(self, steps: int) -> dict[str, Any]:
        """The card's ``optimiser`` entry for a run of ``steps`` steps."""
        return {
            "name": "AdamW",
            "peak_lr": self.lr,
            "weight_decay": self.weight_decay,
            "schedule": f"one-cycle (cosine), {self.warmup:.0%} warm-up, {steps} steps",
            "loss": f"cross-entropy, label smoothing {self.smoothing}",
        }


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        model_name: ``"lenet5"`` or ``"harley"``.
        state_dict: Trained float32 weights (CPU tensors).
        val_accuracy: Fraction of validation digits classified correctly (0–1).
        val_correct: Number of validation digits classified correctly.
        val_total: Number of validation digits.
        train_size: Number of digits trained on.
        epochs: Passes over the training digits.
        card: The model card (also written as JSON when weights were saved).
        weights_path: Where the weights were written, or ``None``.
    """

    model_name: str
    state_dict: dict[str, torch.Tensor]
    val_accuracy: float
    val_correct: int
    val_total: int
    train_size: int
    epochs: int
    card: dict[str, Any]
    weights_path: Path | None = None


def build_model(model_name: str, seed: int = 0) -> DigitNet:
    """A fresh, untrained ``lenet5`` or ``harley``, its weights drawn from ``seed``."""
    if model_name not in DIGIT_MODELS:
        raise TrainingError(f"unknown model {model_name!r}: choose from {sorted(DIGIT_MODELS)}")
    return build_digit_net(model_name, seed)


def predict_proba(model: DigitNet, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Softmax probabilities (N, 10) of ``model`` for uint8 (N, 28, 28) digits."""
    return class_scores(model, images, batch_size).softmax(dim=1).numpy()


def train(
    model_name: str,
    data: str | os.PathLike[str],
    epochs: int = DEFAULT_EPOCHS,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    val_size: int = 1000,
    progress: bool = True,
    batch_size: int = 128,
    limit: int | None = None,
    lr: float = 3e-3,
    aug: Augmentation = DEFAULT_AUGMENTATION,
) -> TrainResult:
    """Train ``model_name`` on digits, evaluate it on held-out digits and optionally save it.

    Args:
        model_name: ``"lenet5"`` or ``"harley"``.
        data: An ``.npz`` file (a stratified ``val_size`` split is held out) or ``"mnist"``
            (torchvision: trains on the train split, validates on the test split).
        epochs: Passes over the training digits.
        out: Where to write the weights (``.pth``); the card goes beside it as ``.json``.
        seed: Seeds the split, the initial weights, the shuffling and the augmentation.
        val_size: Size of the validation split of an ``.npz`` file.
        progress: Show a tqdm progress bar on stderr.
        batch_size: Digits per optimiser step.
        limit: Train on at most this many digits (a seeded random subset of the training split).
        lr: Peak learning rate of the one-cycle schedule.
        aug: Ranges of the on-the-fly augmentation.

    Raises:
        TrainingError: Bad model name, data or arguments.
    """
    model = build_model(model_name, seed)
    if epochs < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise TrainingError("epochs, batch_size and limit must be positive")
    digits = limited(split_digits(data, val_size, seed), limit, seed)
    recipe = Recipe(lr=lr)
    batches = Batches(digits.train_images, digits.train_labels, batch_size, seed, aug)
    started = time.perf_counter()
    with _at_most_two_threads():
        _fit(recipe.trainer(model, batches, epochs), epochs, model_name, progress)
    seconds = time.perf_counter() - started
    predictions = predict_proba(model, digits.val_images).argmax(axis=1)
    correct = int((predictions == digits.val_labels).sum())
    card = {
        **_model_card(model_name, model),
        **_data_card(digits, epochs, seed, batch_size, aug),
        "optimiser": recipe.card(epochs * batches.per_epoch),
        "val_accuracy": correct / len(digits.val_labels),
        "val_correct": correct,
        "val_total": len(digits.val_labels),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    state_dict = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    return TrainResult(
        model_name=model_name,
        state_dict=state_dict,
        val_accuracy=correct / len(digits.val_labels),
        val_correct=correct,
        val_total=len(digits.val_labels),
        train_size=len(digits.train_labels),
        epochs=epochs,
        card=card,
        weights_path=_save_with_card(state_dict, card, out),
    )


def _fit(trainer: Trainer, epochs: int, model_name: str, progress: bool) -> None:
    """Run ``epochs`` epochs, the mean loss and accuracy of each on a tqdm bar."""
    bar = tqdm(range(epochs), desc=f"training {model_name}", unit="epoch", disable=not progress)
    for _ in bar:
        seen = trainer.epoch()
        bar.set_postfix(loss=f"{seen.loss:.3f}", acc=f"{seen.accuracy:.3f}")
    bar.close()
    trainer.net.eval()


@contextmanager
def _at_most_two_threads() -> Iterator[None]:
    """Let torch use at most two threads in the block (training is no faster with more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _model_card(model_name: str, model: DigitNet) -> dict[str, Any]:
    """The card's entries about the model: its layers, classes, input and parameter count."""
    side = model.input_size[-1]
    pad = model.input_padding
    padding = f", zero-padded by {pad} px to {side}×{side}" if pad else ""
    layers = [f"{name}: {module}" for name, module in model.named_children()]
    return {
        "model": model_name,
        "architecture": {
            "class": f"{type(model).__module__}.{type(model).__name__}",
            "layers": layers,
        },
        "classes": list(DIGIT_CLASSES),
        "input": {
            "size": list(model.input_size),
            "preprocessing": (
                f"28×28 digit, white ink on black, x/255{padding}"
                f", then (x − {MNIST_MEAN}) / {MNIST_STD}"
            ),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _data_card(
    digits: Digits, epochs: int, seed: int, batch_size: int, aug: Augmentation
) -> dict[str, Any]:
    """The card's entries about the data and how it was fed."""
    return {
        "data": digits.info,
        "train_size": len(digits.train_labels),
        "val_size": len(digits.val_labels),
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "augmentation": {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(aug).items()
        },
    }


def _save_with_card(
    state_dict: dict[str, torch.Tensor], card: dict[str, Any], out: str | os.PathLike[str] | None
) -> Path | None:
    """Write the weights to ``out`` and the card (naming them) beside it as ``.json``.

    Returns:
        ``out`` as a path, or None when there is nowhere to write (nothing is written).
    """
    if out is None:
        return None
    weights_path = Path(out)
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    blob = buffer.getvalue()
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    weights_path.write_bytes(blob)
    card["weights"] = {"file": weights_path.name, "sha256": sha256(blob)}
    weights_path.with_suffix(".json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return weights_path


def summary_line(result: TrainResult) -> str:
    """One line for the CLI, e.g. ``lenet5: validation accuracy 99.10 % (991/1000) …``."""
    return (
        f"{result.model_name}: validation accuracy {100 * result.val_accuracy:.2f} % "
        f"({result.val_correct}/{result.val_total}) after {result.epochs} epochs "
        f"on {result.train_size} digits"
    )


def load_trained(model_name: str, weights: str | os.PathLike[str]) -> DigitNet:
    """Build ``model_name`` and load ``weights`` (a saved state dict) strictly, in eval mode."""
    model = build_model(model_name)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
