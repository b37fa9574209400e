"""A heavy job: what computes the answer, its key and cost, where it stands, where it runs."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from explorer.hosting.cost import Cost

Progress = Callable[[float], None]
Lane = Literal["auto", "quick", "long"]


class JobCancelled(BaseException):
    """Raised inside a job (from its progress callback) once nobody wants its answer.

    A ``BaseException``, like :class:`asyncio.CancelledError`, so that the libraries' own
    ``except Exception`` retries do not swallow it.
    """


@dataclass(frozen=True)
class Job:
    """Work to submit: what computes the answer, what names it, what it will cost.

    Attributes:
        key: The answer's content key (model, weights, input sha256, settings): the same key,
            the same answer, shared by every session and cached.
        run: Computes the answer; call its argument with the fraction done (0…1) as often as
            you can: that call raises :class:`JobCancelled` once the answer is not wanted.
        cost: The estimate (None: not known; never refused, never run in the caller).
        lane: ``"quick"`` or ``"long"`` line; ``"auto"``: by the estimate.
        cache: Whether to keep the answer.
        on_cancel: Called once if it is cancelled, in line or running (quick: it runs under the
            scheduler's lock), so that whoever holds the job knows, waiting or not.
    """

    key: Hashable
    run: Callable[[Progress], Any]
    cost: Cost | None = None
    lane: Lane = "auto"
    cache: bool = True
    on_cancel: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def call(cls, fn: Callable[..., Any], *args: Any, quick: bool = False) -> Job:
        """``fn(*args)`` as a job of unknown cost, never cached nor shared.

        ``quick``: it is one pass or so (the quick line), not many (the long line).
        """
        lane: Lane = "quick" if quick else "long"
        return cls(("call", next(_calls)), lambda _progress: fn(*args), lane=lane, cache=False)


_calls = itertools.count()


@dataclass(frozen=True)
class Status:
    """Where a submitted job stands.

    Attributes:
        state: ``"queued"``, ``"running"``, ``"done"`` or ``"cancelled"``.
        place: Its place in line when queued (1: next), else 0.
        running: Jobs running in its line now.
        progress: The fraction done (running), 0…1.
    """

    state: str
    place: int = 0
    running: int = 0
    progress: float = 0.0


class Executor(Protocol):
    """Where the scheduler's jobs do their work."""

    def spawn(self, loop: Callable[[], None]) -> None:
        """Start one worker that runs ``loop`` (it takes and runs jobs until the process ends)."""

    def run(self, job: Job, report: Progress) -> Any:
        """Do ``job``'s work from a worker, passing it ``report``; return its answer."""


class LocalThreads:
    """Workers as daemon threads of this process; a job runs in the worker's own thread."""

    def spawn(self, loop: Callable[[], None]) -> None:
        """Start a daemon thread running ``loop``."""

        def start() -> None:
            # OpenMP's thread count is per thread: take the server's (one) in this one too.
            torch.set_num_threads(torch.get_num_threads())
            loop()

        threading.Thread(target=start, name="explorer-heavy", daemon=True).start()

    def run(self, job: Job, report: Progress) -> Any:
        """Call ``job.run(report)`` here."""
        return job.run(report)
