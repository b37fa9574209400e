"""What a load test runs: the page, how many sessions, how long, how often, within bounds."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SESSIONS = 200
MAX_DURATION_S = 600.0
MAX_INTERVAL_S = 600.0


@dataclass(frozen=True)
class LoadPlan:
    """What to run: the page, how many sessions, how long and how often."""

    page: str
    sessions: int
    duration_s: float
    interval_s: float


def schedule_offsets(sessions: int, interval: float) -> list[float]:
    """Each session's first send after the window opens: spread evenly over one interval."""
    return [interval * i / sessions for i in range(sessions)]
