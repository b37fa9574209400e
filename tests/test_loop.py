"""The one training loop: a step's update by hand, an epoch is its steps, both trainers agree."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models.augment import DEFAULT_AUGMENTATION
from explorer.models.custom import NetSettings, build_net
from explorer.models.digits import limited, shipped_digits, split_digits
from explorer.models.loop import Batches, Trainer
from explorer.models.nets import DigitNet, HarleyNet, LeNet5
from explorer.models.train import Recipe, build_model, train

SIZE, BATCH, SEED = 200, 32, 5


def _by_hand(
    net: DigitNet, smoothing: float = 0.0
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """The first batch's loss and gradients, and the labels, without the library's loop."""
    digits = shipped_digits()
    order = torch.randperm(SIZE, generator=torch.Generator().manual_seed(SEED))[:BATCH]
    images = torch.from_numpy(digits.train_images[:SIZE][order.numpy()]).float() / 255
    labels = torch.from_numpy(digits.train_labels[:SIZE][order.numpy()].astype(np.int64))
    pad = net.input_padding
    x = (F.pad(images[:, None], (pad,) * 4) - MNIST_MEAN) / MNIST_STD
    loss = F.cross_entropy(net(x), labels, label_smoothing=smoothing)
    return loss.detach(), list(torch.autograd.grad(loss, list(net.parameters()))), labels


def _batches() -> Batches:
    digits = shipped_digits()
    return Batches(digits.train_images[:SIZE], digits.train_labels[:SIZE], BATCH, SEED)


@pytest.mark.parametrize("architecture", ["lenet5", "harley"])
def test_one_sgd_step_is_the_hand_computed_update(architecture: str) -> None:
    net = build_net(NetSettings(architecture), seed=0)
    twin = copy.deepcopy(net)
    loss, grads, _ = _by_hand(twin)
    trainer = Trainer(net, torch.optim.SGD(net.parameters(), lr=0.1), _batches())
    seen = trainer.step()
    assert seen.loss == pytest.approx(float(loss), rel=1e-6) and seen.size == BATCH
    for new, old, grad in zip(net.parameters(), twin.parameters(), grads, strict=True):
        torch.testing.assert_close(new, old - 0.1 * grad, rtol=0, atol=3e-8)


def test_one_step_of_the_shipped_recipe_is_adamw_by_hand() -> None:
    """AdamW's first step is ``p·(1 − lr·wd) − lr·g/(|g| + eps)``; one-cycle starts at lr/25."""
    net = build_model("lenet5", seed=0)
    twin = copy.deepcopy(net)
    recipe = Recipe()
    loss, grads, _ = _by_hand(twin, smoothing=recipe.smoothing)
    seen = recipe.trainer(net, _batches(), epochs=3).step()
    assert seen.loss == pytest.approx(float(loss), rel=1e-6)
    lr = recipe.lr / 25
    for new, old, g in zip(net.parameters(), twin.parameters(), grads, strict=True):
        expected = old.double() * (1 - lr * recipe.weight_decay) - lr * g.double() / (
            g.double().abs() + 1e-8
        )
        torch.testing.assert_close(new.double(), expected.detach(), rtol=0, atol=3e-8)


def test_an_epoch_is_its_steps() -> None:
    nets = [build_net(NetSettings(), seed=2) for _ in range(2)]
    by_epoch, by_step = (
        Trainer(net, torch.optim.Adam(net.parameters(), lr=1e-3), _batches()) for net in nets
    )
    epoch = by_epoch.epoch()
    steps = [by_step.step() for _ in range(by_step.batches.per_epoch)]
    assert by_step.batches.per_epoch == 7 and epoch.size == SIZE
    assert epoch.correct == sum(s.correct for s in steps)
    assert epoch.loss == pytest.approx(sum(s.loss * s.size for s in steps) / SIZE)
    for a, b in zip(*(net.parameters() for net in nets), strict=True):
        assert torch.equal(a, b)


def test_the_offline_trainer_is_the_recipes_steps(mnist_npz: Path) -> None:
    result = train("harley", mnist_npz, epochs=1, limit=256, seed=0, progress=False)
    net = build_model("harley", seed=0)
    digits = limited(split_digits(mnist_npz), 256, seed=0)
    batches = Batches(digits.train_images, digits.train_labels, 128, 0, DEFAULT_AUGMENTATION)
    trainer = Recipe().trainer(net, batches, epochs=1)
    for _ in range(batches.per_epoch):
        trainer.step()
    state = net.state_dict()
    assert result.state_dict.keys() == state.keys()
    assert all(torch.equal(result.state_dict[k], state[k]) for k in state)


@pytest.mark.parametrize("net_class", [LeNet5, HarleyNet])
def test_seeded_weights_are_torchs_default_init(net_class: type[DigitNet]) -> None:
    """The shipped nets' weights started from ``torch.manual_seed(0)``: the same numbers."""
    name = "lenet5" if net_class is LeNet5 else "harley"
    state = torch.random.get_rng_state()
    seeded = build_model(name, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        default = net_class()
    for a, b in zip(seeded.parameters(), default.parameters(), strict=True):
        assert torch.equal(a, b)
