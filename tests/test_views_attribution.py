"""The "Why this class?" view-model: class menu, black baseline, overlay figure and cache."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.attribution import Settings
from explorer.analysis.attribution import attribute as real_attribute
from explorer.figures.colour import colour_scale
from explorer.hosting.scheduler import default_scheduler
from explorer.inputs.spec import MNIST_MEAN, MNIST_STD
from explorer.models.nets import LeNet5
from explorer.models.zoo import load_model
from explorer.views import attribution as view_module
from explorer.views.attribution import black_input, class_choices, overlay_figure, why_view

REPO = Path(__file__).resolve().parents[1]
DIGIT = REPO / "assets" / "digits" / "3_0.png"


def decoded(z: dict[str, str]) -> np.ndarray:
    """A heatmap's ``z`` from plotly's base64 typed array (``{"dtype", "bdata", "shape"}``)."""
    raw = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
    return raw.reshape([int(n) for n in str(z["shape"]).split(",")])


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
    np.testing.assert_array_equal(decoded(heatmap["z"]), values)
    assert heatmap["opacity"] == 0.4 and heatmap["zmid"] == 0.0  # negative values: diverging
    assert heatmap["zmin"] == -2.0 and heatmap["zmax"] == 2.0


def bilinear_1d(size_in: int, size_out: int) -> np.ndarray:
    """The ``(size_out, size_in)`` matrix of 1-D bilinear resizing, pixel centres aligned."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        src = min(max((i + 0.5) * size_in / size_out - 0.5, 0.0), size_in - 1)
        low = int(np.floor(src))
        high = min(low + 1, size_in - 1)
        matrix[i, low] += 1 - (src - low)
        matrix[i, high] += src - low
    return matrix


def test_overlay_resizes_a_map_of_another_size_to_the_picture() -> None:
    display = np.zeros((32, 24, 3), dtype=np.uint8)
    values = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    figure = overlay_figure(display, values, colour_scale(values), 0.5, "t").to_dict()
    expected = bilinear_1d(8, 32) @ values.astype(np.float64) @ bilinear_1d(6, 24).T
    np.testing.assert_allclose(decoded(figure["data"][1]["z"]), expected, rtol=1e-5, atol=1e-6)


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


def test_one_definition_sets_the_defaults_of_the_settings_and_the_command_line() -> None:
    from explorer.analysis.attribution import METHOD_SETTINGS
    from explorer.cli import ATTRIBUTE_OPTIONS, build_parser

    # The defaults written out here, not read from KNOBS (which both are built from): a
    # changed default, or a page or command line that stops reading it, fails this test.
    expected = {"steps": 32, "baseline": "black", "samples": 16, "noise": 0.15, "window": 32,
                "stride": 16}  # fmt: skip
    settings = Settings("occlusion", 0)
    assert {name: getattr(settings, name) for name in expected} == expected
    assert settings.layer is None
    args = build_parser().parse_args(["attribute", "x.png", "--model", "lenet5", "--method",
                                      "occlusion", "--out", "o"])  # fmt: skip
    assert set(ATTRIBUTE_OPTIONS) == {"steps", "baseline", "samples", "window", "stride"}
    assert {name: getattr(args, name) for name in ATTRIBUTE_OPTIONS} == {
        name: expected[name] for name in ATTRIBUTE_OPTIONS
    }
    assert args.layer is None and args.target is None
    changed = Settings("smoothgrad", 0, steps=8, samples=4, noise=0.3, window=3, layer="conv1")
    assert changed.used() == Settings("smoothgrad", 0, samples=4, noise=0.3)
    assert set(METHOD_SETTINGS["smoothgrad"]) == {"samples", "noise"}


def test_occlusion_starts_from_the_inputs_size_without_overlap() -> None:
    from explorer.analysis.attribution import KNOBS, start_value

    assert start_value("window", 28, {}) == 7  # a quarter of a digit
    assert start_value("window", 224, {}) == 32  # at most the default
    assert start_value("window", 2, {}) == 1
    assert start_value("stride", 224, {"window": 9}) == 9  # the window: no overlap
    assert start_value("steps", 224, {}) == KNOBS["steps"].default
    assert KNOBS["window"].bounds(28) == (1, 28) and KNOBS["steps"].bounds(28) == (8, 128)
