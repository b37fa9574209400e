"""The Your pictures page's benchmark: fine-tuning ResNet-18, and an epoch of the small CNN.

- ``finetune_s_resnet18_3x20``: fine-tune ResNet-18's last block on 3 classes × 20 synthetic
  pictures (:mod:`explorer.models.shapes`), timed from the call until the held-out accuracy
  first reaches 90 % (network built, pictures decoded and fitted, frozen features included).
  Where the pretrained weights are not there (offline) it starts from random weights: the
  notes say which, and the accuracy reached.
- ``scratch_epoch_s_small_3x60``: one epoch of the small CNN on 3 × 60 pictures (144 train,
  36 held out), the whole call: decoding, fitting, the epoch and its test.
"""

from __future__ import annotations

import time
from typing import Any

from explorer.bench.timing import median
from explorer.models.shapes import shape_set
from explorer.models.teach import Taught, TeachSettings, teach
from explorer.views.pictures import teach_cost

__all__ = ["TARGET_ACCURACY", "pictures_costs"]

TARGET_ACCURACY = 0.9
MAX_FINETUNE_EPOCHS = 15


def finetune_cost() -> tuple[float | None, dict[str, Any]]:
    """Seconds until fine-tuning reaches :data:`TARGET_ACCURACY` held out (None: never)."""
    pictures = shape_set(3, 20, seed=0)
    reached: list[float] = []

    def watch(so_far: Taught) -> None:
        if not reached and so_far.points[-1].val_accuracy >= TARGET_ACCURACY:
            reached.append(time.perf_counter() - start)

    start = time.perf_counter()
    taught = teach(
        pictures, TeachSettings("finetune:resnet18", epochs=MAX_FINETUNE_EPOCHS), on_epoch=watch
    )
    first = next((p for p in taught.points if p.val_accuracy >= TARGET_ACCURACY), None)
    notes = {
        "start_weights": taught.built.weights,
        "epochs_to_target": None if first is None else first.epoch,
        "held_out_accuracy_at_target": None if first is None else round(first.val_accuracy, 4),
        "held_out_accuracy_final": round(taught.held_out_accuracy, 4),
        "best_held_out_accuracy": round(max(p.val_accuracy for p in taught.points), 4),
        "run_s": round(taught.seconds, 2),
        "pictures": "3 classes × 20 synthetic shapes (16 train, 4 held out each)",
    }
    if taught.built.notice:
        notes["notice"] = taught.built.notice
    return (round(reached[0], 2) if reached else None), notes


def scratch_epoch_cost(repeats: int) -> tuple[float, dict[str, Any]]:
    """Median seconds of one epoch of the small CNN on 3 × 60 pictures (the whole call)."""
    pictures = shape_set(3, 60, seed=0)
    seconds = []
    accuracy = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        taught = teach(pictures, TeachSettings("small", epochs=1))
        seconds.append(time.perf_counter() - start)
        accuracy = taught.held_out_accuracy
    notes = {
        "pictures": "3 classes × 60 synthetic shapes (48 train, 12 held out each)",
        "held_out_accuracy_after_one_epoch": round(accuracy, 4),
        "includes": "decoding and fitting 180 pictures, one epoch of 18 steps, the test",
        "scheduler_estimate_s": round(
            teach_cost(pictures, TeachSettings("small", epochs=1)).seconds, 3
        ),
    }
    return round(median(seconds), 2), notes


def pictures_costs(repeats: int) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Both keys and their notes."""
    finetune, finetune_notes = finetune_cost()
    epoch, epoch_notes = scratch_epoch_cost(repeats)
    results = {"finetune_s_resnet18_3x20": finetune, "scratch_epoch_s_small_3x60": epoch}
    notes = {"finetune_s_resnet18_3x20": finetune_notes, "scratch_epoch_s_small_3x60": epoch_notes}
    return results, notes
