"""Explaining one unit: conv sums, pool windows and receptive fields.

Conv sums and pool windows are checked against numpy, receptive fields against
hand-derived boxes and against the input pixels autograd says a unit depends on.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import get_model
from torchvision.models.feature_extraction import create_feature_extractor

from explorer.analysis.capture import CaptureResult, capture, list_layers
from explorer.analysis.explain import (
    ConvUnit,
    PoolUnit,
    explain_unit,
    receptive_field,
    receptive_field_size,
)
from explorer.analysis.geometry import Box
from explorer.models.nets import LeNet5
from explorer.models.zoo import load_model

DIGIT = Path(__file__).resolve().parents[1] / "assets" / "digits" / "3_0.png"


def _conv(model: nn.Module, result: CaptureResult, layer: str, c: int, y: int, x: int) -> ConvUnit:
    unit = explain_unit(model, result, layer, c, y, x)
    assert isinstance(unit, ConvUnit)
    return unit


def _pool(model: nn.Module, result: CaptureResult, layer: str, c: int, y: int, x: int) -> PoolUnit:
    unit = explain_unit(model, result, layer, c, y, x)
    assert isinstance(unit, PoolUnit)
    return unit


def _assert_total_matches(unit: ConvUnit) -> None:
    # float32 accumulation error scales with the sum of |terms|, not with the (possibly
    # cancelling) total itself.
    scale = np.abs(unit.products).sum() + abs(unit.bias)
    np.testing.assert_allclose(unit.total, unit.captured, rtol=1e-5, atol=1e-6 * scale)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


@pytest.fixture(scope="module", params=["trained", "random"])
def lenet_run(request: pytest.FixtureRequest) -> tuple[LeNet5, CaptureResult]:
    """LeNet-5 on a real digit: the shipped weights, and random ones."""
    loaded = load_model("lenet5")
    assert loaded.weights == "pretrained"
    x = loaded.prepare(DIGIT).tensor
    if request.param == "trained":
        trained = loaded.model
        assert isinstance(trained, LeNet5)
        return trained, capture(trained, x)
    torch.manual_seed(7)
    model = LeNet5().eval()
    return model, capture(model, x)


def test_box_size_and_clipping() -> None:
    box = Box(-2, 3, 5, 12)
    assert (box.height, box.width) == (7, 9)
    assert box.clipped(4, 10) == Box(0, 3, 4, 10)
    assert box.clipped(4, 10).height == 4
    assert Box(30, 30, 35, 35).clipped(28, 28) == Box(28, 28, 28, 28)  # empty, not negative


def test_lenet_conv1_every_unit_against_numpy_padding(
    lenet_run: tuple[LeNet5, CaptureResult],
) -> None:
    model, result = lenet_run
    source = _numpy(result.input)  # (1, 28, 28)
    padded = np.pad(source, ((0, 0), (2, 2), (2, 2)))  # conv1: 5×5, pad 2, stride 1
    weights = _numpy(model.conv1.weight)
    assert model.conv1.bias is not None
    biases = _numpy(model.conv1.bias)
    for c in (0, 3, 5):
        for y in range(28):  # every row and column: the borders hang over the padding
            for x in range(28):
                unit = _conv(model, result, "conv1", c, y, x)
                assert unit.source == "input" and unit.in_channels == (0,)
                assert unit.box == Box(y - 2, x - 2, y + 3, x + 3)
                np.testing.assert_array_equal(unit.patch, padded[:, y : y + 5, x : x + 5])
                np.testing.assert_array_equal(unit.kernel, weights[c])
                np.testing.assert_array_equal(unit.products, unit.patch * unit.kernel)
                assert unit.bias == biases[c]
                _assert_total_matches(unit)
    corner = _conv(model, result, "conv1", 0, 0, 0)
    assert not corner.patch[:, :2, :].any() and not corner.patch[:, :, :2].any()
    assert corner.box.clipped(28, 28) == Box(0, 0, 3, 3)


def test_lenet_conv2_units_against_numpy(lenet_run: tuple[LeNet5, CaptureResult]) -> None:
    model, result = lenet_run
    source = _numpy(result["pool1"].tensor)  # (6, 14, 14); conv2: 5×5, no padding
    weights = _numpy(model.conv2.weight)
    for c in (0, 7, 15):
        for y in range(10):
            for x in range(10):
                unit = _conv(model, result, "conv2", c, y, x)
                assert unit.source == "pool1" and unit.in_channels == tuple(range(6))
                assert unit.box == Box(y, x, y + 5, x + 5)
                np.testing.assert_array_equal(unit.patch, source[:, y : y + 5, x : x + 5])
                np.testing.assert_array_equal(unit.kernel, weights[c])
                np.testing.assert_array_equal(unit.products, unit.patch * unit.kernel)
                _assert_total_matches(unit)
    assert unit.products.shape == (6, 5, 5)


@pytest.mark.parametrize(("pool", "source_name"), [("pool1", "relu1"), ("pool2", "relu2")])
def test_lenet_max_pool_units_match_torch_indices(
    lenet_run: tuple[LeNet5, CaptureResult], pool: str, source_name: str
) -> None:
    model, result = lenet_run
    source = result[source_name].tensor
    width = source.shape[-1]
    _, indices = F.max_pool2d(source[None], 2, return_indices=True)
    tie_free = 0
    channels, height_out, width_out = result[pool].shape
    for c in range(channels):
        for y in range(height_out):
            for x in range(width_out):
                unit = _pool(model, result, pool, c, y, x)
                assert unit.op == "max" and unit.source == source_name
                assert unit.box == Box(2 * y, 2 * x, 2 * y + 2, 2 * x + 2)
                assert unit.value == unit.captured
                assert unit.winner is not None and unit.divisor is None
                assert unit.window[unit.winner] == unit.window.max() == unit.value
                if len(np.unique(unit.window)) == unit.window.size:
                    tie_free += 1
                    row, col = unit.box.top + unit.winner[0], unit.box.left + unit.winner[1]
                    assert row * width + col == indices[0, c, y, x]
    assert tie_free >= 20  # ReLU zeros tie many windows; enough must be left to compare


def _tiny(*layers: nn.Module) -> nn.Module:
    """A model of ``layers`` whose flattened output stands in for the logits."""
    return nn.Sequential(*layers, nn.Flatten()).eval()


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(4, 4, 3, groups=4, padding=1),  # depthwise
        nn.Conv2d(4, 6, 3, groups=2, padding=1),
        nn.Conv2d(3, 5, 3, stride=2, padding=2, dilation=2),
        pytest.param(  # even kernel: 1 before, 2 after
            nn.Conv2d(2, 3, 4, padding="same", bias=False),
            marks=pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
        ),
    ],
    ids=["depthwise", "groups2", "dilated-strided", "same-even"],
)
def test_grouped_dilated_and_same_padded_convs(conv: nn.Conv2d) -> None:
    torch.manual_seed(3)
    model = _tiny(conv)
    with torch.no_grad():
        conv.weight.normal_()
    x = torch.randn(conv.in_channels, 11, 12)
    result = capture(model, x)
    reference = _numpy(F.conv2d(x[None].double(), conv.weight.double(), None, conv.stride,
                                conv.padding, conv.dilation, conv.groups))[0]  # fmt: skip
    per_group = conv.in_channels // conv.groups
    out_per_group = conv.out_channels // conv.groups
    (kh, kw), (s, _), (d, _) = conv.kernel_size, conv.stride, conv.dilation
    before = d * (kh - 1) // 2 if isinstance(conv.padding, str) else conv.padding[0]  # "same"
    padded = np.pad(_numpy(x), ((0, 0), (before, 2 * d * kh), (before, 2 * d * kw)))
    channels, height, width = result["0"].shape
    for c in range(channels):
        group = c // out_per_group
        for y in range(height):
            for x_ in range(width):
                unit = _conv(model, result, "0", c, y, x_)
                assert unit.in_channels == tuple(range(group * per_group, (group + 1) * per_group))
                rows = slice(y * s, y * s + d * (kh - 1) + 1, d)
                cols = slice(x_ * s, x_ * s + d * (kw - 1) + 1, d)
                expected = padded[group * per_group : (group + 1) * per_group, rows, cols]
                np.testing.assert_array_equal(unit.patch, expected)
                assert unit.patch.shape == (per_group, kh, kw)
                _assert_total_matches(unit)
                np.testing.assert_allclose(unit.total, reference[c, y, x_] + unit.bias, rtol=1e-9)


def test_mobilenet_depthwise_conv_unit() -> None:
    torch.manual_seed(0)
    model = get_model("mobilenet_v3_small", weights=None).eval()
    result = capture(model, torch.randn(3, 64, 64))
    layer = "features.1.block.0.0"  # 16 channels, 3×3, stride 2, groups 16
    for c, y, x in [(0, 0, 0), (9, 7, 15), (15, 15, 15)]:
        unit = _conv(model, result, layer, c, y, x)
        assert unit.in_channels == (c,) and unit.kernel.shape == (1, 3, 3)
        _assert_total_matches(unit)


@pytest.mark.parametrize(
    ("pool", "corner_divisor"),
    [
        (nn.AvgPool2d(3, stride=2, padding=1), 9),
        (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), 4),
        (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), 9),
        (nn.AvgPool2d(2, divisor_override=3), 3),
    ],
    ids=["include-pad", "exclude-pad", "ceil-mode", "divisor-override"],
)
def test_avg_pool_units(pool: nn.AvgPool2d, corner_divisor: int) -> None:
    model = _tiny(pool)
    torch.manual_seed(4)
    x = torch.randn(2, 8, 10)
    result = capture(model, x)
    padded = np.pad(_numpy(x), ((0, 0), (3, 3), (3, 3)))
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    assert isinstance(k, int) and isinstance(s, int) and isinstance(p, int)
    channels, height, width = result["0"].shape
    for c in range(channels):
        for y in range(height):
            for x_ in range(width):
                unit = _pool(model, result, "0", c, y, x_)
                assert unit.op == "avg" and unit.winner is None
                top, left = y * s - p, x_ * s - p
                assert unit.box == Box(top, left, top + k, left + k)
                expected = padded[c, top + 3 : top + 3 + k, left + 3 : left + 3 + k]
                np.testing.assert_array_equal(unit.window, expected)
                np.testing.assert_allclose(unit.value, unit.captured, rtol=1e-5, atol=1e-6)
    assert _pool(model, result, "0", 0, 0, 0).divisor == corner_divisor


def test_max_pool_with_padding_and_dilation_marks_padding_nan() -> None:
    model = _tiny(nn.MaxPool2d(3, stride=2, padding=1, dilation=2))
    x = torch.randn(2, 9, 9)
    result = capture(model, x)
    channels, height, width = result["0"].shape
    for c in range(channels):
        for y in range(height):
            for x_ in range(width):
                unit = _pool(model, result, "0", c, y, x_)
                assert unit.box == Box(2 * y - 1, 2 * x_ - 1, 2 * y + 4, 2 * x_ + 4)
                assert unit.value == unit.captured == np.nanmax(unit.window)
    corner = _pool(model, result, "0", 0, 0, 0)
    assert np.isnan(corner.window[0]).all() and np.isnan(corner.window[:, 0]).all()
    np.testing.assert_array_equal(corner.window[1:, 1:], _numpy(x[0, 1:5:2, 1:5:2]))


# --- receptive fields ------------------------------------------------------------------------


def test_lenet_receptive_fields_closed_form() -> None:
    model = LeNet5().eval()
    # conv1 (5×5, pad 2) unit (y, x) reads input rows y-2 … y+2: a 5×5 box centred on it.
    # conv2 unit y reads pool1 rows y … y+4; pool1 row r reads conv1 rows 2r, 2r+1, so conv1
    # rows 2y … 2y+9; conv1 row q reads input rows q-2 … q+2: input rows 2y-2 … 2y+11 (14).
    # pool2 unit y reads conv2 rows 2y, 2y+1, so input rows 4y-2 … 4y+13 (16).
    for y, x in [(0, 0), (3, 7), (13, 27)]:
        assert receptive_field(model, "conv1", y, x) == Box(y - 2, x - 2, y + 3, x + 3)
        assert receptive_field(model, "relu1", y, x) == Box(y - 2, x - 2, y + 3, x + 3)
    for y, x in [(0, 0), (4, 9), (9, 9)]:
        assert receptive_field(model, "conv2", y, x) == Box(
            2 * y - 2, 2 * x - 2, 2 * y + 12, 2 * x + 12
        )
    for y, x in [(0, 0), (2, 4), (4, 4)]:
        assert receptive_field(model, "pool2", y, x) == Box(
            4 * y - 2, 4 * x - 2, 4 * y + 14, 4 * x + 14
        )
    assert receptive_field_size(model, "conv1") == (5, 5)
    assert receptive_field_size(model, "conv2") == (14, 14)
    assert receptive_field_size(model, "pool2") == (16, 16)
    # A conv on the input: the receptive field is the kernel's footprint.
    result = capture(model, torch.randn(1, 28, 28))
    assert receptive_field(model, "conv1", 0, 5) == _conv(model, result, "conv1", 2, 0, 5).box


def test_whole_input_layers_need_the_input_size() -> None:
    model = LeNet5().eval()
    with pytest.raises(ValueError, match=r"whole input.*'fc1', a linear layer.*input_size"):
        receptive_field(model, "fc1", 0, 0)
    assert receptive_field(model, "fc1", 0, 0, input_size=(28, 28)) == Box(0, 0, 28, 28)
    assert receptive_field_size(model, "softmax", input_size=(28, 28)) == (28, 28)
    mobilenet = get_model("mobilenet_v3_small", weights=None).eval()
    # The squeeze-and-excitation scale comes from a global average pool: after the `mul`
    # every unit depends on the whole input; before it, only on a small box.
    # features.0.0 and the depthwise features.1.block.0.0 are both 3×3/2 pad 1: unit 3 reads
    # rows 5 … 7 of the first, which read input rows 9 … 15.
    assert receptive_field(mobilenet, "features.1.block.0.0", 3, 3) == Box(9, 9, 16, 16)
    box = receptive_field(mobilenet, "features.1.block.2.0", 3, 3, input_size=(64, 64))
    assert box == Box(0, 0, 64, 64)


def test_resnet_receptive_field_sizes_closed_form() -> None:
    resnet18 = get_model("resnet18", weights=None).eval()
    # conv1 7×7/2 → 7 (jump 2); maxpool 3/2 → 11 (jump 4); each 3×3 conv adds 2·jump.
    # layer1.0: 11 + 8 + 8 = 27 (the shortcut sees only 11: the union is 27).
    # layer1.1 → 43; layer2.0: conv1/2 → 51 (jump 8), conv2 → 67.
    # layer2.1 → 99; layer3.0: 115 (jump 16), 147; layer3.1.conv1 → 179.
    assert receptive_field_size(resnet18, "layer1.0.add") == (27, 27)
    assert receptive_field_size(resnet18, "layer2.0.relu#2") == (67, 67)
    assert receptive_field_size(resnet18, "layer3.1.conv1") == (179, 179)
    assert receptive_field(resnet18, "layer1.0.add", 0, 0) == Box(-13, -13, 14, 14)
    resnet50 = get_model("resnet50", weights=None).eval()
    # maxpool 11 (jump 4); layer1: 3 blocks × 8 → 35; layer2: +8 (stride on the 3×3, jump 8)
    # then 3 × 16 → 91; layer3: +16, then 5 × 32 → 267; layer4: +32, then 2 × 64 → 427.
    assert receptive_field_size(resnet50, "layer4.2.relu#3") == (427, 427)


def test_resnet50_receptive_fields_step_by_the_layer_jump() -> None:
    """Neighbouring units' fields are one jump apart and have the layer's size.

    The jump is 16 px in layer3 and 32 px in layer4. (How fast this is belongs in
    ``python -m explorer bench``.)
    """
    model = get_model("resnet50", weights=None).eval()
    list_layers(model)  # the trace the capture would already have made
    for name, jump in (("layer4.2.conv3", 32), ("layer3.5.relu#3", 16)):
        box = receptive_field(model, name, 3, 5)
        below = receptive_field(model, name, 4, 5)
        right = receptive_field(model, name, 3, 6)
        assert (below.top - box.top, below.left - box.left) == (jump, 0)
        assert (right.top - box.top, right.left - box.left) == (0, jump)
        assert (box.height, box.width) == receptive_field_size(model, name)


def _positive_linear_copy(model: nn.Module) -> nn.Module:
    """A copy in which every unit is a positive combination of its inputs.

    Conv weights become positive constants, BatchNorm the identity, ReLUs out of place (so
    autograd sees each stage), and max pools become average pools of the same geometry (a
    max passes the gradient to one pixel only; the receptive field is the same).
    """
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d):
            nn.init.constant_(module.weight, 1.0 / module.weight[0].numel())
            if module.bias is not None:
                nn.init.constant_(module.bias, 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
        elif isinstance(module, nn.ReLU):
            module.inplace = False
        elif isinstance(module, nn.MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            average = nn.AvgPool2d(module.kernel_size, module.stride, module.padding)
            setattr(model.get_submodule(parent) if parent else model, leaf, average)
    return model.eval()


def _gradient_box(model: nn.Module, node: str, y: int, x: int, size: int, channels: int) -> Box:
    """Bounding box of the input pixels with a non-zero gradient of unit (y, x), all channels."""
    extractor = create_feature_extractor(model, return_nodes=[node])
    image = (torch.rand(1, channels, size, size) + 0.5).requires_grad_()
    with torch.enable_grad():
        extractor(image)[node][0, :, y, x].sum().backward()
    assert image.grad is not None
    rows, cols = np.nonzero(image.grad[0].abs().sum(0).numpy())
    return Box(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)


class _Cross(nn.Module):
    """Two line-shaped branches merged by an add, then a dilated, strided conv.

    The branches each see a line (1×5 and 5×1); only the union of the branches gives the
    right box.
    """

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, (1, 5), padding=(0, 2))
        self.b = nn.Conv2d(1, 2, (5, 1), padding=(2, 0))
        self.c = nn.Conv2d(2, 2, 3, stride=2, padding=1, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.c(self.a(x) + self.b(x))
        return out.flatten(1)


def test_branch_union_and_dilation_match_autograd() -> None:
    model = _Cross().eval()
    positive = _positive_linear_copy(model)
    # add unit (y, x): rows y … y (a) ∪ y-2 … y+2 (b), columns x-2 … x+2 (a) ∪ x … x (b).
    # c unit (y, x) reads add rows 2y-1, 2y+1, 2y+3, hence input rows 2y-3 … 2y+5.
    for y, x in [(0, 0), (4, 9), (15, 15)]:
        box = receptive_field(model, "add", y, x)
        assert box == Box(y - 2, x - 2, y + 3, x + 3)
        assert _gradient_box(positive, "add", y, x, 16, 1) == box.clipped(16, 16)
    for y, x in [(0, 0), (3, 5), (6, 6)]:
        box = receptive_field(model, "c", y, x)
        assert box == Box(2 * y - 3, 2 * x - 3, 2 * y + 6, 2 * x + 6)
        assert _gradient_box(positive, "c", y, x, 16, 1) == box.clipped(16, 16)


@pytest.mark.parametrize(
    ("layer", "units"),
    [("conv2", [(0, 0), (4, 7), (9, 9)]), ("pool2", [(0, 0), (2, 3), (4, 4)])],
)
def test_lenet_receptive_field_matches_autograd(layer: str, units: list[tuple[int, int]]) -> None:
    model = LeNet5().eval()
    positive = _positive_linear_copy(model)
    for y, x in units:
        box = receptive_field(model, layer, y, x)
        assert receptive_field(positive, layer, y, x) == box
        # Every pixel with a gradient lies in the box, and the box is no bigger than that.
        assert _gradient_box(positive, layer, y, x, 28, 1) == box.clipped(28, 28)


@pytest.mark.parametrize(
    ("layer", "node", "size", "units"),
    [
        ("layer1.0.add", "layer1.0.add", 64, [(0, 0), (5, 9), (15, 15)]),
        ("layer2.0.relu#2", "layer2.0.relu_1", 64, [(0, 0), (3, 5), (7, 7)]),
        # At 64×64 every layer3 unit sees the whole image; 128 leaves sides to check.
        ("layer3.1.conv1", "layer3.1.conv1", 128, [(0, 0), (7, 7)]),
    ],
)
def test_resnet18_receptive_field_matches_autograd(
    layer: str, node: str, size: int, units: list[tuple[int, int]]
) -> None:
    model = get_model("resnet18", weights=None).eval()
    positive = _positive_linear_copy(model)
    for y, x in units:
        box = receptive_field(model, layer, y, x)
        assert receptive_field(positive, layer, y, x) == box
        clipped = box.clipped(size, size)
        assert _gradient_box(positive, node, y, x, size, 3) == clipped
        assert clipped != Box(0, 0, size, size)  # the check says something


# --- errors ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet_and_input() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(2)
    return LeNet5().eval(), torch.randn(1, 28, 28)


def test_unit_out_of_range(lenet_and_input: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = lenet_and_input
    result = capture(model, x)
    with pytest.raises(ValueError, match=r"outside 'conv1'.*6 channels × 28 rows × 28 columns"):
        explain_unit(model, result, "conv1", 6, 0, 0)
    with pytest.raises(ValueError, match=r"unit .*y=28"):
        explain_unit(model, result, "conv1", 0, 28, 0)
    with pytest.raises(ValueError, match="outside 'pool2'"):
        explain_unit(model, result, "pool2", 0, 0, -1)
    with pytest.raises(ValueError, match="negative"):
        receptive_field(model, "conv2", -1, 0)


def test_other_kinds_are_refused(lenet_and_input: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = lenet_and_input
    result = capture(model, x)
    with pytest.raises(ValueError, match=r"'relu1' is a relu layer \(ReLU\)"):
        explain_unit(model, result, "relu1", 0, 0, 0)
    with pytest.raises(ValueError, match="'fc1' is a linear layer"):
        explain_unit(model, result, "fc1", 0, 0, 0)
    with pytest.raises(ValueError, match="'nope' is not in this capture"):
        explain_unit(model, result, "nope", 0, 0, 0)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        receptive_field(model, "nope", 0, 0)


def test_source_missing_from_a_subset_capture(
    lenet_and_input: tuple[nn.Module, torch.Tensor],
) -> None:
    model, x = lenet_and_input
    result = capture(model, x, layers=["conv2", "pool2"])
    with pytest.raises(ValueError, match="'conv2' reads 'pool1', which this capture left out"):
        explain_unit(model, result, "conv2", 0, 0, 0)
    with pytest.raises(ValueError, match="'pool2' reads 'relu2'"):
        explain_unit(model, result, "pool2", 0, 0, 0)
    only_conv1 = capture(model, x, layers=["conv1"])  # reads the input, always there
    _assert_total_matches(_conv(model, only_conv1, "conv1", 1, 0, 27))


def test_non_zero_padding_mode_is_refused() -> None:
    model = _tiny(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"))
    result = capture(model, torch.randn(1, 6, 6))
    with pytest.raises(ValueError, match="'reflect'"):
        explain_unit(model, result, "0", 0, 0, 0)
