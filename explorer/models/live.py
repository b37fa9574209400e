"""Train a digit CNN in the background of a session, and watch it learn.

A :class:`TrainingRun` trains on the shipped digits (``assets/data/mnist-8k.npz``: 8,000 real
MNIST digits, 1.3 MB) in its own thread, within a budget of steps and seconds, and publishes
a :class:`Progress` snapshot (curves, conv1's filters, the confusion matrix, the mistakes)
that a page reads about once a second. A server runs at most :func:`training_slots` runs at
once; the others wait in line with their place shown. A run whose page stops asking (a
closed tab) stops by itself. The same seed and settings give the same curves on the CPU.
"""

from __future__ import annotations

import copy
import functools
import io
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import torch

from explorer.models.augment import DEFAULT_AUGMENTATION
from explorer.models.custom import ARCHITECTURES, NetSettings, build_net
from explorer.models.digits import Digits, limited, shipped_digits
from explorer.models.loop import Batches, Trainer, class_scores, evaluate
from explorer.models.nets import DIGIT_CLASSES, DigitNet
from explorer.models.zoo import Family, LoadedModel, ModelSpec, Source

__all__ = [
    "EVAL_EVERY",
    "HEARTBEAT_S",
    "MAX_SECONDS_ENV",
    "MAX_STEPS",
    "SLOTS_ENV",
    "Point",
    "Progress",
    "TrainSettings",
    "TrainingRun",
    "as_loaded_model",
    "live_trainer",
    "max_seconds",
    "training_slots",
]

EVAL_EVERY = 25
"""Steps between two points of the curves (and snapshots of conv1's filters)."""
MAX_STEPS = 6000
MAX_SECONDS_ENV = "EXPLORER_TRAIN_MAX_SECONDS"
SLOTS_ENV = "EXPLORER_MAX_TRAININGS"
HEARTBEAT_S = 30.0
"""A run stops when its page has not asked for progress for this long (a closed tab)."""


def max_seconds() -> float:
    """The time budget of one run (``$EXPLORER_TRAIN_MAX_SECONDS``, default 300)."""
    return float(os.environ.get(MAX_SECONDS_ENV, "300"))


@functools.cache
def training_slots() -> threading.BoundedSemaphore:
    """How many runs train at once on this server (``$EXPLORER_MAX_TRAININGS``, default 1)."""
    return threading.BoundedSemaphore(max(1, int(os.environ.get(SLOTS_ENV, "1"))))


@dataclass(frozen=True)
class TrainSettings:
    """Everything a run depends on: the same settings and seed give the same run."""

    net: NetSettings = field(default_factory=NetSettings)
    optimiser: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 5
    augmentation: bool = False
    train_size: int = 7000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimiser not in ("adam", "sgd"):
            raise ValueError("the optimiser is 'adam' or 'sgd' (with momentum 0.9)")
        if not (1 <= self.epochs <= 50 and 8 <= self.batch_size <= 1024):
            raise ValueError("epochs 1…50, batch size 8…1024")
        if not (0 < self.learning_rate <= 1 and self.train_size >= 100):
            raise ValueError("learning rate in (0, 1], at least 100 training digits")


def live_trainer(settings: TrainSettings, digits: Digits) -> Trainer:
    """What a run of ``settings`` trains: its net, optimiser and batches (all from the seed).

    It trains on a seeded subset of ``settings.train_size`` of ``digits``' training digits.
    """
    train = limited(digits, settings.train_size, settings.seed)
    net = build_net(settings.net, settings.seed)
    aug = DEFAULT_AUGMENTATION if settings.augmentation else None
    batches = Batches(
        train.train_images, train.train_labels, settings.batch_size, settings.seed, aug
    )
    if settings.optimiser == "sgd":
        optimiser: torch.optim.Optimizer = torch.optim.SGD(
            net.parameters(), lr=settings.learning_rate, momentum=0.9
        )
    else:
        optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    return Trainer(net, optimiser, batches)


@dataclass(frozen=True)
class Point:
    """One point of the curves: means since the previous point, and the validation split."""

    step: int
    epoch: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class Progress:
    """What a page shows of a run, copied out of it (safe to read while it trains).

    Attributes:
        status: ``"ready"``, ``"queued"``, ``"running"``, ``"stopped"``, ``"done"`` or
            ``"failed"``.
        message: A sentence for the user (the place in line, why it stopped …).
        step: Steps taken.
        total_steps: Steps the settings ask for (within the budget).
        seconds: Training time so far.
        points: The curves.
        filters: conv1's weights ``(C, 1, k, k)`` at each point.
        confusion: Validation confusion matrix at the last point (rows: true digit).
        mistakes: ``(val index, true, predicted, probability)`` of misclassified validation
            digits at the last point, most confident first.
    """

    status: str
    message: str
    step: int
    total_steps: int
    seconds: float
    points: tuple[Point, ...] = ()
    filters: tuple[np.ndarray, ...] = ()
    confusion: np.ndarray | None = None
    mistakes: tuple[tuple[int, int, int, float], ...] = ()

    @property
    def seconds_left(self) -> float | None:
        """An estimate from the speed so far (None before the first step)."""
        if self.step == 0:
            return None
        return self.seconds / self.step * max(self.total_steps - self.step, 0)


class TrainingRun:
    """One session's training, in a background thread it owns.

    Args:
        settings: What to train and how.
        digits: The data (default: the shipped digits).
        clock: Seconds (injectable for tests).
    """

    _ids = itertools.count(1)
    _line: ClassVar[list[int]] = []  # runs waiting for a slot, in order
    _line_lock = threading.Lock()

    def __init__(
        self,
        settings: TrainSettings,
        digits: Digits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.id = next(self._ids)
        self._digits = digits or shipped_digits()
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_seen = clock()
        self._trainer = live_trainer(settings, self._digits)
        net = self._trainer.net
        assert isinstance(net, DigitNet)  # live_trainer's net: the Trainer takes any net
        self._net = net
        self._train_size = len(self._trainer.batches.labels)
        self._total = min(self._trainer.batches.per_epoch * settings.epochs, MAX_STEPS)
        self._window: list[tuple[float, float]] = []
        self._progress = Progress("ready", "Ready to train.", 0, self._total, 0.0)

    # --- control, from the page's thread -------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether its thread is queued or training."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Train (or go on training after :meth:`stop`) in the background."""
        if self.alive or self._progress.status == "done":
            return
        self._stop.clear()
        self._last_seen = self._clock()
        self._thread = threading.Thread(target=self._run, name=f"training-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, wait: float | None = 10.0) -> None:
        """Stop after the current step (and wait up to ``wait`` seconds for the thread)."""
        self._stop.set()
        if self._thread is not None and wait is not None:
            self._thread.join(wait)

    def progress(self) -> Progress:
        """The latest snapshot; asking also tells the run its page is still open."""
        self._last_seen = self._clock()
        with self._lock:
            return self._progress

    @property
    def input_size(self) -> tuple[int, int, int]:
        """The input the network takes: ``(1, 28, 28)``, or ``(1, 32, 32)`` for Harley's."""
        return self._net.input_size

    def model(self) -> DigitNet:
        """A copy of the network as it is now (eval mode, no grad)."""
        with self._lock:
            twin = copy.deepcopy(self._net)
        return twin.eval().requires_grad_(False)

    def card(self) -> dict[str, Any]:
        """The trained model's card: settings, data, accuracy, time, versions."""
        progress = self.progress()
        last = progress.points[-1] if progress.points else None
        title = ARCHITECTURES[self.settings.net.architecture][0]
        return {
            "model": f"{title}, trained on the Train page",
            "settings": asdict(self.settings),
            "data": f"{self._train_size} digits of assets/data/mnist-8k.npz (MNIST)",
            "validation": f"{len(self._digits.val_labels)} digits never trained on",
            "val_accuracy": None if last is None else round(last.val_accuracy, 4),
            "steps": progress.step,
            "seconds": round(progress.seconds, 1),
            "torch": torch.__version__,
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        }

    def state_dict_bytes(self) -> bytes:
        """The trained weights as a ``.pth`` state dict (load with ``weights_only=True``)."""
        buffer = io.BytesIO()
        torch.save(self.model().state_dict(), buffer)
        return buffer.getvalue()

    # --- the thread ---------------------------------------------------------------------

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            self._progress = replace(self._progress, **changes)

    def _run(self) -> None:
        slots = training_slots()
        try:
            if not self._wait_for_slot(slots):
                return
            try:
                self._train_until_stopped()
            finally:
                slots.release()
        except Exception as exc:  # shown on the page; the server goes on
            self._publish(status="failed", message=f"Training failed: {exc}")

    def _wait_for_slot(self, slots: threading.BoundedSemaphore) -> bool:
        with self._line_lock:
            self._line.append(self.id)
        try:
            while not slots.acquire(timeout=0.2):
                with self._line_lock:
                    place = self._line.index(self.id) + 1
                self._publish(
                    status="queued",
                    message=f"Waiting for a free trainer: number {place} in line "
                    f"(this server trains {os.environ.get(SLOTS_ENV, '1')} at a time).",
                )
                if self._stop.is_set() or self._page_gone():
                    self._publish(status="stopped", message="Stopped while waiting.")
                    return False
            return True
        finally:
            with self._line_lock:
                self._line.remove(self.id)

    def _page_gone(self) -> bool:
        return self._clock() - self._last_seen > HEARTBEAT_S

    def _train_until_stopped(self) -> None:
        self._publish(status="running", message="Training…")
        started = self._clock() - self._progress.seconds
        budget = max_seconds()
        while self._progress.step < self._total:
            if self._stop.is_set() or self._page_gone():
                reason = "Stopped." if self._stop.is_set() else "Stopped: the page was closed."
                self._evaluate_last(started)
                self._publish(status="stopped", message=reason)
                return
            elapsed = self._clock() - started
            if elapsed > budget:
                self._evaluate_last(started)
                self._publish(status="done", message=f"Time budget ({budget:g} s) reached.")
                return
            self._step()
            step = self._progress.step + 1
            self._publish(step=step, seconds=self._clock() - started)
            if step % EVAL_EVERY == 0 or step == self._total:
                self._evaluate(step, self._clock() - started)
        self._publish(status="done", message=f"Done: {self._total} steps.")

    def _evaluate_last(self, started: float) -> None:
        """A last point for the steps since the previous one, so the card matches the weights."""
        step = self._progress.step
        points = self._progress.points
        if step and (not points or points[-1].step != step):
            self._evaluate(step, self._clock() - started)

    def _step(self) -> None:
        with self._lock:  # model() may copy the net between steps, never during one
            seen = self._trainer.step()
        self._window.append((seen.loss, seen.accuracy))

    def _evaluate(self, step: int, seconds: float) -> None:
        with self._lock:
            logits = class_scores(self._net, self._digits.val_images)
            filters = self._net.get_parameter("conv1.weight").detach().numpy().copy()
        labels = torch.from_numpy(self._digits.val_labels.astype(np.int64))
        held = evaluate(logits, labels, len(DIGIT_CLASSES))
        losses, accuracies = zip(*self._window, strict=True) if self._window else ((0.0,), (0.0,))
        self._window = []
        point = Point(
            step=step,
            epoch=step * self.settings.batch_size / self._train_size,
            train_loss=float(np.mean(losses)),
            train_accuracy=float(np.mean(accuracies)),
            val_loss=held.loss,
            val_accuracy=held.accuracy,
            seconds=seconds,
        )
        with self._lock:
            self._progress = replace(
                self._progress,
                points=(*self._progress.points, point),
                filters=(*self._progress.filters, filters),
                confusion=held.confusion,
                mistakes=held.mistakes,
            )


def as_loaded_model(run: TrainingRun) -> LoadedModel:
    """The run's network as the Draw and Image pages use any digit model."""
    title = ARCHITECTURES[run.settings.net.architecture][0]
    spec = ModelSpec(
        name=f"trained:{run.id}",
        title=f"Your trained {title} (run {run.id})",
        family=Family.DIGIT,
        input_size=run.input_size,
        year=0,
        description="Trained on the Train page in this session.",
        source=Source.TRAINED,
    )
    return LoadedModel(
        spec=spec,
        model=run.model(),
        device=torch.device("cpu"),
        weights=f"trained-run-{run.id}.pth",
        categories=DIGIT_CLASSES,
        identity=f"step-{run.progress().step}",  # a resumed run's weights are new weights
    )
