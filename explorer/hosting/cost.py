"""What a heavy job will cost, estimated before it runs, and the budget it must fit."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from explorer.analysis.architecture import human_count

BUDGET_ENV = "EXPLORER_HEAVY_BUDGET_S"
DEFAULT_BUDGET_S = 60.0
"""The longest a job may be estimated to take on this server."""
RATE_ENV = "EXPLORER_SECONDS_PER_GMAC"
"""Seconds one billion multiply-adds take here; set, it replaces the timed pass."""
DEFAULT_SECONDS_PER_GMAC = 0.025
"""Measured on the 2-core AMD EPYC, one torch thread: ResNet-18, VGG-16 and AlexNet take
0.023-0.025 s per G multiply-adds (MobileNet and SqueezeNet ~0.06): the rate of a model whose
pass could not be timed."""
BACKWARD_PASSES = 1.0
"""A backward pass to the input, in forward passes (measured: forward + backward is 1.8-2.6×
a forward pass; the parameters never require grad, so no weight gradients are computed)."""


class OverBudget(Exception):
    """A job estimated to take longer than the budget: the message says why and what to do."""


def positive_float_env(name: str, default: float) -> float:
    """``$name`` as a positive finite number; ``default`` when unset or anything else."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def budget_seconds() -> float:
    """The budget a job's estimate must fit (``$EXPLORER_HEAVY_BUDGET_S``, read each time)."""
    return positive_float_env(BUDGET_ENV, DEFAULT_BUDGET_S)


def duration_text(seconds: float) -> str:
    """``7260`` → ``"2 h"``, ``95`` → ``"2 min"``, ``4.2`` → ``"4 s"``."""
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{max(seconds, 1):.0f} s" if seconds >= 1 else f"{seconds:.1g} s"


@dataclass(frozen=True)
class Cost:
    """What a job will cost, estimated before it runs.

    Attributes:
        what: The job in words, e.g. ``"occlusion with a 1-px window and a 1-px stride"``.
        passes: Forward-pass equivalents (a backward pass counts :data:`BACKWARD_PASSES`).
        pass_seconds: Seconds one pass (of the part of the model the job runs) takes here.
        pass_mult_adds: Multiply-adds of that pass (0: not counted).
        model: The model's name, for the message.
        advice: Given the most passes the budget allows, what to change (one clause).
    """

    what: str
    passes: float
    pass_seconds: float
    pass_mult_adds: int
    model: str
    advice: Callable[[int], str] | None = field(default=None, compare=False)

    @property
    def seconds(self) -> float:
        """The estimate: passes × seconds a pass."""
        return self.passes * self.pass_seconds

    def max_passes(self, budget: float) -> int:
        """The most passes of this job's kind that fit ``budget`` seconds."""
        return int(budget / self.pass_seconds) if self.pass_seconds > 0 else 1 << 62

    def refusal(self, budget: float) -> str:
        """Why the job is refused, and what to change."""
        each = f" ({human_count(self.pass_mult_adds)} multiply-adds each)"
        advice = self.advice(self.max_passes(budget)) if self.advice else "ask for less"
        return (
            f"{self.what[:1].upper()}{self.what[1:]} is {self.passes:,.0f} passes of "
            f"{self.model}{each if self.pass_mult_adds else ''} ≈ {duration_text(self.seconds)} "
            f"on this server, over the {duration_text(budget)} a job may take here: {advice}."
        )


def check_budget(cost: Cost | None, budget: float | None = None) -> None:
    """Refuse a job whose estimate is over the budget.

    Raises:
        OverBudget: With :meth:`Cost.refusal`'s message.
    """
    limit = budget_seconds() if budget is None else budget
    if cost is not None and cost.seconds > limit:
        raise OverBudget(cost.refusal(limit))
