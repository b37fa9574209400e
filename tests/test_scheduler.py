"""The heavy-work scheduler: cost, budget, one job a session, fair lines, cancellation, cache."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from explorer.analysis.attribution import Settings, attribution_passes
from explorer.analysis.capture import capture
from explorer.hosting.scheduler import (
    BACKWARD_PASSES,
    BUDGET_ENV,
    RATE_ENV,
    BoundedCache,
    Cost,
    Job,
    JobCancelled,
    OverBudget,
    Progress,
    Scheduler,
    approximate_bytes,
    count_profile,
    default_scheduler,
    duration_text,
)
from explorer.models.zoo import load_model
from explorer.views.attribution import why_cost, why_job

REPO = Path(__file__).resolve().parents[1]
DIGIT = REPO / "assets" / "digits" / "3_0.png"
WAIT_S = 60.0  # a guard against a hang, never a measurement


def direct_mult_adds(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one pass, counted by hooks on every conv and linear module."""
    total = 0

    def count(module: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            total += out[0].numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


class Gate:
    """A job that runs until opened, reporting progress all the while (cancellable)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()
        self.saw_cancel = False
        self.finished = False
        self.runs = 0

    def run(self, progress: Progress) -> str:
        self.runs += 1
        try:
            progress(0.5)
            self.started.set()
            while not self.opened.wait(0.005):
                progress(0.5)
        except JobCancelled:
            self.saw_cancel = True
            raise
        self.finished = True
        return "gate"

    def job(self, key: object = "gate") -> Job:
        return Job(("gate", key), self.run, cache=False)


def logging_job(name: str, log: list[str]) -> Job:
    def run(_progress: Progress) -> str:
        log.append(name)
        return name

    return Job(("log", name), run, cache=False)


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    yield Scheduler(workers=1, quick_workers=1, budget=60.0)


def test_the_cost_of_occlusion_is_its_windows_times_the_models_multiply_adds() -> None:
    tiny = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 10))
    x = torch.randn(1, 1, 8, 8)
    # By hand: conv 2×6×6 outputs × 1×3×3 weights = 648; linear 72 × 10 = 720.
    profile = count_profile("tiny", tiny, capture(tiny, x), seconds_per_gmac=1.0)
    assert profile.mult_adds == 648 + 720 == direct_mult_adds(tiny, x)
    assert profile.upto["0"] == 648  # a pass that stops after the conv
    # 8×8 input, 2-px window, stride 2: 4 × 4 = 16 windows, one unoccluded pass, the class's.
    settings = Settings("occlusion", 0, window=2, stride=2)
    passes = attribution_passes(settings, (8, 8))
    assert passes == 16 + 1 + 1
    cost = profile.cost("occlusion", passes)
    assert cost.seconds == pytest.approx(18 * 1368 * 1e-9)


def test_the_why_views_cost_on_lenet_counts_windows_and_the_faithfulness_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RATE_ENV, "0.5")
    loaded = load_model("lenet5")
    prepared = loaded.prepare(DIGIT)
    result = loaded.capture(prepared)
    macs = direct_mult_adds(loaded.model, prepared.tensor)
    occlusion = why_cost(loaded, result, Settings("occlusion", 3, window=4, stride=4))
    # 28×28, 4-px window and stride: 7 × 7 windows + Captum's pass + the class's + deletion's 2.
    assert occlusion.passes == 49 + 1 + 1 + 2
    assert occlusion.pass_mult_adds == macs
    assert occlusion.pass_seconds == pytest.approx(macs / 1e9 * 0.5)
    steps = why_cost(loaded, result, Settings("integrated_gradients", 3, steps=16))
    assert steps.passes == 1 + 16 * (1 + BACKWARD_PASSES) + 2


def test_a_question_over_the_budget_is_refused_with_why_and_what_to_change(
    monkeypatch: pytest.MonkeyPatch, scheduler: Scheduler
) -> None:
    loaded = load_model("lenet5")
    prepared = loaded.prepare(DIGIT)
    result = loaded.capture(prepared)
    macs = direct_mult_adds(loaded.model, prepared.tensor)
    monkeypatch.setenv(RATE_ENV, repr(0.01 / (macs / 1e9)))  # a pass: 10 ms
    scheduler.budget = 1.005  # 100 passes
    asked = Settings("occlusion", 3, window=1, stride=1)
    with pytest.raises(OverBudget) as refused:
        scheduler.submit("a", why_job(loaded, prepared, asked, result))
    # 28 × 28 windows + 4; the first stride that fits: 3 px (9 × 9 + 4 ≤ 100; 2 px: 14 × 14).
    assert str(refused.value) == (
        f"Occlusion with a 1-px window and a 1-px stride is 788 passes of LeNet-5 ({macs / 1e3:.3g}"
        " k multiply-adds each) ≈ 8 s on this server, over the 1 s a job may take here: use a "
        "window and a stride of 3 px or more."
    )
    fits = Settings("occlusion", 3, window=3, stride=3)
    with scheduler.submit("a", why_job(loaded, prepared, fits, result)) as ticket:
        assert ticket.result().attribution.values.shape == (28, 28)


def test_advice_for_the_other_slow_methods() -> None:
    cost = Cost("Integrated Gradients with 128 steps", 259, 1.0, 10**9, "VGG-16")
    assert "≈ 4 min" in cost.refusal(60.0) and "ask for less" in cost.refusal(60.0)
    assert duration_text(50_000 * 0.36) == "5 h" and duration_text(30) == "30 s"
    loaded = load_model("lenet5")
    prepared = loaded.prepare(DIGIT)
    result = loaded.capture(prepared)
    ig = why_cost(loaded, result, Settings("integrated_gradients", 3, steps=128))
    assert ig.advice is not None and ig.advice(1 + 2 * 20 + 2) == "use at most 20 steps"
    score = why_cost(loaded, result, Settings("scorecam", 3, layer="conv2"))
    assert score.passes == 1 + 2 + 16 + 2  # conv2's 16 channels, one masked pass each
    assert score.advice is not None and "at most 5 channels" in score.advice(1 + 2 + 5 + 2)


def test_a_second_submission_from_a_session_cancels_its_running_job(
    scheduler: Scheduler,
) -> None:
    gate = Gate()
    first = scheduler.submit("a", gate.job())
    assert gate.started.wait(WAIT_S)
    assert first.status().state == "running" and first.status().progress == 0.5
    second = scheduler.submit("a", logging_job("second", []))
    with pytest.raises(JobCancelled):
        first.result()
    assert gate.saw_cancel and not gate.finished  # stopped at a progress report
    assert second.wait(WAIT_S) and second.result() == "second"


def test_a_rerun_that_asks_again_finds_its_job_still_running(scheduler: Scheduler) -> None:
    gate = Gate()
    with scheduler.submit("a", gate.job()):
        assert gate.started.wait(WAIT_S)
    # The page reruns (another widget moved): its capture comes from the cache, then it asks
    # the same question again, within the grace.
    scheduler.cache.put(("capture",), "cached")
    assert scheduler.submit("a", Job(("capture",), lambda _p: "fresh")).result() == "cached"
    light = Job(("light",), lambda _p: "here", Cost("a pass", 1, 1e-4, 0, "x"))
    assert scheduler.submit("a", light).result() == "here"
    again = scheduler.submit("a", gate.job())
    assert again.status().state == "running" and not gate.saw_cancel
    gate.opened.set()
    assert again.wait(WAIT_S) and again.result() == "gate" and gate.runs == 1


def test_sessions_wait_in_fair_order_and_know_their_place(scheduler: Scheduler) -> None:
    gate, log = Gate(), list[str]()
    running = scheduler.submit("a", gate.job())
    assert gate.started.wait(WAIT_S)
    b, c, d = (scheduler.submit(s, logging_job(s, log)) for s in "bcd")
    assert [t.status().place for t in (b, c, d)] == [1, 2, 3]
    assert b.status().state == "queued" and b.status().running == 1
    # c changes its question before its turn: the new one keeps c's place, the old is dropped.
    c2 = scheduler.submit("c", logging_job("c2", log))
    assert c.status().state == "cancelled" and c2.status().place == 2
    # a, whose job is running, asks again: to the back of the line.
    a2 = scheduler.submit("a", logging_job("a2", log))
    assert a2.status().place == 4
    with pytest.raises(JobCancelled):
        running.result()  # replaced by a2 while it ran: stopped, and the line moves on
    for ticket in (b, c2, d, a2):
        assert ticket.wait(WAIT_S)
    assert log == ["b", "c2", "d", "a2"]


def test_the_same_question_from_two_sessions_runs_once_and_is_cached(
    scheduler: Scheduler,
) -> None:
    gate, calls = Gate(), []

    def work(_progress: Progress) -> int:
        calls.append(1)
        return 42

    blocker = scheduler.submit("z", gate.job())
    assert gate.started.wait(WAIT_S)
    shared = Job(("answer",), work)
    first, second = scheduler.submit("a", shared), scheduler.submit("b", shared)
    scheduler.submit("a", logging_job("other", []))  # a leaves; b still wants the answer
    assert second.status().state == "queued"
    gate.opened.set()
    assert second.wait(WAIT_S) and second.result() == 42
    assert first.result() == 42 and len(calls) == 1
    assert scheduler.submit("c", shared).result() == 42 and len(calls) == 1  # from the cache
    assert blocker.wait(WAIT_S)


def test_a_closed_tab_and_a_page_nobody_waits_on_cancel_the_job() -> None:
    now = [0.0]
    scheduler = Scheduler(workers=1, budget=60.0, clock=lambda: now[0], grace_s=5.0)
    gate = Gate()
    queued_gate = Gate()
    with scheduler.submit("a", gate.job()) as ticket:
        assert gate.started.wait(WAIT_S)
        queued = scheduler.submit("b", queued_gate.job("b"))
    now[0] = 4.0  # within the grace: a rerun that comes back finds its job still running
    assert ticket.status().state == "running"
    now[0] = 10.0  # nobody waited for 10 s: it stops at its next report
    assert ticket.wait(WAIT_S) and gate.saw_cancel
    assert queued_gate.started.wait(WAIT_S)
    scheduler.cancel_session("b")  # b's tab closed
    assert queued.wait(WAIT_S) and queued_gate.saw_cancel


def test_light_work_completes_while_another_session_runs_a_heavy_job(
    scheduler: Scheduler,
) -> None:
    gate = Gate()
    heavy = scheduler.submit("heavy", gate.job())
    assert gate.started.wait(WAIT_S)
    loaded = load_model("lenet5")
    prepared = loaded.prepare(DIGIT)
    result = loaded.capture(prepared)  # light work: the session's own thread
    light = Job(("lenet",), lambda _p: loaded.capture(prepared), Cost("a pass", 1, 1e-4, 0, "x"))
    answer = scheduler.submit("draw", light)  # estimated light: runs here, at once
    assert answer.done() and not heavy.done()
    assert torch.equal(answer.result().probs, result.probs)
    gate.opened.set()
    assert heavy.wait(WAIT_S) and heavy.result() == "gate"


def test_quick_jobs_have_their_own_line(scheduler: Scheduler) -> None:
    gate, log = Gate(), list[str]()
    scheduler.submit("a", gate.job())
    assert gate.started.wait(WAIT_S)
    quick = logging_job("capture", log)
    ticket = scheduler.submit("b", Job(quick.key, quick.run, lane="quick", cache=False))
    assert ticket.wait(WAIT_S) and log == ["capture"]
    gate.opened.set()


def test_the_cache_is_bounded_in_bytes_least_recently_used_out() -> None:
    cache = BoundedCache(max_bytes=3 * 4000 + 500)
    tensors = {name: torch.zeros(1000) for name in "abcd"}  # 4,000 bytes each
    for name in "abc":
        cache.put(name, tensors[name])
    assert cache.lookup("a") == (True, tensors["a"])  # a is now the most recent
    cache.put("d", tensors["d"])
    assert "b" not in cache and all(k in cache for k in "acd") and cache.bytes <= cache.max_bytes
    cache.put("huge", torch.zeros(10_000))
    assert "huge" not in cache
    whole = torch.zeros(1000)
    assert approximate_bytes((whole, whole[:10], {"x": whole})) < 4000 + 1000  # one storage


def test_a_custom_executor_runs_the_jobs() -> None:
    ran: list[object] = []

    class Recording:
        def spawn(self, loop: object) -> None:
            threading.Thread(target=loop, daemon=True).start()  # type: ignore[arg-type]

        def run(self, job: Job, report: Progress) -> object:
            ran.append(job.key)
            return job.run(report)

    scheduler = Scheduler(executor=Recording(), workers=1, budget=60.0)
    ticket = scheduler.submit("a", logging_job("x", []))
    assert ticket.wait(WAIT_S) and ran == [("log", "x")]


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cost = Cost("work", 100, 1.0, 0, "M")
    monkeypatch.setenv(BUDGET_ENV, "200")
    Scheduler(workers=1).submit("a", Job(("w",), lambda _p: 1, cost)).release()
    monkeypatch.setenv(BUDGET_ENV, "50")
    with pytest.raises(OverBudget, match="over the 50 s a job may take here"):
        Scheduler(workers=1).submit("a", Job(("w2",), lambda _p: 1, cost))
    assert default_scheduler() is default_scheduler()


def test_the_pages_run_a_job_in_line_and_get_its_answer() -> None:
    import sys

    sys.path.insert(0, str(REPO))
    try:
        from pages.common import run_job
    finally:
        sys.path.remove(str(REPO))

    def add(a: int, b: int = 0) -> int:
        return a + b

    assert run_job(Job.call(functools.partial(add, b=2), 1), "Adding") == 3  # no session
    assert run_job(Job.call(add, 4, quick=True), "Adding") == 4  # the quick line
