"""A page's wait for a heavy job: a rerun lets go of it (never cancels it at once)."""

from __future__ import annotations

import threading

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from explorer.hosting.jobs import Job, JobCancelled, Progress
from explorer.hosting.scheduler import Scheduler
from pages import common


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_rerun_during_the_wait_lets_go_and_the_grace_period_then_cancels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    scheduler = Scheduler(workers=1, budget=1e9, clock=clock, grace_s=5.0)
    monkeypatch.setattr(common, "default_scheduler", lambda: scheduler)
    steps = threading.Semaphore(0)
    finish = threading.Event()

    def run(progress: Progress) -> str:
        while not finish.is_set():
            progress(0.5)  # raises JobCancelled once nobody wants the answer
            steps.release()
            finish.wait(0.01)
        return "answer"

    job = Job(("wait-test", 1), run, lane="long", cache=False)
    watched: list[float] = []

    def rerun() -> None:  # a widget touched while the page waits: Streamlit stops the run here
        watched.append(clock.now)
        raise StopException

    with pytest.raises(StopException):
        common.run_job(job, "Training", watch=rerun)
    assert watched == [0.0]  # the page's view was drawn once, then the run was stopped
    assert steps.acquire(timeout=10)
    # the next run submits the same job and finds it still running: let go, not cancelled
    clock.now = 4.0
    again = scheduler.submit(common.session_id(), job)
    assert again.status().state == "running"
    again.release()
    # nobody waits past the grace period: the job's next progress call cancels it
    clock.now = 4.0 + 5.0 + 0.1
    assert again.wait(10)
    assert again.status().state == "cancelled"
    with pytest.raises(JobCancelled):
        again.result()


def test_a_job_cancelled_in_line_or_running_tells_its_owner_once() -> None:
    """``Job.on_cancel``: heard whether or not a page waits (a student on another page)."""
    scheduler = Scheduler(workers=1, budget=1e9)
    hold = threading.Event()
    started = threading.Event()
    heard: list[str] = []

    def busy(progress: Progress) -> None:
        started.set()
        while not hold.wait(0.01):
            progress(0.5)  # raises JobCancelled once it is replaced

    running = Job(("busy", 1), busy, lane="long", cache=False, on_cancel=lambda: heard.append("a"))
    first = scheduler.submit("classmate", running)
    assert started.wait(10)
    ran: list[int] = []
    mine = Job(
        ("mine", 1), lambda _p: ran.append(1), lane="long", on_cancel=lambda: heard.append("b")
    )
    queued = scheduler.submit("me", mine)
    assert queued.status().state == "queued"
    queued.release()  # the page moved on: nobody waits for it
    # another heavy job of this session replaces it while it waits in line
    other = scheduler.submit("me", Job(("other", 1), lambda _p: None, lane="long", cache=False))
    assert queued.wait(10) and queued.status().state == "cancelled"
    assert heard == ["b"] and not ran
    # a running job replaced: its progress call raises, and its owner hears it once
    scheduler.submit("classmate", Job(("next", 1), lambda _p: None, lane="long", cache=False))
    assert first.wait(10) and first.status().state == "cancelled"
    assert heard == ["b", "a"]
    hold.set()
    other.release()
    first.release()
