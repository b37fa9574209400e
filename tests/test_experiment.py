"""Experiments: knock-outs against a zeroed deep copy, perturbations against numpy, the page."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis.capture import capture
from explorer.analysis.experiment import (
    SWEEPABLE,
    ExperimentError,
    Knockout,
    Perturbation,
    compare,
    knocked_out,
    layer_change,
    perturb,
    sweep,
    to_input,
)
from explorer.cli import main
from explorer.models.zoo import LoadedModel, load_model

REPO = Path(__file__).resolve().parents[1]
DIGIT = REPO / "assets" / "digits" / "7_1.png"


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    return load_model("lenet5")


def checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("mode", ["zero", "filter"])
def test_a_knockout_equals_a_deep_copy_with_those_filters_zeroed(
    lenet: LoadedModel, mode: str
) -> None:
    before = checksum(lenet.model)
    x = lenet.prepare(DIGIT).tensor
    found = capture(knocked_out(lenet.model, Knockout("conv2", (1, 4, 9), mode)), x)
    zeroed = copy.deepcopy(lenet.model)
    conv2 = zeroed.get_submodule("conv2")
    assert isinstance(conv2, torch.nn.Conv2d) and conv2.bias is not None
    with torch.no_grad():
        conv2.weight[[1, 4, 9]] = 0.0
        conv2.bias[[1, 4, 9]] = 0.0
    expected = capture(zeroed, x)
    for layer in expected.layers:
        np.testing.assert_allclose(found[layer.name].numpy(), layer.numpy(), atol=1e-6)
    assert checksum(lenet.model) == before  # the shared model is untouched
    assert not any(m._forward_hooks for m in lenet.model.modules())


def test_a_mean_knockout_replaces_each_channel_by_its_mean(lenet: LoadedModel) -> None:
    x = lenet.prepare(DIGIT).tensor
    plain = capture(lenet.model, x)["conv1"].numpy()
    found = capture(knocked_out(lenet.model, Knockout("conv1", (2,), "mean")), x)["conv1"].numpy()
    np.testing.assert_allclose(found[2], np.full_like(plain[2], plain[2].mean()), rtol=1e-5)
    np.testing.assert_array_equal(found[[0, 1, 3, 4, 5]], plain[[0, 1, 3, 4, 5]])


def test_bad_knockouts_get_a_clear_message(lenet: LoadedModel) -> None:
    with pytest.raises(ExperimentError, match="not a conv layer"):
        knocked_out(lenet.model, Knockout("fc1", (0,)))
    with pytest.raises(ExperimentError, match="has 6 channels: not \\[6\\]"):
        knocked_out(lenet.model, Knockout("conv1", (6,)))
    with pytest.raises(ExperimentError, match="LAYER:CH"):
        Knockout.parse("conv1:a,b")
    assert Knockout.parse("conv2:0, 3,5") == Knockout("conv2", (0, 3, 5))


def test_no_change_gives_zero_difference_everywhere(lenet: LoadedModel) -> None:
    picture = lenet.prepare(DIGIT).display
    same = perturb(picture, Perturbation(shift=(0, 0)))
    np.testing.assert_array_equal(same, picture)
    a = capture(lenet.model, to_input(picture, *lenet.normalisation))
    b = capture(lenet.model, to_input(same, *lenet.normalisation))
    changes = compare(a, b)
    assert len(changes) == len(a.layers)
    assert all(c.relative_l2 == 0.0 and c.cosine == pytest.approx(1.0) for c in changes)


def test_the_per_layer_numbers_equal_numpy(lenet: LoadedModel) -> None:
    picture = lenet.prepare(DIGIT).display
    a = capture(lenet.model, to_input(picture, *lenet.normalisation))
    b = capture(
        lenet.model, to_input(perturb(picture, Perturbation(shift=(1, 0))), *lenet.normalisation)
    )
    for change in compare(a, b):
        x = a[change.name].numpy().astype(np.float64).ravel()
        y = b[change.name].numpy().astype(np.float64).ravel()
        assert change.relative_l2 == pytest.approx(np.linalg.norm(y - x) / np.linalg.norm(x))
        assert change.cosine == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
    assert layer_change(np.zeros(3), np.zeros(3)) == (0.0, 1.0)
    assert layer_change(np.zeros(3), np.ones(3))[1] == 0.0


def test_perturbations_against_numpy() -> None:
    picture = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    shifted = perturb(picture, Perturbation(shift=(2, -1)))
    expected = np.zeros_like(picture)
    expected[:-1, 2:] = picture[1:, :-2]  # right by 2, up by 1; black comes in
    np.testing.assert_array_equal(shifted, expected)
    np.testing.assert_array_equal(perturb(picture, Perturbation(rotate=90)), np.rot90(picture))
    square = perturb(picture, Perturbation(occlude=(3, 4, 5)))
    assert (square[3:8, 4:9] == 0).all()
    np.testing.assert_array_equal(
        np.delete(square, range(4, 9), axis=1)[3:8], np.delete(picture, range(4, 9), axis=1)[3:8]
    )
    bright = perturb(picture, Perturbation(brightness=0.1))
    expected_bright = np.clip((picture / 255 + 0.1) * 255, 0, 255)
    np.testing.assert_allclose(bright, expected_bright, atol=0.51)  # rounded to whole levels
    noisy = perturb(picture, Perturbation(noise=0.2, seed=3))
    np.testing.assert_array_equal(noisy, perturb(picture, Perturbation(noise=0.2, seed=3)))
    assert not np.array_equal(noisy, picture)


def test_a_sweep_predicts_each_input_as_a_plain_forward_pass(lenet: LoadedModel) -> None:
    picture = lenet.prepare(DIGIT).display
    values = SWEEPABLE["rotate"][1]
    points = sweep(lenet.model, picture, Perturbation(), "rotate", values, *lenet.normalisation, 7)
    assert [p.value for p in points] == list(map(float, values))
    for point in points:
        x = to_input(perturb(picture, Perturbation(rotate=point.value)), *lenet.normalisation)
        with torch.no_grad():
            probs = torch.softmax(lenet.model(x), 1)[0]
        assert point.predicted == int(probs.argmax())
        assert point.probability == pytest.approx(float(probs.max()), abs=1e-5)
        assert point.original_probability == pytest.approx(float(probs[7]), abs=1e-5)
    assert points[len(points) // 2].predicted == 7  # 0°: the digit itself


def test_cli_compare_prints_each_layer_and_both_top5(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", str(DIGIT), "--model", "lenet5", "--knockout", "conv2:0,3", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    names = [row["name"] for row in report["layers"]]
    assert names[:4] == ["conv1", "relu1", "pool1", "conv2"]
    first = {row["name"]: row for row in report["layers"]}
    assert first["conv1"]["relative_l2"] == 0.0 and first["conv2"]["relative_l2"] > 0
    assert len(report["top5"]) == 2 and all(len(top) == 5 for top in report["top5"])
    assert main(["compare", str(DIGIT), "--model", "lenet5", "--knockout", "conv9:0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a conv layer" in err[0]


def test_the_experiment_page() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "experiment.py"), default_timeout=120).run()
    assert not at.exception
    at.slider(key="exp_dx").set_value(3).run()
    assert not at.exception
    charts = [str(c.proto.id) for c in at.get("plotly_chart")]
    assert any("exp_changes" in c for c in charts) and any("exp_sweep_chart" in c for c in charts)
    assert [m.value for m in at.markdown][:2] == ["**LeNet-5, as is**", "**perturbed**"]
    at.segmented_control(key="exp_mode").set_value("Knock out channels").run()
    at.multiselect(key="exp_ko_ch_conv1").set_value([0, 2]).run()
    assert not at.exception
    assert "**conv1 channels 0, 2 knocked out (zero)**" in [m.value for m in at.markdown]
    at.segmented_control(key="exp_mode").set_value("Two digits").run()
    at.selectbox(key="exp_sample2").set_value("3 (sample 1)").run()
    assert not at.exception
    assert "**LeNet-5, 3 (sample 1)**" in [m.value for m in at.markdown]
    at.segmented_control(key="exp_mode").set_value("Two models").run()
    assert not at.exception
    titles = [m.value for m in at.markdown]
    assert "**Harley's MNIST net, as is**" in titles


def test_two_imagenet_networks_compare_their_softmax_and_stages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = REPO / "assets" / "photos" / "cat.jpg"
    argv = ["compare", str(photo), "--model", "resnet18", "--weights", "untrained",
            "--model2", "vgg11", "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["name"] for row in report["layers"]] == ["softmax"]  # the one shared shape
    first, second = report["stages"]
    assert first[0]["layer"] == "conv1" and second[0]["layer"] == "features.0"
    assert len(report["top5"][1]) == 5
    at = AppTest.from_file(str(REPO / "pages" / "experiment.py"), default_timeout=240).run()
    at.selectbox(key="exp_model").set_value("resnet18").run()
    at.segmented_control(key="exp_mode").set_value("Two models").run()
    at.selectbox(key="exp_model2").set_value("vgg11").run()
    assert not at.exception
    assert len(at.dataframe) == 2  # each network's stages


def test_the_knockout_menu_lists_conv_layers_only() -> None:
    at = AppTest.from_file(str(REPO / "pages" / "experiment.py"), default_timeout=240).run()
    at.selectbox(key="exp_model").set_value("mobilenet_v3_small").run()
    at.segmented_control(key="exp_mode").set_value("Knock out channels").run()
    assert not at.exception
    model = load_model("mobilenet_v3_small", "untrained").model
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert at.selectbox(key="exp_ko_layer_mobilenet_v3_small").options == convs
