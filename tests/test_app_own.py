"""The Image page's "Your model" in AppTest: shipped examples, an upload, a refused file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.models.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "models" / "own"


def own_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=180).run()
    return at.selectbox(key="image_model").set_value("own").run()


def layer_box(at: AppTest) -> list[str]:
    box = next(s for s in at.selectbox if s.key and s.key.startswith("image_layer_own"))
    return [str(option) for option in box.options]


@pytest.mark.parametrize(
    ("example", "first", "count"),
    [
        ("LeNet-5 as a torch.export program (.pt2)", "0 · conv1 · conv · 6×28×28", 13),
        # ONNX writes the flatten as a Reshape, which is plumbing, not a layer
        ("LeNet-5 as ONNX (.onnx)", "0 · node_conv2d · conv · 6×28×28", 12),
    ],
)
def test_a_shipped_example_runs_like_the_zoos_lenet5(example: str, first: str, count: int) -> None:
    at = own_page()
    at.radio(key="image_own_source").set_value(example).run()
    assert not at.exception and not at.error
    options = layer_box(at)
    assert options[0] == first and len(options) == count
    assert "The file says its input is 1×28×28." in [c.value for c in at.caption]
    # the top-5 table: the same classes and probabilities as the zoo's LeNet-5 on the sample
    top5 = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    zoo = load_model("lenet5")
    sample = str(at.selectbox(key="image_sample_digit").value)
    from explorer.inputs.samples import digit_samples

    result = zoo.capture(zoo.prepare(digit_samples()[sample]), layers=[])
    expected = [zoo.categories[i] for i, _ in result.top(5)]
    assert list(top5["class"]) == expected
    assert float(top5["probability"][0]) == pytest.approx(result.top(1)[0][1], abs=1e-4)


def test_an_uploaded_pt2_shows_its_layers(tmp_path: Path) -> None:
    from explorer.models.own import export_model

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 15 * 15, 3),
    )
    path = tmp_path / "mine.pt2"
    export_model(net, (3, 32, 32), path)
    at = own_page()
    at.radio(key="image_own_source").set_value("Upload a file").run()
    at.file_uploader(key="image_own_upload").upload(
        "mine.pt2", path.read_bytes(), "application/zip"
    )
    at.run()
    assert not at.exception and not at.error
    kinds = [option.split(" · ")[2] for option in layer_box(at)]
    assert kinds == ["conv", "relu", "pool", "flatten", "linear", "softmax"]
    table = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert list(table["rank"]) == [1, 2, 3]  # three classes, named by index


def test_a_renamed_pickle_gets_a_message_and_the_page_stays_up(tmp_path: Path) -> None:
    at = own_page()
    at.radio(key="image_own_source").set_value("Upload a file").run()
    path = tmp_path / "model.pt2"
    torch.save(torch.nn.Linear(2, 2), path)
    at.file_uploader(key="image_own_upload").upload(
        "model.pt2", path.read_bytes(), "application/zip"
    )
    at.run()
    assert not at.exception
    assert any("That model cannot be used: not a torch.export program" in e.value for e in at.error)
    at.selectbox(key="image_model").set_value("resnet18").run()  # and the zoo still works
    assert not at.exception and not at.error
