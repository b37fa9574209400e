"""How a benchmark times: repeats, warm-up, ABBA interleaving, medians and percentiles.

Each figure is a median over repeats; the two sides of a ratio are timed in the same loop,
alternating (ABBA), after a warm-up, so load on the machine hits both alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Settings:
    """How many repeats each measurement takes (``--quick`` lowers them)."""

    warmup: int
    resnet_repeats: int
    vgg_repeats: int
    page_repeats: int
    grid_repeats: int
    cold_starts: int

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        """The full settings, or the quick ones (enough to check every key works)."""
        if quick:
            return cls(1, resnet_repeats=3, vgg_repeats=2, page_repeats=3, grid_repeats=1,
                       cold_starts=1)  # fmt: skip
        return cls(2, resnet_repeats=21, vgg_repeats=9, page_repeats=21, grid_repeats=5,
                   cold_starts=3)  # fmt: skip


# --- timing ---------------------------------------------------------------------------------


def interleaved_samples(
    tasks: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time every task once per round, alternating their order (ABBA), after a warm-up.

    Args:
        tasks: Named zero-argument callables; each must finish its work before returning
            (synchronise the GPU inside it).
        repeats: Timed rounds.
        warmup: Untimed rounds first (tracing, caches, allocator).
        clock: Seconds as a float (injectable for tests).

    Returns:
        Seconds per call, ``repeats`` samples for each name.
    """
    names = list(tasks)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = clock()
            tasks[name]()
            elapsed = clock() - start
            if round_index >= warmup:
                samples[name].append(elapsed)
    return samples


def median(samples: Sequence[float]) -> float:
    """The median of non-empty samples."""
    if not samples:
        raise ValueError("no samples")
    return float(statistics.median(samples))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile, interpolated linearly as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """``median(numerator) / median(denominator)``."""
    return median(numerator) / median(denominator)


def synchroniser(device: torch.device) -> Callable[[], None]:
    """A call that waits for ``device``'s queued work to finish (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
