"""Stage captions and formulas carry this layer's real numbers."""

from __future__ import annotations

import torch
from torch import nn

from explorer.analysis.capture import capture
from explorer.analysis.geometry import output_size
from explorer.models.nets import LeNet5
from explorer.views.captions import describe_stage


def test_output_size_formula_matches_torch() -> None:
    for size, kernel, stride, padding, dilation in [
        (32, 3, 1, 1, 1), (5, 3, 1, 0, 1), (224, 7, 2, 1, 1), (110, 3, 2, 1, 1), (28, 5, 1, 2, 1),
        (17, 3, 3, 0, 2),
    ]:  # fmt: skip
        conv = nn.Conv2d(1, 1, kernel, stride, padding, dilation)
        out = conv(torch.zeros(1, 1, size, size)).shape[-1]
        assert output_size(size, kernel, stride, padding, dilation) == out


def test_lenet_stage_texts() -> None:
    torch.manual_seed(0)
    model = LeNet5().eval()
    result = capture(model, torch.randn(1, 1, 28, 28))
    conv1 = describe_stage(result["conv1"], (1, 28, 28), model.conv1)
    assert "6 filters of 1×5×5" in conv1.caption and "→ 6×28×28" in conv1.caption
    assert "⌊(28 − 5 + 2·2) / 1⌋ + 1 = 28" in conv1.formula
    assert "150 + 6 biases" in conv1.formula
    conv2 = describe_stage(result["conv2"], (6, 14, 14), model.conv2)
    assert "⌊(14 − 5 + 2·0) / 1⌋ + 1 = 10" in conv2.formula
    relu = describe_stage(result["relu1"], (6, 28, 28), model.get_submodule("relu1"))
    zeros = float((result["relu1"].tensor == 0).float().mean())
    assert f"{zeros:.0%} of the values are now 0" in relu.caption
    pool = describe_stage(result["pool1"], (6, 28, 28), model.get_submodule("pool1"))
    assert "Max pooling 2×2, stride 2" in pool.caption and "6×28×28 becomes 6×14×14" in pool.caption
    assert "⌊(28 − 2 + 2·0) / 2⌋ + 1 = 14" in pool.formula
    flat = describe_stage(result["flatten"], (16, 5, 5), model.get_submodule("flatten"))
    assert "one vector of 400 numbers" in flat.caption
    fc1 = describe_stage(result["fc1"], (400,), model.fc1)
    assert "each of the 120 units" in fc1.caption and "48,000 weights" in fc1.formula
    soft = describe_stage(result["softmax"], (10,), None)
    assert "sum to 1" in soft.caption


def test_norm_add_and_concat_stage_texts() -> None:
    """The layers of ResNet-18 and GoogLeNet that LeNet-5 lacks: each says what it computes."""
    from explorer.models.zoo import load_model

    resnet = load_model("resnet18", "untrained")
    result = resnet.capture(torch.zeros(1, 3, 64, 64))
    bn = result["bn1"]
    text = describe_stage(bn, tuple(result["conv1"].shape), resnet.model.get_submodule("bn1"))
    assert (
        text.caption == f"Normalisation ({bn.op}): learned scale and shift per channel → 64×32×32"
    )
    assert "running mean" in text.formula and "γ + β" in text.formula
    add = result["layer1.0.add"]
    text = describe_stage(add, tuple(add.shape), None)
    assert text.caption.startswith("Add: the shortcut is added") and text.caption.endswith(
        "→ 64×16×16"
    )
    assert "F(x) + x" in text.formula
    googlenet = load_model("googlenet", "untrained")
    result = googlenet.capture(torch.zeros(1, 3, 64, 64))
    concat = result["inception3a.cat"]
    text = describe_stage(concat, None, None)
    assert concat.shape[0] == 64 + 128 + 32 + 32  # inception3a's four branches
    assert text.caption == "Concatenate: branches stacked along the channel axis → 256×8×8"
    assert "depths add up" in text.formula
