"""Live training: it learns, it is reproducible, runs keep their own models, Stop stops."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from explorer.assets import ASSETS_DIR
from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models import live
from explorer.models.custom import NetSettings, build_net
from explorer.models.digits import shipped_digits
from explorer.models.live import (
    Progress,
    TrainingRun,
    TrainSettings,
    as_loaded_model,
    live_trainer,
)
from explorer.models.nets import HarleyNet, LeNet5

SMALL = TrainSettings(epochs=1, train_size=2000, batch_size=64)


def finish(run: TrainingRun, timeout: float = 120.0) -> Progress:
    run.start()
    deadline = time.monotonic() + timeout
    while run.alive and time.monotonic() < deadline:
        run.progress()  # the page's heartbeat
        time.sleep(0.05)
    assert not run.alive
    return run.progress()


def test_a_small_run_learns_and_writes_its_card() -> None:
    run = TrainingRun(SMALL)
    progress = finish(run)
    assert progress.status == "done" and progress.step == progress.total_steps == 32
    points = progress.points
    assert [p.step for p in points] == [25, 32]
    assert points[-1].train_loss < np.log(10)  # better than guessing
    assert points[-1].val_accuracy > 0.5
    assert progress.confusion is not None and progress.confusion.sum() == 1000
    assert np.trace(progress.confusion) == round(points[-1].val_accuracy * 1000)
    assert len(progress.filters) == 2 and progress.filters[0].shape == (6, 1, 5, 5)
    card = run.card()
    assert card["val_accuracy"] == round(points[-1].val_accuracy, 4)
    assert card["settings"]["epochs"] == 1 and card["steps"] == 32
    # the loss falls: the second half of a run's steps scores below the first
    run2 = TrainingRun(TrainSettings(epochs=2, train_size=2000))
    curve = [p.train_loss for p in finish(run2).points]
    assert curve[-1] < curve[0]


def test_mistakes_and_confusion_agree_with_the_model() -> None:
    run = TrainingRun(SMALL)
    progress = finish(run)
    digits = shipped_digits()
    model = run.model()
    with torch.no_grad():
        pixels = torch.from_numpy(digits.val_images).float().div(255)[:, None]
        predicted = model((pixels - MNIST_MEAN) / MNIST_STD).argmax(1).numpy()
    wrong = int((predicted != digits.val_labels).sum())
    assert progress.confusion is not None and wrong == 1000 - np.trace(progress.confusion)
    for index, true, guess, _prob in progress.mistakes:
        assert digits.val_labels[index] == true and predicted[index] == guess != true


def test_the_same_seed_gives_the_same_curves_and_another_seed_does_not() -> None:
    first = finish(TrainingRun(SMALL)).points
    again = finish(TrainingRun(SMALL)).points
    other = finish(TrainingRun(TrainSettings(epochs=1, train_size=2000, seed=1))).points
    assert [p.train_loss for p in first] == [p.train_loss for p in again]
    assert [p.val_accuracy for p in first] == [p.val_accuracy for p in again]
    assert [p.train_loss for p in first] != [p.train_loss for p in other]


def test_two_runs_at_once_keep_their_own_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(live.SLOTS_ENV, "2")
    live.training_slots.cache_clear()
    try:
        a = TrainingRun(SMALL)
        b = TrainingRun(TrainSettings(epochs=1, train_size=2000, seed=7))
        a.start()
        b.start()
        pa, pb = finish(a), finish(b)
    finally:
        live.training_slots.cache_clear()
    alone_a = finish(TrainingRun(SMALL)).points
    alone_b = finish(TrainingRun(TrainSettings(epochs=1, train_size=2000, seed=7))).points
    assert [p.train_loss for p in pa.points] == [p.train_loss for p in alone_a]
    assert [p.train_loss for p in pb.points] == [p.train_loss for p in alone_b]
    wa, wb = a.model().state_dict(), b.model().state_dict()
    assert not torch.equal(wa["conv1.weight"], wb["conv1.weight"])


def test_stop_really_stops_and_resume_goes_on_where_it_stopped() -> None:
    long = TrainSettings(epochs=20, train_size=7000)
    run = TrainingRun(long)
    run.start()
    while run.progress().step < 30:
        time.sleep(0.02)
    run.stop()
    assert not run.alive
    assert not [t for t in threading.enumerate() if t.name == f"training-{run.id}"]
    stopped = run.progress()
    assert stopped.status == "stopped"
    assert stopped.points[-1].step == stopped.step  # the card describes the weights as they are
    time.sleep(0.3)
    assert run.progress().step == stopped.step  # nothing trains any more
    run.start()
    while run.progress().step < stopped.step + 30:
        time.sleep(0.02)
    run.stop()
    assert run.progress().step > stopped.step


def test_a_closed_page_stops_its_run() -> None:
    now = [0.0]
    run = TrainingRun(TrainSettings(epochs=20), clock=lambda: now[0])
    run.start()
    while run.progress().step < 5:
        time.sleep(0.01)
    now[0] += live.HEARTBEAT_S + 1  # no page has asked for a while
    deadline = time.monotonic() + 10
    while run.alive and time.monotonic() < deadline:  # `alive` does not count as a page asking
        time.sleep(0.01)
    assert not run.alive
    stopped = run.progress()
    assert stopped.status == "stopped" and "closed" in stopped.message


def test_runs_beyond_the_servers_cap_wait_in_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(live.SLOTS_ENV, "1")
    live.training_slots.cache_clear()
    try:
        first = TrainingRun(TrainSettings(epochs=20))
        second = TrainingRun(SMALL)
        first.start()
        while first.progress().status != "running":
            time.sleep(0.01)
        second.start()
        time.sleep(0.6)
        waiting = second.progress()
        assert waiting.status == "queued" and "number 1 in line" in waiting.message
        first.stop()
        assert finish(second).status == "done"
    finally:
        live.training_slots.cache_clear()


def test_the_time_budget_ends_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(live.MAX_SECONDS_ENV, "0")
    progress = finish(TrainingRun(SMALL))
    assert progress.status == "done" and "budget" in progress.message and progress.step == 0


def test_the_trained_model_runs_on_the_pages_like_any_digit_model() -> None:
    run = TrainingRun(SMALL)
    finish(run)
    loaded = as_loaded_model(run)
    assert loaded.spec.family == "digit" and loaded.categories[3] == "3"
    result = loaded.capture(torch.zeros(1, 1, 28, 28))
    assert [layer.kind for layer in result.layers[:3]] == ["conv", "relu", "pool"]
    assert result.names[:3] == ["conv1", "relu1", "pool1"] and "fc3" in result.names
    assert loaded.cache_key != as_loaded_model(TrainingRun(SMALL)).cache_key  # step 0 vs 32
    state = torch.load(__import__("io").BytesIO(run.state_dict_bytes()), weights_only=True)
    torch.testing.assert_close(state["conv1.weight"], run.model().state_dict()["conv1.weight"])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("architecture", ["lenet5", "harley", "tiny"])
def test_every_architecture_builds_for_its_input(architecture: str, activation: str) -> None:
    side = 32 if architecture == "harley" else 28
    for kernel, pooling in ((5, "max"), (3, "avg")):
        net = build_net(NetSettings(architecture, (3, 5), kernel, pooling, activation), seed=0)
        assert net.input_size == (1, side, side)
        assert net(torch.zeros(2, 1, side, side)).shape == (2, 10)
        assert f"{activation}1" in dict(net.named_children())
    a = build_net(NetSettings(architecture), seed=3)
    b = build_net(NetSettings(architecture), seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(("architecture", "shipped"), [("lenet5", LeNet5), ("harley", HarleyNet)])
def test_the_train_pages_nets_are_the_shipped_nets(
    architecture: str, shipped: type[torch.nn.Module]
) -> None:
    net = build_net(NetSettings(architecture), seed=0)
    assert type(net) is shipped
    assert [n for n, _ in net.named_modules()] == [n for n, _ in shipped().named_modules()]
    weights = torch.load(ASSETS_DIR / "models" / f"{architecture}.pth", weights_only=True)
    net.load_state_dict(weights, strict=True)  # the shipped weights fit the Train page's net


def test_a_live_run_trains_what_its_trainer_trains_epoch_by_epoch() -> None:
    """The run's thread (steps, evaluations, locks) changes nothing the loop would not."""
    settings = TrainSettings(
        net=NetSettings("harley", kernel=3, activation="tanh"),
        optimiser="sgd",
        batch_size=64,
        epochs=2,
        augmentation=True,
        train_size=300,
        seed=3,
    )
    run = TrainingRun(settings)
    assert finish(run).step == 10 and run.input_size == (1, 32, 32)
    trainer = live_trainer(settings, shipped_digits())
    for _ in range(settings.epochs):
        trainer.epoch()
    expected, actual = trainer.net.state_dict(), run.model().state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    loaded = as_loaded_model(run)
    assert loaded.spec.input_size == (1, 32, 32)
    assert loaded.capture(torch.zeros(1, 1, 32, 32)).names[:3] == ["conv1", "tanh1", "pool1"]


@pytest.mark.slow
def test_the_default_run_reaches_95_percent() -> None:
    progress = finish(TrainingRun(TrainSettings()), timeout=300)
    assert progress.status == "done"
    assert progress.points[-1].val_accuracy > 0.95
    losses = [p.val_loss for p in progress.points]
    assert losses[-1] < losses[0]
