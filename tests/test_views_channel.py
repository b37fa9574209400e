"""The channel card's view-model: its visualisation job uses every setting it is keyed by."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.analysis.visualize import Visualization, visualize
from explorer.hosting.scheduler import default_scheduler
from explorer.models.zoo import LoadedModel, load_model
from explorer.views.cache import forget_shared, is_shared, shared
from explorer.views.channel import top_set, visualization_job

REPO = Path(__file__).resolve().parents[1]
DIGIT = REPO / "assets" / "digits" / "7_1.png"


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    return load_model("lenet5")


def run(loaded: LoadedModel, rate: float) -> Visualization:
    result = loaded.capture(loaded.prepare(DIGIT))
    job = visualization_job(loaded, result, "conv2", 3, steps=6, learning_rate=rate)
    found: Visualization = default_scheduler().run_here(job)
    return found


def test_the_learning_rate_reaches_the_visualisation(lenet: LoadedModel) -> None:
    forget_shared()
    slow, fast = run(lenet, 0.01), run(lenet, 0.2)
    assert not torch.equal(slow.input, fast.input)  # an ignored rate gives the same input
    mean, std = lenet.normalisation
    expected = visualize(lenet.model, "conv2", 3, lenet.spec.input_size, mean, std, 6, 0.2)
    torch.testing.assert_close(fast.input, expected.input)
    assert expected.activation == pytest.approx(fast.activation)


def test_answers_are_shared_by_their_content_key(lenet: LoadedModel) -> None:
    forget_shared()
    made: list[str] = []

    def make(answer: str) -> str:
        made.append(answer)
        return answer

    key = ("test", lenet.cache_key, "input sha256", 1)
    assert shared(key, lambda: make("answer")) == "answer"
    assert shared(key, lambda: make("other")) == "answer" and made == ["answer"]
    assert is_shared(key)
    assert top_set(lenet) is top_set(lenet) and is_shared(("set", lenet.cache_key))
    forget_shared()
    assert not is_shared(key)
