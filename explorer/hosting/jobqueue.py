"""The scheduler's lines: one job per session, fair queues, workers, cancellation."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from explorer.hosting.cache import CACHE_ENV, DEFAULT_CACHE_MB, BoundedCache
from explorer.hosting.cost import check_budget, positive_float_env
from explorer.hosting.jobs import Executor, Job, JobCancelled, LocalThreads, Progress, Status

WORKERS_ENV = "EXPLORER_HEAVY_WORKERS"
LIGHT_S = 0.1
"""A job estimated under this runs in the session's own thread, like any light work."""
QUICK_S = 2.0
"""A job estimated under this (a capture: one pass) takes the quick line."""
GRACE_S = 5.0
"""A job nobody has waited for this long (a closed tab, a page left) is cancelled."""


def heavy_workers() -> int:
    """Threads running long jobs: one fewer than the usable cores (at least one).

    ``$EXPLORER_HEAVY_WORKERS`` overrides.
    """
    raw = os.environ.get(WORKERS_ENV, "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return max(1, (len(cores) if cores is not None else (os.cpu_count() or 1)) - 1)


@dataclass(eq=False)
class _Run:
    """One job in flight, shared by the sessions that want its answer."""

    job: Job
    lane: str
    sessions: set[str] = field(default_factory=set)
    state: str = "queued"
    progress: float = 0.0
    waiters: int = 0
    left_at: float | None = None
    cancelled: bool = False
    value: Any = None
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class Ticket:
    """A session's claim on a job's answer. Use it as a context manager while you wait.

    While at least one ticket of a job is held, the job is wanted; once all are released for
    :data:`GRACE_S`, the job is cancelled.
    """

    def __init__(self, scheduler: Scheduler, run: _Run) -> None:
        self._scheduler = scheduler
        self._run = run
        self._held = True
        with scheduler._lock:
            run.waiters += 1

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        """Stop waiting (a page run that ends, or is stopped)."""
        if self._held:
            self._held = False
            with self._scheduler._lock:
                self._run.waiters -= 1
                if self._run.waiters == 0:
                    self._run.left_at = self._scheduler._clock()

    def done(self) -> bool:
        """Whether the answer (or the error, or the cancellation) is there."""
        return self._run.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`done`."""
        return self._run.finished.wait(timeout)

    def status(self) -> Status:
        """Queued (with its place in line), running (with its progress), done or cancelled."""
        return self._scheduler._status(self._run)

    def result(self) -> Any:
        """The answer.

        Raises:
            JobCancelled: The job was cancelled.
            Exception: Whatever the job raised.
        """
        self._run.finished.wait()
        if self._run.error is not None:
            raise self._run.error
        return self._run.value


class Scheduler:
    """Heavy jobs of every session: costed, one per session, in fair lines, cancellable, cached.

    Args:
        executor: Where jobs run (:class:`LocalThreads` by default).
        cache: The answers' cache (``$EXPLORER_HEAVY_CACHE_MB``, 1 GB, by default).
        workers: Threads for the long line (:func:`heavy_workers` by default).
        quick_workers: Threads for the quick line.
        budget: Seconds a job may be estimated to take (None: ``$EXPLORER_HEAVY_BUDGET_S``).
        clock: Monotonic seconds (tests pass their own).
        grace_s: How long a job nobody waits for is kept.
    """

    def __init__(
        self,
        executor: Executor | None = None,
        cache: BoundedCache | None = None,
        workers: int | None = None,
        quick_workers: int = 1,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        grace_s: float = GRACE_S,
    ) -> None:
        self.executor: Executor = executor or LocalThreads()
        megabytes = positive_float_env(CACHE_ENV, DEFAULT_CACHE_MB)
        self.cache = cache if cache is not None else BoundedCache(int(megabytes * 2**20))
        self.budget = budget
        self.grace_s = grace_s
        self._clock = clock
        self._workers = {"quick": quick_workers, "long": workers or heavy_workers()}
        self._queues: dict[str, list[_Run]] = {"quick": [], "long": []}
        self._running = {"quick": 0, "long": 0}
        self._by_key: dict[Hashable, _Run] = {}
        self._by_session: dict[str, _Run] = {}
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._started = False

    def submit(self, session: str, job: Job) -> Ticket:
        """Submit ``session``'s job; one that must wait in line replaces the session's previous.

        A cached answer comes back at once and a light job (estimated under :data:`LIGHT_S`)
        runs here, in the caller's thread: neither touches the session's job in line, so a
        page that reruns (a cached capture, then the same question again) finds its job still
        running. Any other job takes the previous one's place.

        Raises:
            OverBudget: The estimate is over the budget.
        """
        found, value = self.cache.lookup(job.key) if job.cache else (False, None)
        if found:
            return self._finished(job, value, None)
        check_budget(job.cost, self.budget)
        lane = self._lane(job)
        if lane == "here":
            return self._run_here(job)
        with self._lock:
            ticket = Ticket(self, self._claim(session, job, lane))
        self._start_workers()
        return ticket

    def cancel_session(self, session: str) -> None:
        """Drop the session's job (a closed tab): cancelled unless another session wants it."""
        with self._lock:
            self._drop(session)

    def run_here(self, job: Job, progress: Progress | None = None) -> Any:
        """``job``'s answer, cached, computed in this thread with no line nor budget (the CLI)."""
        found, value = self.cache.lookup(job.key) if job.cache else (False, None)
        if found:
            return value
        value = job.run(progress or (lambda _done: None))
        if job.cache:
            self.cache.put(job.key, value)
        return value

    @staticmethod
    def _lane(job: Job) -> str:
        if job.lane != "auto":
            return job.lane
        if job.cost is None:
            return "long"
        if job.cost.seconds <= LIGHT_S:
            return "here"
        return "quick" if job.cost.seconds <= QUICK_S else "long"

    def _run_here(self, job: Job) -> Ticket:
        try:
            value = self.run_here(job)
        except Exception as exc:
            return self._finished(job, None, exc)
        return self._finished(job, value, None)

    def _finished(self, job: Job, value: Any, error: BaseException | None) -> Ticket:
        run = _Run(job, "here", state="done", value=value, error=error)
        run.finished.set()
        return Ticket(self, run)

    def _claim(self, session: str, job: Job, lane: str) -> _Run:
        """The run that will answer ``job`` for ``session`` (the lock held)."""
        previous = self._by_session.get(session)
        if previous is not None and previous.job.key == job.key and not previous.cancelled:
            return previous
        place = self._drop(session)
        run = self._by_key.get(job.key)
        if run is None:
            run = _Run(job, lane)
            queue = self._queues[lane]
            same_line = previous is not None and previous.lane == lane
            queue.insert(place if place is not None and same_line else len(queue), run)
            self._by_key[job.key] = run
            self._wake.notify_all()
        run.sessions.add(session)
        self._by_session[session] = run
        return run

    def _drop(self, session: str) -> int | None:
        """Let go of the session's job; its place in line if that job was dropped from one."""
        run = self._by_session.pop(session, None)
        if run is None:
            return None
        run.sessions.discard(session)
        return None if run.sessions else self._cancel(run)

    def _cancel(self, run: _Run) -> int | None:
        if self._by_key.get(run.job.key) is run:
            del self._by_key[run.job.key]
        if run.state == "queued":
            queue = self._queues[run.lane]
            place = queue.index(run)
            del queue[place]
            self._finish(run, None, JobCancelled())
            return place
        run.cancelled = True
        return None

    def _finish(self, run: _Run, value: Any, error: BaseException | None) -> None:
        run.value, run.error = value, error
        run.state = "cancelled" if isinstance(error, JobCancelled) else "done"
        if run.state == "cancelled" and run.job.on_cancel is not None:
            run.job.on_cancel()
        if self._by_key.get(run.job.key) is run:
            del self._by_key[run.job.key]
        for session in run.sessions:
            if self._by_session.get(session) is run:
                del self._by_session[session]
        run.finished.set()

    def _abandoned(self, run: _Run) -> bool:
        with self._lock:
            if run.cancelled:
                return True
            left = run.left_at
            return run.waiters == 0 and left is not None and self._clock() - left > self.grace_s

    def _status(self, run: _Run) -> Status:
        with self._lock:
            if run.finished.is_set():
                return Status(run.state, progress=1.0)
            running = self._running[run.lane]
            if run.state == "running":
                return Status("running", 0, running, run.progress)
            return Status("queued", self._queues[run.lane].index(run) + 1, running)

    def _start_workers(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for lane, count in self._workers.items():
            for _ in range(count):
                self.executor.spawn(functools.partial(self._loop, lane))

    def _loop(self, lane: str) -> None:
        while True:
            self._execute(self._take(lane))

    def _take(self, lane: str) -> _Run:
        with self._wake:
            while True:
                queue = self._queues[lane]
                for run in [r for r in queue if self._abandoned(r)]:
                    self._cancel(run)
                if queue:
                    run = queue.pop(0)
                    run.state = "running"
                    self._running[lane] += 1
                    return run
                self._wake.wait(timeout=1.0)

    def _execute(self, run: _Run) -> None:
        def report(done: float) -> None:
            run.progress = min(max(float(done), 0.0), 1.0)
            if self._abandoned(run):
                raise JobCancelled

        try:
            value = self.executor.run(run.job, report)
        except BaseException as exc:  # the job's own error, or JobCancelled: the waiter sees it
            with self._lock:
                self._running[run.lane] -= 1
                self._finish(run, None, exc)
            return
        if run.job.cache:
            self.cache.put(run.job.key, value)
        with self._lock:
            self._running[run.lane] -= 1
            self._finish(run, value, None)


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The server's scheduler (made on first use, with the environment's settings)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Scheduler()
        return _default
