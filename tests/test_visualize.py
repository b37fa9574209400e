"""Feature visualisation and top inputs on LeNet-5, against brute force; the CLI; the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.analysis.visualize import (
    VisualizeError,
    channel_activations,
    top_inputs,
    visualize,
)
from explorer.cli import main
from explorer.inputs.spec import MNIST_MEAN, MNIST_STD, digit_spec
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value
from explorer.models.digits import shipped_digits
from explorer.models.zoo import LoadedModel, load_model

REPO = Path(__file__).resolve().parents[1]
DIGIT = ((1, 28, 28), (MNIST_MEAN,), (MNIST_STD,))


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    return load_model("lenet5")


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    pixels = torch.from_numpy(shipped_digits().val_images).float().div(255)[:, None]
    return digit_spec().digit_batch(pixels)


def mean_activation_maps(model: torch.nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """``layer``'s output for ``x``, with a plain forward hook (independent of the library)."""
    seen: list[torch.Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(
        lambda _m, _i, out: seen.append(out.detach())
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


def mean_activation(
    model: torch.nn.Module, layer: str, channel: int, x: torch.Tensor
) -> np.ndarray:
    """The channel's mean activation per input."""
    return mean_activation_maps(model, layer, x)[:, channel].mean(dim=(1, 2)).numpy()


@pytest.mark.parametrize(
    ("layer", "channel"), [("conv1", 0), ("relu1", 4), ("relu2", 3), ("pool2", 7)]
)
def test_the_optimised_input_excites_its_channel_more_than_every_shipped_digit(
    lenet: LoadedModel, digits: torch.Tensor, layer: str, channel: int
) -> None:
    found = visualize(lenet.model, layer, channel, *DIGIT, steps=96)
    own = float(mean_activation(lenet.model, layer, channel, found.input)[0])
    assert own == pytest.approx(found.activation, rel=1e-4, abs=1e-5)
    assert own > mean_activation(lenet.model, layer, channel, digits).max()
    assert found.activation > found.start_activation
    assert found.picture.shape == (28, 28) and found.picture.dtype == np.uint8
    assert not any(m._forward_hooks for m in lenet.model.modules())  # the shared model untouched


def test_the_same_seed_gives_the_same_image_and_another_seed_does_not(lenet: LoadedModel) -> None:
    a = visualize(lenet.model, "relu2", 5, *DIGIT, steps=24, seed=3)
    b = visualize(lenet.model, "relu2", 5, *DIGIT, steps=24, seed=3)
    c = visualize(lenet.model, "relu2", 5, *DIGIT, steps=24, seed=4)
    assert torch.equal(a.input, b.input) and a.history == b.history
    assert not torch.equal(a.input, c.input)


def test_top_inputs_equal_a_brute_force_ranking(lenet: LoadedModel, digits: torch.Tensor) -> None:
    found = top_inputs(lenet.model, "relu2", 3, digits, k=9, batch=128)
    peaks = []
    for i in range(len(digits)):  # one digit at a time, the peak unit found by hand
        maps = mean_activation_maps(lenet.model, "relu2", digits[i : i + 1])[0, 3]
        peaks.append((float(maps.max()), i, divmod(int(maps.argmax()), maps.shape[1])))
    expected = sorted(peaks, key=lambda p: (-p[0], p[1]))[:9]
    assert [f.index for f in found] == [i for _, i, _ in expected]
    assert [f.unit for f in found] == [u for _, _, u in expected]
    np.testing.assert_allclose([f.peak for f in found], [p for p, _, _ in expected], rtol=1e-5)


def test_bad_layers_and_channels_get_a_clear_message(lenet: LoadedModel) -> None:
    with pytest.raises(VisualizeError, match="no layer named 'fc9'"):
        visualize(lenet.model, "fc9", 0, *DIGIT, steps=1)
    with pytest.raises(VisualizeError, match="no map channel 6"):
        visualize(lenet.model, "conv1", 6, *DIGIT, steps=1)
    with pytest.raises(VisualizeError, match="no channels of maps"):
        channel_activations(lenet.model, "fc1", torch.zeros(1, 1, 28, 28))


def test_photo_models_use_the_fourier_parameterisation() -> None:
    resnet = load_model("resnet18", "untrained")
    mean, std = resnet.normalisation
    found = visualize(resnet.model, "layer1", 2, (3, 64, 64), mean, std, steps=4)
    assert found.picture.shape == (64, 64, 3)
    assert found.input.shape == (1, 3, 64, 64)
    pixels = found.input * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0  # a valid picture


def test_cli_writes_the_image_its_array_and_a_summary(tmp_path: Path) -> None:
    assert main(["visualize", "--model", "lenet5", "--layer", "relu2", "--channel", "3",
                 "--steps", "32", "--out", str(tmp_path)]) == 0  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    array = np.load(tmp_path / "image.npy")
    assert array.shape == (1, 28, 28) and array.dtype == np.float32
    lenet = load_model("lenet5")
    measured = mean_activation(lenet.model, "relu2", 3, torch.from_numpy(array)[None])[0]
    assert summary["mean_activation"] == pytest.approx(float(measured), rel=1e-4)
    assert summary["mean_activation"] > summary["mean_activation_start"]
    with Image.open(tmp_path / "image.png") as image:
        assert image.size == (28, 28)


def test_the_draw_pages_channel_card() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "draw.py"), default_timeout=120).run()
    at.session_state["draw_canvas"] = {"drawing": drawing_value(DIGIT_STROKES["7"])}
    at.run()
    at.segmented_control(key="draw_view").set_value("What a channel looks for").run()
    at.selectbox(key="draw_card_layer_lenet5").set_value("conv2").run()
    at.number_input(key="draw_card_channel").set_value(4).run()
    assert not at.exception and not at.warning
    markdown = " ".join(m.value for m in at.markdown)
    assert "Top inputs** among the 1,000 shipped validation digits" in markdown
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert sum(c.startswith("peak ") for c in captions) == 9  # the top nine digits
    charts = [str(c.proto.id) for c in at.get("plotly_chart")]
    assert any("draw_card_filter" in c for c in charts)
    assert any("draw_card_response" in c for c in charts)
    caption_text = " ".join(c.value for c in at.caption)
    assert "after 128 steps" in caption_text


def test_the_image_pages_card_ranks_the_sample_photos_and_visualises_on_request() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=240).run()
    assert not at.exception
    assert not any("Top inputs" in m.value for m in at.markdown)  # only on request
    at.toggle(key="image_card").set_value(True).run()
    markdown = " ".join(m.value for m in at.markdown)
    assert "among the 4 sample photos only (a small set)" in markdown
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert sum(c.startswith("peak ") for c in captions) == 4
    at.button(key="image_card_go").click().run()
    assert not at.exception
    assert not [w for w in at.warning if "Cannot visualise" in w.value]
    caption_text = " ".join(c.value for c in at.caption)
    assert "after 96 steps" in caption_text


def test_a_class_logit_and_a_single_unit_can_be_the_objective(
    lenet: LoadedModel, digits: torch.Tensor
) -> None:
    seven = visualize(lenet.model, "", 7, *DIGIT, steps=128, learning_rate=0.1)
    with torch.no_grad():
        logits = lenet.model(seven.input)[0]
        digit_logits = lenet.model(digits)[:, 7]
    assert seven.activation == pytest.approx(float(logits[7]), rel=1e-4)
    assert float(logits[7]) > float(digit_logits.max())  # beyond every real digit
    assert int(logits.argmax()) == 7
    unit = visualize(lenet.model, "conv2", 1, *DIGIT, steps=48, unit=(3, 4))
    maps = mean_activation_maps(lenet.model, "conv2", unit.input)
    assert unit.activation == pytest.approx(float(maps[0, 1, 3, 4]), rel=1e-4)
    assert float(maps[0, 1, 3, 4]) > float(
        mean_activation_maps(lenet.model, "conv2", digits)[:, 1, 3, 4].max()
    )
    with pytest.raises(VisualizeError, match="no unit"):
        visualize(lenet.model, "conv2", 1, *DIGIT, steps=1, unit=(10, 0))
    with pytest.raises(VisualizeError, match="10 classes"):
        visualize(lenet.model, "", 10, *DIGIT, steps=1)
