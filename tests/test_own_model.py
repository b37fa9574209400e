"""Your own network: a small CNN exported both ways, predicted, inspected, and bad files refused.

Nothing in a refused file may run: the tests plant pickles that would write a marker file.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explorer.cli import main
from explorer.inputs.spec import InputSpec, InputSpecError
from explorer.models import own
from explorer.models.own import (
    OwnModelError,
    check_classifier,
    check_input,
    export_model,
    load_program,
    parse_labels,
    read_program,
)

REPO = Path(__file__).resolve().parents[1]
SHAPE = (3, 16, 16)


class SmallCNN(nn.Module):
    """conv → ReLU → max-pool → conv → ReLU → avg-pool → flatten → linear: 5 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        logits: torch.Tensor = self.fc(torch.flatten(x, 1))
        return logits


class Marker:
    """Unpickling this writes a file: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.path), "ran"))


@pytest.fixture(scope="module")
def model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN().eval()


@pytest.fixture(scope="module")
def files(model: SmallCNN, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("own")
    paths = {"pt2": folder / "small.pt2", "onnx": folder / "small.onnx"}
    for path in paths.values():
        export_model(model, SHAPE, path)
    return paths


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("pic") / "pic.png"
    Image.fromarray(pixels).save(path)
    return path


def expected_probs(model: SmallCNN, picture: Path) -> np.ndarray:
    """The test's own forward pass: the 16×16 picture scaled to 0…1, no normalisation."""
    pixels = np.asarray(Image.open(picture).convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    with torch.no_grad():
        return torch.softmax(model(x), 1)[0].numpy()


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_predict_equals_the_models_own_forward_pass(
    kind: str,
    files: dict[str, Path],
    model: SmallCNN,
    picture: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["predict", str(picture), "--model-file", str(files[kind]), "--top", "5",
                 "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    expected = expected_probs(model, picture)
    got = {t["index"]: t["prob"] for t in record["top"]}
    assert list(got) == list(np.argsort(-expected)[:5])
    for index, prob in got.items():
        assert prob == pytest.approx(float(expected[index]), abs=1e-5)


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_inspect_lists_every_conv_relu_and_pool(
    kind: str, files: dict[str, Path], picture: Path, tmp_path: Path
) -> None:
    out = tmp_path / kind
    assert main(["inspect", str(picture), "--model-file", str(files[kind]), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    kinds = [layer["kind"] for layer in summary["layers"]]
    for kind_name, count in (("conv", 2), ("relu", 2), ("pool", 2), ("linear", 1)):
        assert kinds.count(kind_name) == count, (kind_name, kinds)
    shapes = [tuple(layer["shape"]) for layer in summary["layers"] if layer["kind"] != "softmax"]
    assert shapes[:3] == [(4, 16, 16), (4, 16, 16), (4, 8, 8)]
    assert summary["input_shape"] == list(SHAPE)


def test_the_file_says_its_input_and_labels_name_the_classes(
    files: dict[str, Path], picture: Path
) -> None:
    weights = sum(p.numel() for p in SmallCNN().parameters())
    for path in files.values():
        program = read_program(path.read_bytes(), path.name)
        assert program.input_shape == SHAPE
        # ONNX adds its constants (the flatten's target shape: 2 numbers) as buffers
        assert weights <= program.parameters <= weights + 2
    names = "cat\ndog\n\nbird\nfish\nfrog\n"
    loaded = load_program(files["onnx"].read_bytes(), "small.onnx", labels=names)
    assert loaded.categories == ("cat", "dog", "bird", "fish", "frog")
    with pytest.raises(OwnModelError, match="4 names for 5 classes"):
        parse_labels("a\nb\nc\nd", 5)


def test_a_pickled_model_renamed_pt2_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    buffer = io.BytesIO()
    torch.save({"model": Marker(marker)}, buffer)  # a zip, like a .pt2, holding a pickle
    with pytest.raises(OwnModelError, match=r"not a torch\.export program"):
        read_program(buffer.getvalue(), "model.pt2")
    with pytest.raises(OwnModelError, match=r"not a torch\.export program"):
        read_program(pickle.dumps(Marker(marker)), "model.pt2")
    with pytest.raises(OwnModelError, match="pickled whole model"):
        read_program(buffer.getvalue(), "model.pth")
    assert not marker.exists()


def test_pickles_inside_a_program_may_hold_tensors_only(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    planted = io.BytesIO()
    torch.save(Marker(marker), planted)
    with own.tensors_only_unpickling(), pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(planted.getvalue()), weights_only=False)
    assert not marker.exists()
    tensor = io.BytesIO()
    torch.save(torch.arange(3), tensor)
    with own.tensors_only_unpickling():
        assert torch.equal(
            torch.load(io.BytesIO(tensor.getvalue()), weights_only=False), torch.arange(3)
        )


def test_compiled_code_inside_a_pt2_is_refused(files: dict[str, Path]) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(files["pt2"]) as source, zipfile.ZipFile(data, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        root = source.namelist()[0].split("/", 1)[0]
        target.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    with pytest.raises(OwnModelError, match="compiled code"):
        read_program(data.getvalue(), "model.pt2")


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
def test_truncated_files_are_refused(kind: str, files: dict[str, Path]) -> None:
    data = files[kind].read_bytes()
    with pytest.raises(OwnModelError, match="not a"):
        read_program(data[: len(data) // 3], f"cut.{kind}")


def test_a_graph_with_a_custom_op_is_refused(tmp_path: Path) -> None:
    @torch.library.custom_op("explorer_test::double", mutates_args=())
    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @double.register_fake
    def _(x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    class Custom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = double(x).flatten(1)[:, :5]
            return out

    path = tmp_path / "custom.pt2"
    export_model(Custom(), SHAPE, path)
    with pytest.raises(OwnModelError, match="not one of PyTorch's own operators"):
        read_program(path.read_bytes(), path.name)


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "maps.onnx"
    export_model(nn.Sequential(nn.Conv2d(3, 2, 3)), SHAPE, path)
    with pytest.raises(OwnModelError, match=r"one vector of class scores \(1, K\)"):
        load_program(path.read_bytes(), path.name)


def test_hosting_limits_each_have_a_message(
    files: dict[str, Path], model: SmallCNN, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(own, "MAX_PARAMETERS", 10)
    with pytest.raises(OwnModelError, match="parameters: over this server's 10"):
        read_program(files["onnx"].read_bytes(), "small.onnx")
    with pytest.raises(OwnModelError, match="over this server's 0 s"):
        check_classifier(model, InputSpec(*SHAPE), budget_s=0.0)
    monkeypatch.setattr(own, "MAX_FILE_MB", 0)
    with pytest.raises(OwnModelError, match="over 0 MB"):
        read_program(files["onnx"].read_bytes(), "small.onnx")
    with pytest.raises(OwnModelError, match="does not run on a 1×16×16 input"):
        check_classifier(model, InputSpec(1, 16, 16))


def test_input_settings_are_checked() -> None:
    with pytest.raises(OwnModelError, match="1 or 3 channels"):
        check_input(InputSpec(2, 16, 16))
    with pytest.raises(OwnModelError, match="both the mean and the std"):
        check_input(InputSpec(3, 16, 16, mean=(0.5, 0.5, 0.5)))
    with pytest.raises(InputSpecError, match="need 3 value"):
        InputSpec(3, 16, 16, mean=(0.5,), std=(0.5,)).check()
    for shape in ((3, 28, 28), (1, 64, 64), (1, 28, 32)):
        with pytest.raises(OwnModelError, match="for 1-channel models of 28×28 or 32×32"):
            check_input(InputSpec(*shape, digit=True))


def test_bad_input_settings_are_refused_before_the_sandbox_reads_the_file(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the sandbox was asked to read the file")

    monkeypatch.setattr(own, "run_untrusted", never)
    with pytest.raises(OwnModelError, match="need 3 value"):
        load_program(files["onnx"].read_bytes(), "small.onnx", InputSpec(3, 16, 16, (0.5,), (1.0,)))


def test_shipped_examples_read_as_lenet5() -> None:
    from explorer.models.zoo import load_model

    digit = REPO / "assets" / "digits" / "3_0.png"
    zoo = load_model("lenet5")
    expected = zoo.capture(zoo.prepare(digit), layers=[]).probs
    for name in ("lenet5.pt2", "lenet5.onnx"):
        data = (REPO / "assets" / "models" / "own" / name).read_bytes()
        loaded = load_program(data, name, InputSpec(1, 28, 28, digit=True))
        probs = loaded.capture(loaded.prepare(digit), layers=[]).probs
        torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)


def test_cli_refuses_a_pickle_in_one_line(
    tmp_path: Path, picture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.pt"
    torch.save(SmallCNN(), path)
    assert main(["predict", str(picture), "--model-file", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "torch.export" in err[0]


def test_receptive_fields_of_both_formats_match_the_zoo_model() -> None:
    from explorer.analysis.explain import receptive_field
    from explorer.models.zoo import load_model

    zoo = load_model("lenet5").model
    spec = InputSpec(1, 28, 28, digit=True)
    pairs = [("conv1", "{conv1}"), ("pool1", "max_pool2d"), ("conv2", "{conv2}")]
    names = {"onnx": ("node_conv2d", "node_conv2d_1"), "pt2": ("conv1", "conv2")}
    for kind, (conv1, conv2) in names.items():
        path = REPO / f"assets/models/own/lenet5.{kind}"
        own = load_program(path.read_bytes(), path.name, spec).model
        for zoo_name, own_name in pairs:
            own_name = own_name.format(conv1=conv1, conv2=conv2)
            for y, x in [(0, 0), (3, 2)]:
                assert receptive_field(own, own_name, y, x) == receptive_field(zoo, zoo_name, y, x)


def _rewritten(path: Path, change: Callable[[str], str]) -> bytes:
    """The .pt2 at ``path`` with its graph's JSON text changed by ``change``."""
    data = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(data, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename.endswith("models/model.json"):
                content = change(content.decode()).encode()
            target.writestr(item, content)
    return data.getvalue()


def test_a_shape_expression_that_would_run_code_is_refused_and_never_runs(
    model: SmallCNN, tmp_path: Path
) -> None:
    path = tmp_path / "dynamic.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (torch.zeros(2, *SHAPE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    read_program(path.read_bytes(), "dynamic.pt2")  # a plain dynamic size is fine
    marker = tmp_path / "ran.txt"

    def inject(text: str) -> str:
        symbol = re.search(r'"expr_str": "(Symbol\([^"]*\))"', text)
        assert symbol is not None
        payload = f"(__import__('pathlib').Path({str(marker)!r}).write_text('ran'), {symbol[1]})[1]"
        return text.replace(json.dumps(symbol[1]), json.dumps(payload), 1)

    with pytest.raises(OwnModelError, match="expressions other than plain sizes"):
        read_program(_rewritten(path, inject), "evil.pt2")
    assert not marker.exists()


def test_operators_outside_a_cnn_are_refused() -> None:
    graph = torch.fx.Graph()
    graph.output(graph.call_function(torch.ops.aten.from_file.default, ("/etc/passwd",)))
    with pytest.raises(OwnModelError, match=r"aten\.from_file, which is not an operator of a CNN"):
        own.check_operators(graph)


def test_an_onnx_constant_that_names_a_file_is_refused() -> None:
    import onnx
    from onnx import TensorProto, helper

    constant = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[4])
    constant.data_location = TensorProto.EXTERNAL
    constant.external_data.add(key="location", value="README.md")
    node = helper.make_node("Constant", [], ["c"], value=constant)
    add = helper.make_node("Add", ["x", "c"], ["y"])
    graph = helper.make_graph(
        [node, add],
        "leak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert isinstance(onnx.load_from_string(data), onnx.ModelProto)
    with pytest.raises(OwnModelError, match=r"separate \.onnx\.data file"):
        read_program(data, "leak.onnx")
