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

**Where each part lives.** This module offers every name; each is defined once, by idea:
:mod:`.cost` (the estimate and the budget), :mod:`.cache` (the answers), :mod:`.jobs` (a job,
its status, where it runs), :mod:`.jobqueue` (the lines, tickets and workers: the
:class:`Scheduler`) and :mod:`.profiles` (what a model's pass costs; a capture as a job).
"""

from __future__ import annotations

from explorer.hosting.cache import CACHE_ENV, DEFAULT_CACHE_MB, BoundedCache, approximate_bytes
from explorer.hosting.cost import (
    BACKWARD_PASSES,
    BUDGET_ENV,
    DEFAULT_BUDGET_S,
    DEFAULT_SECONDS_PER_GMAC,
    RATE_ENV,
    Cost,
    OverBudget,
    budget_seconds,
    check_budget,
    duration_text,
)
from explorer.hosting.jobqueue import (
    GRACE_S,
    LIGHT_S,
    QUICK_S,
    WORKERS_ENV,
    Scheduler,
    Ticket,
    default_scheduler,
    heavy_workers,
)
from explorer.hosting.jobs import Executor, Job, JobCancelled, Lane, LocalThreads, Progress, Status
from explorer.hosting.profiles import (
    ModelProfile,
    capture_job,
    count_profile,
    known_profile,
    model_profile,
)

__all__ = [
    "BACKWARD_PASSES",
    "BUDGET_ENV",
    "CACHE_ENV",
    "DEFAULT_BUDGET_S",
    "DEFAULT_CACHE_MB",
    "DEFAULT_SECONDS_PER_GMAC",
    "GRACE_S",
    "LIGHT_S",
    "QUICK_S",
    "RATE_ENV",
    "WORKERS_ENV",
    "BoundedCache",
    "Cost",
    "Executor",
    "Job",
    "JobCancelled",
    "Lane",
    "LocalThreads",
    "ModelProfile",
    "OverBudget",
    "Progress",
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
