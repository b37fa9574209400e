"""The command line: models, predict, inspect, train; one error line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.cli import main
from explorer.models.nets import LeNet5
from explorer.models.zoo import load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, int]]:
    """Four shipped gallery digits (real MNIST digits the model never trained on)."""
    gallery = sorted((REPO / "assets" / "digits").glob("*.png"))
    assert gallery, "assets/digits/ must ship sample digits"
    picked = [p for p in gallery if p.stem.endswith("_0")][:4]
    return [(p, int(p.stem.split("_")[0])) for p in picked]


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} >= {"lenet5", "harley", "resnet18", "googlenet", "zfnet"}
    lenet = next(row for row in rows if row["name"] == "lenet5")
    assert lenet["input_size"] == [1, 28, 28]


def test_predict_json_one_line_per_image_and_errors_do_not_stop_the_rest(
    digit_files: list[tuple[Path, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    files = [str(digit_files[0][0]), str(bad), *(str(p) for p, _ in digit_files[1:])]
    status = main(["predict", *files, "--model", "lenet5", "--json", "--top", "3"])
    captured = capsys.readouterr()
    assert status == 1
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["file"] for line in lines] == files
    assert "error" in lines[1] and "not an image" in lines[1]["error"]
    assert captured.err.count("error:") == 1 and "Traceback" not in captured.err
    good = [line for line in lines if "error" not in line]
    assert len(good) == len(digit_files)
    loaded = load_model("lenet5")
    for line, (path, label) in zip(good, digit_files, strict=True):
        assert line["model"] == "lenet5" and line["weights"] == "pretrained"
        assert line["device"] == "cpu"
        assert len(line["top"]) == 3
        assert line["top"][0]["label"] == str(label)
        probs = [t["prob"] for t in line["top"]]
        assert probs == sorted(probs, reverse=True)
        # the JSON numbers are the model's softmax for that file
        expected = loaded.capture(loaded.prepare(path)).probs
        assert line["top"][0]["prob"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_inspect_writes_summary_npz_and_pngs(
    digit_files: list[tuple[Path, int]], tmp_path: Path
) -> None:
    path, label = digit_files[0]
    out = tmp_path / "inspect"
    assert main(["inspect", str(path), "--model", "lenet5", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "lenet5" and summary["weights"] == "pretrained"
    assert summary["top"][0]["label"] == str(label)
    names = [layer["name"] for layer in summary["layers"]]
    assert names[:3] == ["conv1", "relu1", "pool1"] and names[-1] == "softmax"
    arrays = np.load(out / "activations.npz")
    for layer in summary["layers"]:
        values = arrays[layer["name"]]
        assert list(values.shape) == layer["shape"]
        assert layer["min"] == pytest.approx(float(values.min()), abs=1e-6)
        assert layer["max"] == pytest.approx(float(values.max()), abs=1e-6)
        assert layer["mean"] == pytest.approx(float(values.mean()), abs=1e-5)
    # the saved conv1 equals conv1 recomputed from the saved input and the model's weights
    model = load_model("lenet5").model
    assert isinstance(model, LeNet5)
    recomputed = torch.nn.functional.conv2d(
        torch.from_numpy(arrays["input"])[None], model.conv1.weight, model.conv1.bias, padding=2
    )[0]
    np.testing.assert_allclose(arrays["conv1"], recomputed.numpy(), atol=1e-5)
    layer_pngs = sorted((out / "layers").glob("*.png"))
    assert len(layer_pngs) == len(names) - 1  # every layer but the softmax bars
    assert sorted(p.name for p in (out / "filters").glob("*.png")) == ["conv1.png", "conv2.png"]
    for png in [*layer_pngs, out / "softmax.png"]:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 200


@pytest.mark.parametrize("given", [["--mean", "0.5"], ["--std", "0.3"]])
def test_a_mean_without_a_std_is_one_line(
    given: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    model = REPO / "assets" / "models" / "own" / "lenet5.pt2"
    image = REPO / "assets" / "digits" / "3_0.png"
    assert main(["predict", "--model-file", str(model), str(image), *given]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: give both the mean and the std, or neither"]


def test_inspect_bad_image_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["inspect", str(bad), "--model", "lenet5", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_train_bad_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, pictures=np.zeros((3, 28, 28)))
    assert main(["train", "--model", "lenet5", "--data", str(bad), "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_module_entry_point_runs_in_a_fresh_process(digit_files: list[tuple[Path, int]]) -> None:
    path, label = digit_files[1]
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "predict", str(path), "--model", "harley", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["model"] == "harley" and record["top"][0]["label"] == str(label)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "explorer",
            "predict",
            "missing.png",
            "--model",
            "lenet5",
            "--device",
            "tpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "error: unknown device 'tpu': choose one of auto, cpu, cuda, mps"
    ]


def test_output_piped_into_head_ends_quietly() -> None:
    """`predict … | head -1`: the reader leaves early; no "Broken pipe" error, exit 0."""
    # ~1,200 lines: more than the pipe and stdout buffers hold, so writes fail mid-run
    images = [str(p) for p in sorted((REPO / "assets" / "digits").glob("*.png"))] * 40
    command = [sys.executable, "-m", "explorer", "predict", *images, "--model", "lenet5"]
    producer = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None and producer.stderr is not None
    first = producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does after its line
    errors = producer.stderr.read().decode()
    assert producer.wait(timeout=120) == 0, errors
    assert first.decode().startswith(images[0])
    assert "Broken pipe" not in errors and "Traceback" not in errors
