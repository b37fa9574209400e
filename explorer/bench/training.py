"""The Train page's benchmark: one epoch of LeNet-5 on the shipped digits, and a live update.

- ``train_epoch_s_lenet5``: one epoch of the default settings (LeNet-5, Adam, batch 64) on all
  8,000 shipped digits, in a :class:`~explorer.models.live.TrainingRun`'s own thread, with
  its evaluations (every 25 steps) included.
- The note ``live_update_ms``: what the page's once-a-second update builds from a run's
  progress (the curves, conv1's filters and the confusion matrix), to compare with a second.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from explorer.bench.timing import median
from explorer.figures.charts import filters_figure
from explorer.models.digits import Digits, shipped_digits
from explorer.models.live import TrainingRun, TrainSettings
from explorer.views.train import confusion_figure, curves_figure


def training_costs(repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds of one epoch on 8,000 digits; the live update's cost in the notes."""
    shipped = shipped_digits()
    every = Digits(
        np.concatenate([shipped.train_images, shipped.val_images]),
        np.concatenate([shipped.train_labels, shipped.val_labels]),
        shipped.val_images,
        shipped.val_labels,
    )
    seconds = []
    run = None
    for _ in range(repeats):
        run = TrainingRun(TrainSettings(epochs=1, train_size=len(every.train_labels)), every)
        start = time.perf_counter()
        run.start()
        while run.alive:
            time.sleep(0.01)
            run.progress()
        seconds.append(time.perf_counter() - start)
    assert run is not None
    progress = run.progress()
    updates = []
    for _ in range(5):
        start = time.perf_counter()
        curves_figure(progress.points).to_dict()
        filters_figure(progress.filters[-1], "conv1", tile_px=48).to_dict()
        if progress.confusion is not None:
            confusion_figure(progress.confusion).to_dict()
        updates.append(time.perf_counter() - start)
    epoch = median(seconds)
    notes = {
        "digits": len(every.train_labels),
        "steps": progress.step,
        "live_update_ms": round(median(updates) * 1e3, 1),
        "live_update_share_of_epoch": round(median(updates) / epoch, 4),
    }
    return {"train_epoch_s_lenet5": round(epoch, 2)}, {"train_epoch_s_lenet5": notes}
