"""The "Why this class?" view-model: class menu, black baseline, overlay figure and cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.attribution import Settings
from explorer.analysis.attribution import attribute as real_attribute
from explorer.figures.colour import colour_scale
from explorer.hosting.scheduler import default_scheduler
from explorer.models.nets import MNIST_MEAN, MNIST_STD, LeNet5
from explorer.models.zoo import load_model
from explorer.views import attribution as view_module
from explorer.views.attribution import black_input, class_choices, overlay_figure, why_view

REPO = Path(__file__).resolve().parents[1]
DIGIT = REPO / "assets" / "digits" / "3_0.png"


def test_class_choices_list_every_class_most_probable_first() -> None:
    loaded = load_model("lenet5")
    result = loaded.capture(loaded.prepare(DIGIT), layers=[])
    choices = class_choices(loaded, result)
    probs = result.probs.reshape(-1).numpy()
    assert list(choices) == list(np.argsort(-probs, kind="stable"))
    assert choices[3].startswith("3 · ") and choices[3].endswith(f"{probs[3]:.1%}")


def test_black_input_is_a_black_picture_normalised_like_the_model() -> None:
    digit = load_model("lenet5")
    prepared = digit.prepare(DIGIT)
    black = black_input(digit, prepared)
    assert black.shape == (1, 1, 1, 1)
    assert float(black) == pytest.approx((0 - MNIST_MEAN) / MNIST_STD)
    # A black pixel of the digit's own tensor has exactly that value.
    assert float(prepared.tensor.min()) == pytest.approx(float(black), abs=1e-6)
    photo = load_model("resnet18", "untrained")
    black = black_input(photo, photo.prepare(REPO / "assets" / "photos" / "grace_hopper.jpg"))
    expected = (-np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(black.reshape(-1).numpy(), expected, rtol=1e-5)


def test_overlay_puts_the_exact_map_over_the_picture() -> None:
    display = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    values = np.linspace(-1, 2, 256, dtype=np.float32).reshape(16, 16)
    scale = colour_scale(values)
    figure = overlay_figure(display, values, scale, 0.4, "t").to_dict()
    picture, heatmap = figure["data"]
    assert picture["type"] == "image" and picture["source"].startswith("data:image/png;base64,")
    assert heatmap["opacity"] == 0.4 and heatmap["zmid"] == 0.0  # negative values: diverging
    assert heatmap["zmin"] == -2.0 and heatmap["zmax"] == 2.0


def test_overlay_resizes_a_map_of_another_size_to_the_picture() -> None:
    display = np.zeros((32, 32, 3), dtype=np.uint8)
    values = np.ones((8, 8), dtype=np.float32)
    figure = overlay_figure(display, values, colour_scale(values), 0.5, "t").to_dict()
    z = figure["data"][1]["z"]
    assert str(z["shape"]).replace(" ", "") == "32,32"


def test_answers_are_cached_by_model_input_and_the_settings_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = load_model("lenet5")
    prepared = loaded.prepare(DIGIT)
    calls: list[Settings] = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[2])  # type: ignore[arg-type]
        return real_attribute(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(view_module, "attribute", counting)
    default_scheduler().cache.clear()
    first = why_view(loaded, prepared, Settings("saliency", 3))
    again = why_view(loaded, prepared, Settings("saliency", 3, steps=99, window=5))  # unused
    assert len(calls) == 1 and again.attribution is first.attribution
    why_view(loaded, prepared, Settings("saliency", 4))
    assert len(calls) == 2
    assert first.before == pytest.approx(
        float(torch.softmax(loaded.model(prepared.tensor), 1)[0, 3])
    )
    assert first.after < first.before  # hiding saliency's top pixels of a clear 3 lowers p(3)


def test_two_uploads_of_the_same_name_never_share_an_answer() -> None:
    import io

    default_scheduler().cache.clear()
    answers = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights = io.BytesIO()
        torch.save(LeNet5().state_dict(), weights)
        upload = io.BytesIO(weights.getvalue())
        upload.name = "weights.pth"
        loaded = load_model("lenet5", upload)
        answers.append(why_view(loaded, loaded.prepare(DIGIT), Settings("saliency", 3)))
    assert answers[0].attribution is not answers[1].attribution
    assert not np.array_equal(answers[0].attribution.values, answers[1].attribution.values)
