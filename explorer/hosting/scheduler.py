"""One scheduler for heavy work: every big job is costed, queued fairly, cancellable, cached.

A class shares one server. A big model's capture, an attribution map, a feature
visualisation or a channel's top inputs can take from a tenth of a second to hours (occlusion
with a 1-px stride on VGG-16 is 50,176 passes), so they are all submitted here, as a
:class:`Job`, and the scheduler

- **costs** the job before it runs (:class:`Cost`: forward-pass equivalents × the seconds one
  pass takes, from :func:`model_profile`: the model's multiply-adds, counted by the
  architecture table, and one timed pass on this machine, or ``$EXPLORER_SECONDS_PER_GMAC``)
  and refuses one over the budget (``$EXPLORER_HEAVY_BUDGET_S``, 60 s) with
  :class:`OverBudget`, a message that says why and what to change;
- runs **at most one job per session**: a new submission from a session replaces its
  previous job (cancelled unless another session waits for the same answer), keeping its
  place in line when that job had not started yet; a rerun that asks the same again finds it;
- **queues sessions fairly**: first come, first served, one entry a session, each waiting
  job knowing its place in line (:meth:`Ticket.status`); quick jobs (a capture: one pass) have
  their own line and worker, so a classmate's new photo never waits behind a minute of
  occlusion;
- **cancels** cooperatively: a job's progress callback raises :class:`JobCancelled` once the
  job is replaced, its session is closed (:meth:`Scheduler.cancel_session`), or nobody has
  waited for it for :data:`GRACE_S`;
- **caches** answers by content (:class:`BoundedCache`, bounded in bytes): a key names the
  model, its weights, the input's sha256 and the settings, and a job in flight is shared by
  every session that asks for the same key.

Light work never enters a line: drawing, a layer switch on a cached capture and LeNet's passes
run in the session's own thread, and so does any job estimated under :data:`LIGHT_S`. Heavy
jobs run on :func:`heavy_workers` threads (one fewer than the cores), each pass on one torch
thread (the server's setting), so a core stays free for light work.

**Executors.** Where a job's work runs is an :class:`Executor`: :class:`LocalThreads` by
default, threads of the server process, because torch releases the GIL in its kernels and the
models are shared read-only, so a job costs no copy of a model and no process start. A cluster
would keep this queue per replica (fairness and cancellation need each session's state, which
lives in its replica) and implement :meth:`Executor.run` by shipping the job to a pool of model
servers: Ray actors each holding the zoo (a job is a model name, weights id and input tensor;
``ray.cancel`` stops it; results come back as tensors) rather than Celery, whose broker
round-trips and pickled results suit minutes-long tasks, not progress reported every pass. On
a GPU, every worker process pays its own CUDA context (~300-500 MB) and its own copy of the
models, so one process per GPU should run the jobs with one CUDA stream per worker thread (or
NVIDIA MPS when the processes must be separate), not a process per job.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch

from explorer.analysis.architecture import architecture_table, human_count
from explorer.analysis.capture import CaptureResult
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel

BUDGET_ENV = "EXPLORER_HEAVY_BUDGET_S"
DEFAULT_BUDGET_S = 60.0
"""The longest a job may be estimated to take on this server."""
RATE_ENV = "EXPLORER_SECONDS_PER_GMAC"
"""Seconds one billion multiply-adds take here; set, it replaces the timed pass."""
DEFAULT_SECONDS_PER_GMAC = 0.025
"""Measured on the 2-core AMD EPYC, one torch thread: ResNet-18, VGG-16 and AlexNet take
0.023-0.025 s per G multiply-adds (MobileNet and SqueezeNet ~0.06): the rate of a model whose
pass could not be timed."""
WORKERS_ENV = "EXPLORER_HEAVY_WORKERS"
CACHE_ENV = "EXPLORER_HEAVY_CACHE_MB"
DEFAULT_CACHE_MB = 1024
"""Answers kept for every session: about eight VGG-16 captures, or thousands of maps."""
LIGHT_S = 0.1
"""A job estimated under this runs in the session's own thread, like any light work."""
QUICK_S = 2.0
"""A job estimated under this (a capture: one pass) takes the quick line."""
GRACE_S = 5.0
"""A job nobody has waited for this long (a closed tab, a page left) is cancelled."""
BACKWARD_PASSES = 1.0
"""A backward pass to the input, in forward passes (measured: forward + backward is 1.8-2.6×
a forward pass; the parameters never require grad, so no weight gradients are computed)."""

Progress = Callable[[float], None]
Lane = Literal["auto", "quick", "long"]


class OverBudget(Exception):
    """A job estimated to take longer than the budget: the message says why and what to do."""


class JobCancelled(BaseException):
    """Raised inside a job (from its progress callback) once nobody wants its answer.

    A ``BaseException``, like :class:`asyncio.CancelledError`, so that the libraries' own
    ``except Exception`` retries do not swallow it.
    """


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def budget_seconds() -> float:
    """The budget a job's estimate must fit (``$EXPLORER_HEAVY_BUDGET_S``, read each time)."""
    return _env_float(BUDGET_ENV, DEFAULT_BUDGET_S)


def heavy_workers() -> int:
    """Threads running long jobs: one fewer than the usable cores (at least one).

    ``$EXPLORER_HEAVY_WORKERS`` overrides.
    """
    raw = os.environ.get(WORKERS_ENV, "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return max(1, (len(cores) if cores is not None else (os.cpu_count() or 1)) - 1)


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


# --- the cache ------------------------------------------------------------------------------


def approximate_bytes(value: object, depth: int = 6) -> int:
    """Memory held by ``value``, roughly.

    Its tensors and arrays (a storage shared by several tensors counted once), plus a little
    for every other object, through dataclasses, mappings and sequences.
    """
    storages: dict[int, int] = {}
    other = _walk_bytes(value, depth, storages)
    return other + sum(storages.values())


def _walk_bytes(value: object, depth: int, storages: dict[int, int]) -> int:
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | str):
        return len(value)
    if depth <= 0:
        return 64
    children: Iterable[object] = ()
    if is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in fields(value)]
    elif isinstance(value, Mapping):
        children = list(value.values())
    elif isinstance(value, list | tuple | set | frozenset):
        children = value
    return 64 + sum(_walk_bytes(child, depth - 1, storages) for child in children)


class BoundedCache:
    """Answers shared by every session, by content key, least recently used out first.

    Bounded by :func:`approximate_bytes` of its values (an answer larger than the whole bound
    is returned but not kept). Thread-safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, value)`` when ``key`` is kept (now the most recent), else ``(False, None)``."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return False, None
            self._entries.move_to_end(key)
            return True, found[0]

    def put(self, key: Hashable, value: object) -> None:
        """Keep ``value`` under ``key``, evicting the least recently used beyond the bound."""
        size = approximate_bytes(value)
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old[1] if old else 0
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``make()``'s, kept."""
        found, value = self.lookup(key)
        if not found:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def bytes(self) -> int:
        """What the kept answers hold, by :func:`approximate_bytes`."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries


# --- the cost of a model's pass --------------------------------------------------------------


@dataclass(frozen=True)
class ModelProfile:
    """What one pass of a model costs on this machine, for one input shape.

    Attributes:
        model: Its name, for messages.
        mult_adds: Multiply-adds of a whole pass (conv and linear layers).
        upto: Multiply-adds of a pass that stops after each captured layer (execution order;
            a layer's first occurrence).
        pass_seconds: Seconds a whole pass takes here.
    """

    model: str
    mult_adds: int
    upto: Mapping[str, int]
    pass_seconds: float

    def cost(
        self,
        what: str,
        passes: float,
        layer: str | None = None,
        advice: Callable[[int], str] | None = None,
    ) -> Cost:
        """``passes`` of the model (only as far as ``layer`` when given) as a :class:`Cost`."""
        part = self.upto.get(layer, self.mult_adds) if layer else self.mult_adds
        fraction = part / self.mult_adds if self.mult_adds else 1.0
        return Cost(what, passes, self.pass_seconds * fraction, part, self.model, advice)


def count_profile(
    name: str, model: torch.nn.Module, result: CaptureResult, seconds_per_gmac: float | None
) -> ModelProfile:
    """The model's multiply-adds from its architecture table, and one pass timed here.

    Args:
        name: The model's name, for messages.
        model: The model that produced ``result``.
        result: A capture of every layer (the table reads its shapes).
        seconds_per_gmac: A rate to use instead of timing a pass (None: time one).

    A model the table cannot read (a graph whose convs are operators) counts 0 multiply-adds
    and is costed by its timed pass alone; one whose pass fails here is costed at
    :data:`DEFAULT_SECONDS_PER_GMAC` (or :data:`QUICK_S` a pass; its job will say what failed).
    """
    height, width = result.input.shape[-2:]
    try:
        rows = architecture_table(model, result, (int(height), int(width)))
    except Exception:
        rows = []
    upto: dict[str, int] = {}
    total = 0
    for row in rows:
        total += row.mult_adds
        upto.setdefault(row.name, total)
    if seconds_per_gmac is not None and total:
        return ModelProfile(name, total, upto, total / 1e9 * seconds_per_gmac)
    seconds = _timed_pass(model, result.input)
    if seconds is None:
        seconds = total / 1e9 * DEFAULT_SECONDS_PER_GMAC if total else QUICK_S
    return ModelProfile(name, total, upto, seconds)


def _timed_pass(model: torch.nn.Module, x: torch.Tensor) -> float | None:
    device = next(itertools.chain(model.parameters(), model.buffers()), x).device
    batch = x.detach().clone()[None].to(device)
    try:
        with torch.no_grad():
            start = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start
    except Exception:
        return None


def _profile_key(loaded: LoadedModel, input_shape: tuple[int, ...]) -> tuple[object, ...]:
    rate = _env_float(RATE_ENV, 0.0) or None
    return ("profile", loaded.cache_key, tuple(input_shape), rate)


def model_profile(loaded: LoadedModel, result: CaptureResult) -> ModelProfile:
    """The model's :class:`ModelProfile`, made once per model and input shape (cached).

    Made by :func:`count_profile`: at ``$EXPLORER_SECONDS_PER_GMAC`` when set, else with one
    timed pass (the first time only).
    """
    key = _profile_key(loaded, tuple(result.input.shape))
    rate = key[-1]
    profile: ModelProfile = default_scheduler().cache.get_or_make(
        key,
        lambda: count_profile(
            loaded.spec.title, loaded.model, result, rate if isinstance(rate, float) else None
        ),
    )
    return profile


def known_profile(loaded: LoadedModel, input_shape: tuple[int, ...]) -> ModelProfile | None:
    """The model's profile for inputs of ``input_shape`` (no batch), if one was made."""
    found, profile = default_scheduler().cache.lookup(_profile_key(loaded, input_shape))
    return profile if found else None


def capture_job(loaded: LoadedModel, prepared: PreparedInput, model_key: str) -> Job:
    """A capture of every layer of one input, as a job (its first also profiles the model).

    One pass: the quick line (or the caller's thread, once the model is known to be light).
    Keyed by ``model_key`` (model and weights) and the input's sha256.
    """

    def run(_progress: Progress) -> CaptureResult:
        result = loaded.capture(prepared)
        model_profile(loaded, result)
        return result

    profile = known_profile(loaded, tuple(prepared.tensor.shape[1:]))
    key = ("capture", model_key, prepared.sha256)
    if profile is None:
        return Job(key, run, lane="quick")
    return Job(key, run, profile.cost("a capture of every layer", 1.0))


# --- jobs and tickets ------------------------------------------------------------------------


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
    """

    key: Hashable
    run: Callable[[Progress], Any]
    cost: Cost | None = None
    lane: Lane = "auto"
    cache: bool = True

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


# --- where jobs run ---------------------------------------------------------------------------


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


# --- the scheduler -----------------------------------------------------------------------------


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
        megabytes = _env_float(CACHE_ENV, DEFAULT_CACHE_MB)
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


__all__ = [
    "BACKWARD_PASSES",
    "GRACE_S",
    "LIGHT_S",
    "QUICK_S",
    "BoundedCache",
    "Cost",
    "Executor",
    "Job",
    "JobCancelled",
    "LocalThreads",
    "ModelProfile",
    "OverBudget",
    "Scheduler",
    "Status",
    "Ticket",
    "approximate_bytes",
    "budget_seconds",
    "capture_job",
    "check_budget",
    "count_profile",
    "default_scheduler",
    "duration_text",
    "heavy_workers",
    "known_profile",
    "model_profile",
]
