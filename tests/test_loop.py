"""The one training loop: a step's update by hand, an epoch is its steps, both trainers agree."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models.augment import DEFAULT_AUGMENTATION, augment
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


def test_the_offline_trainer_is_a_plain_torch_loop(mnist_npz: Path) -> None:
    """``train()`` against the loop written out here with plain torch, not the library's.

    The shipped recipe's numbers are literals here (AdamW, peak lr 3e-3, weight decay 0.05,
    one-cycle with 15 % warm-up, label smoothing 0.1). Only the data (the split, the subset)
    and the distortions (``augment``, with the one seeded generator that also shuffles) are the
    library's: they are what is fed, not how it trains.
    """
    epochs, limit, batch, seed = 2, 256, 64, 0
    result = train(
        "harley", mnist_npz, epochs=epochs, limit=limit, seed=seed, batch_size=batch,
        progress=False,
    )  # fmt: skip
    digits = limited(split_digits(mnist_npz), limit, seed=seed)
    images = torch.from_numpy(digits.train_images).unsqueeze(1)
    labels = torch.from_numpy(digits.train_labels.astype(np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = HarleyNet()
    steps = epochs * -(-len(labels) // batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=3e-3, total_steps=steps, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch):
            chosen = order[start : start + batch]
            pixels = augment(images[chosen].float() / 255, generator, DEFAULT_AUGMENTATION)
            x = (F.pad(pixels, (2, 2, 2, 2)) - MNIST_MEAN) / MNIST_STD  # Harley's 32×32
            loss = F.cross_entropy(net(x), labels[chosen], label_smoothing=0.1)
            optimiser.zero_grad()
            torch.autograd.backward(loss)
            optimiser.step()
            schedule.step()
    state = net.state_dict()
    assert steps == 8 and result.state_dict.keys() == state.keys()
    for name, value in state.items():
        assert torch.allclose(result.state_dict[name], value, rtol=1e-5, atol=1e-6), name


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
