"""Experiments: knock-outs against a zeroed deep copy, perturbations against numpy, the page."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis.capture import CaptureResult, LayerOutput, capture
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
from explorer.views.experiment import (
    Pass,
    comparison,
    knockout_pass,
    pass_softmax,
    perturbed_pass,
    plain_capture,
    stage_descriptions,
    stage_figures,
    sweep_points,
)

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


def as_is(loaded: LoadedModel) -> Pass:
    picture = loaded.prepare(DIGIT).display
    return Pass(loaded, picture, plain_capture(loaded, picture), "as is")


def test_an_unchanged_second_pass_is_the_first_and_nothing_moved(lenet: LoadedModel) -> None:
    first = as_is(lenet)
    same = perturbed_pass(first, Perturbation())
    assert same.result is first.result  # no forward pass
    compared = comparison(first, same)
    assert [c.name for c in compared.changes] == first.result.names
    assert all(c.relative_l2 == 0.0 and c.cosine == 1.0 for c in compared.changes)
    assert compared.maps[:3] == ["conv1", "relu1", "pool1"] and compared.same_model
    shifted = perturbed_pass(first, Perturbation(shift=(2, 0)))
    expected = capture(lenet.model, to_input(shifted.picture, *lenet.normalisation))
    np.testing.assert_array_equal(shifted.result.probs.numpy(), expected.probs.numpy())
    points = sweep_points(first, "shift")
    assert [p.value for p in points] == list(map(float, SWEEPABLE["shift"][1]))
    assert points[6].value == 0 and points[6].predicted == int(first.result.probs.argmax())


def test_the_stage_figures_put_the_channels_that_moved_most_first(lenet: LoadedModel) -> None:
    first = as_is(lenet)
    second = knockout_pass(first, Knockout("conv2", (9, 5)))
    assert second.title == "conv2 channels 9, 5 knocked out (zero)"
    a, b, difference = stage_figures(first.result, second.result, "conv2")
    assert a.channels == b.channels == difference.channels
    moved = sorted(a.channels[:2])
    assert moved == [5, 9] and list(a.channels[2:]) == [c for c in range(16) if c not in moved]
    before = first.result["conv2"].numpy()
    y, x = difference.tiling.origin(0)
    h, w = difference.tiling.tile
    tile = difference.tiling.image[y : y + h, x : x + w]
    np.testing.assert_allclose(tile, -before[a.channels[0]], atol=1e-6)  # b − a, b zeroed


def test_the_stage_text_alternatives_say_where_a_b_and_their_difference_peak(
    lenet: LoadedModel,
) -> None:
    first = as_is(lenet)
    second = knockout_pass(first, Knockout("conv2", (9, 5)))
    before, after = first.result["conv2"].numpy(), second.result["conv2"].numpy()
    words = stage_descriptions(first.result, second.result, "conv2")
    shown = (before, after, after - before)
    for text, values, which in zip(words, shown, ("a", "b", "b − a"), strict=True):
        channel, row, col = np.unravel_index(np.argmax(values), values.shape)
        assert text.startswith(f"conv2 ({which}): 16 maps of {before.shape[1]} ×")
        assert text.endswith(f"strongest in channel {channel} at row {row}, column {col}")


def test_big_layers_are_compared_on_one_grid_page_each() -> None:
    def result(seed: int) -> CaptureResult:
        maps = torch.randn(64, 224, 224, generator=torch.Generator().manual_seed(seed))
        layer = LayerOutput("features.0", "conv", "Conv2d", "features.0", maps)
        probs = torch.full((10,), 0.1)
        return CaptureResult(torch.zeros(3, 224, 224), [layer], probs, probs)

    grids = stage_figures(result(0), result(1), "features.0")
    assert [len(g.channels) for g in grids] == [16, 16, 16]  # as the Image page's grid page


def test_a_pass_shows_every_digit_and_the_ten_best_of_1000_classes(lenet: LoadedModel) -> None:
    assert len(pass_softmax(as_is(lenet)).to_dict()["data"][0]["x"]) == 10
    resnet = load_model("resnet18", "untrained")
    photo = resnet.prepare(REPO / "assets" / "photos" / "cat.jpg").display
    shown = Pass(resnet, photo, plain_capture(resnet, photo), "as is")
    bars = pass_softmax(shown).to_dict()["data"][0]
    best = [resnet.categories[i] for i, _ in shown.result.top(10)]
    assert list(bars["x"]) == best


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


def count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count every capture and every sweep the page runs, however it imports them."""
    import explorer.analysis.capture as capture_module
    import explorer.analysis.experiment as analysis
    import explorer.views.experiment as view

    calls = {"capture": 0, "sweep": 0}

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)

        return counted

    capture_fn, sweep_fn = capture_module.capture, analysis.sweep
    for module in (capture_module, view):  # the page's name (before) or the view-model's
        monkeypatch.setattr(module, "capture", counting("capture", capture_fn), raising=False)
    for module in (analysis, view):
        monkeypatch.setattr(module, "sweep", counting("sweep", sweep_fn), raising=False)
    return calls


def test_a_click_on_the_second_pass_runs_only_the_second_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_calls(monkeypatch)
    page = str(REPO / "pages" / "experiment.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    at.selectbox(key="exp_sample_digit").set_value("4 (sample 2)").run()
    assert not at.exception

    def after(change: Callable[[], object]) -> dict[str, int]:
        calls.update(capture=0, sweep=0)
        change()
        assert not at.exception
        return dict(calls)

    # a perturbation's amount: one capture (the second pass), no sweep
    assert after(lambda: at.slider(key="exp_dx").set_value(3).run()) == {"capture": 1, "sweep": 0}
    assert after(lambda: at.slider(key="exp_contrast").set_value(1.5).run()) == {
        "capture": 1,
        "sweep": 0,
    }
    # a knocked-out channel: the knocked-out copy's pass only
    at.segmented_control(key="exp_mode").set_value("Knock out channels").run()
    assert after(lambda: at.multiselect(key="exp_ko_ch_conv1").set_value([1]).run()) == {
        "capture": 1,
        "sweep": 0,
    }
    # the sweep's own setting runs the sweep; back to one already run, nothing
    assert after(lambda: at.selectbox(key="exp_sweep").set_value("blur").run())["sweep"] == 1
    assert after(lambda: at.selectbox(key="exp_sweep").set_value("rotate").run())["sweep"] == 0
    # another session with the same model and input: the first pass and sweep are shared
    other = AppTest.from_file(page, default_timeout=120)
    assert after(lambda: other.run()) == {"capture": 0, "sweep": 0}
    other.selectbox(key="exp_sample_digit").set_value("4 (sample 2)")
    assert after(lambda: other.run()) == {"capture": 0, "sweep": 0}


def test_the_benchmarked_click_runs_the_pages_calls_once(
    lenet: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from explorer.bench.experiment import experiment_click_work

    first = as_is(lenet)
    points = sweep_points(first, "rotate")
    calls = count_calls(monkeypatch)
    assert experiment_click_work(first, Perturbation(shift=(1, 0)), points) > 0
    assert calls == {"capture": 1, "sweep": 0}  # the second pass; the sweep is the cached one


def test_the_first_pass_and_the_sweep_are_shared_by_content_key(lenet: LoadedModel) -> None:
    from explorer.hosting.scheduler import default_scheduler
    from explorer.views.experiment import first_pass_job, plain_pass, sweep_job

    scheduler = default_scheduler()
    prepared = lenet.prepare(DIGIT)
    job = first_pass_job(lenet, prepared)
    assert job.key == ("experiment pass", lenet.cache_key, prepared.sha256)
    result = scheduler.run_here(job)
    assert scheduler.run_here(first_pass_job(lenet, prepared)) is result
    first = plain_pass(lenet, prepared, result, "as is")
    assert first.title == "LeNet-5, as is" and first.picture is prepared.display
    sweep = sweep_job(first, prepared.sha256, "rotate")
    assert sweep.key == ("sweep", lenet.cache_key, prepared.sha256, "rotate")
    assert scheduler.run_here(sweep) is scheduler.run_here(
        sweep_job(first, prepared.sha256, "rotate")
    )


def test_the_comparison_report_is_the_two_passes_measured_by_hand(lenet: LoadedModel) -> None:
    """The command line's report and the page's comparison, against the passes' own tensors."""
    from explorer.views.experiment import comparison_report

    first = as_is(lenet)
    second = knockout_pass(first, Knockout("conv2", (1,)))
    report = comparison_report(first.result, second.result, same_model=True)
    assert set(report) == {"layers"}
    rows = report["layers"]
    names = [layer.name for layer in first.result.layers]
    assert [row["name"] for row in rows] == names and names[-1] == "softmax"
    page = comparison(first, second).changes  # what the Experiment page draws
    for row, change, layer in zip(rows, page, first.result.layers, strict=True):
        a = layer.tensor.double().flatten()
        b = second.result[layer.name].tensor.double().flatten()
        relative, cosine = float((b - a).norm() / a.norm()), float(a @ b / (a.norm() * b.norm()))
        for seen in (row, change._asdict()):
            assert seen["name"] == layer.name and seen["kind"] == layer.kind
            assert seen["relative_l2"] == pytest.approx(relative, abs=1e-12)
            assert seen["cosine"] == pytest.approx(cosine, rel=1e-9)
    by_name = {row["name"]: row for row in rows}
    # nothing before conv2 moved; conv2 lost exactly its channel 1 (‖a₁‖/‖a‖; cosine ‖a − a₁‖/‖a‖)
    assert all(by_name[n]["relative_l2"] == 0 for n in names[: names.index("conv2")])
    conv2 = first.result["conv2"].tensor.double()
    kept = torch.cat([conv2[:1], conv2[2:]])
    assert by_name["conv2"]["relative_l2"] == pytest.approx(float(conv2[1].norm() / conv2.norm()))
    assert by_name["conv2"]["cosine"] == pytest.approx(float(kept.norm() / conv2.norm()))
    p, q = first.result.probs.double(), second.result.probs.double()
    assert by_name["softmax"]["relative_l2"] == pytest.approx(float((q - p).norm() / p.norm()))
    assert by_name["softmax"]["relative_l2"] > 0

    other = comparison_report(first.result, second.result, same_model=False)
    assert set(other) == {"layers", "stages"} and other["layers"] == rows
    for stages, result in zip(other["stages"], (first.result, second.result), strict=True):
        assert [stage["layer"] for stage in stages] == names
        for stage, layer in zip(stages, result.layers, strict=True):
            values = layer.tensor.double()
            assert stage["kind"] == layer.kind
            assert stage["shape"] == "×".join(str(size) for size in values.shape)
            # rounded to 4 decimals (the fraction of zeros to 3)
            assert stage["mean"] == pytest.approx(float(values.mean()), abs=1e-4)
            assert stage["max"] == pytest.approx(float(values.max()), abs=1e-4)
            assert stage["zeros"] == pytest.approx(float((values == 0).double().mean()), abs=1e-3)
    relu2 = [stages[names.index("relu2")]["zeros"] for stages in other["stages"]]
    assert relu2[1] > relu2[0]  # channel 1's 100 units are 0 after the knock-out
