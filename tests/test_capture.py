"""Capture of every layer: exact values, execution order, in-place safety, threads, no leaks."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import get_model

from explorer.analysis.capture import KINDS, MAX_KEPT_GRAPHS, capture, kept_graphs, list_layers
from explorer.models.nets import LeNet5


def _hook_count(model: nn.Module) -> int:
    hooks = 0
    for module in model.modules():
        hooks += len(module._forward_hooks) + len(module._forward_pre_hooks)
        hooks += len(module._backward_hooks)
    import torch.nn.modules.module as module_mod

    hooks += len(module_mod._global_forward_hooks) + len(module_mod._global_forward_pre_hooks)
    return hooks


@pytest.fixture(scope="module")
def lenet() -> LeNet5:
    torch.manual_seed(1)
    return LeNet5().eval()


def test_lenet_every_layer_matches_a_hand_written_forward(lenet: LeNet5) -> None:
    x = torch.randn(1, 1, 28, 28)
    result = capture(lenet, x)
    assert result.names == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
        "fc1", "relu3", "fc2", "relu4", "fc3", "softmax",
    ]  # fmt: skip
    m = lenet
    conv1 = F.conv2d(x, m.conv1.weight, m.conv1.bias, padding=2)
    relu1 = conv1.clamp(min=0)
    pool1 = F.max_pool2d(relu1, 2)
    conv2 = F.conv2d(pool1, m.conv2.weight, m.conv2.bias)
    pool2 = F.max_pool2d(conv2.clamp(min=0), 2)
    fc1 = pool2.flatten(1) @ m.fc1.weight.T + m.fc1.bias
    fc2 = fc1.clamp(min=0) @ m.fc2.weight.T + m.fc2.bias
    fc3 = fc2.clamp(min=0) @ m.fc3.weight.T + m.fc3.bias
    expected = {
        "conv1": conv1, "relu1": relu1, "pool1": pool1, "conv2": conv2,
        "pool2": pool2, "fc1": fc1, "fc2": fc2, "fc3": fc3,
    }  # fmt: skip
    for name, value in expected.items():
        torch.testing.assert_close(result[name].tensor, value[0].detach(), rtol=1e-5, atol=1e-5)
    assert result["conv1"].shape == (6, 28, 28)
    assert result["pool2"].shape == (16, 5, 5)
    assert result["flatten"].shape == (400,)
    assert result["conv1"].kind == "conv" and result["relu1"].kind == "relu"
    assert result["pool1"].kind == "pool" and result["fc1"].kind == "linear"
    torch.testing.assert_close(result.logits, fc3[0].detach(), rtol=1e-5, atol=1e-5)
    probs = torch.softmax(fc3[0].detach(), 0)
    torch.testing.assert_close(result.probs, probs)
    torch.testing.assert_close(result["softmax"].tensor, probs)
    assert abs(float(result.probs.sum()) - 1.0) < 1e-6
    assert result.top(1)[0][0] == int(probs.argmax())
    assert result.input.shape == (1, 28, 28)


class _InPlaceNet(nn.Module):
    """conv → bn → in-place ReLU module, then an in-place residual add and functional ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn(self.conv(x))
        out = self.relu(out)
        out = out - 0.5
        out += identity
        out = F.relu(out, inplace=True)
        out = self.relu(out)
        logits: torch.Tensor = self.head(torch.flatten(out, 1))
        return logits


def test_in_place_ops_do_not_rewrite_captured_values() -> None:
    torch.manual_seed(0)
    model = _InPlaceNet().eval()
    assert model.bn.running_mean is not None and model.bn.running_var is not None
    with torch.no_grad():
        model.bn.running_mean.fill_(0.3)
        model.bn.running_var.fill_(2.0)
    x = torch.randn(1, 1, 4, 4)
    result = capture(model, x)
    assert result.names == [
        "conv",
        "bn",
        "relu",
        "add",
        "relu#2",
        "relu#3",
        "flatten",
        "head",
        "softmax",
    ]
    with torch.no_grad():
        conv = F.conv2d(x, model.conv.weight, padding=1)
        bn = (conv - 0.3) / torch.sqrt(torch.tensor(2.0) + model.bn.eps) * model.bn.weight.view(
            1, -1, 1, 1
        ) + model.bn.bias.view(1, -1, 1, 1)
        relu = bn.clamp(min=0)
        added = relu - 0.5 + x
    torch.testing.assert_close(result["bn"].tensor, bn[0], rtol=1e-5, atol=1e-6)
    assert float(result["bn"].tensor.min()) < 0, "BN output must keep its negatives"
    torch.testing.assert_close(result["relu"].tensor, relu[0])
    torch.testing.assert_close(result["add"].tensor, added[0], rtol=1e-5, atol=1e-6)
    assert float(result["add"].tensor.min()) < 0, "the residual sum must keep its negatives"
    torch.testing.assert_close(result["relu#2"].tensor, added[0].clamp(min=0), rtol=1e-5, atol=1e-6)
    assert result["add"].kind == "add" and result["relu#2"].kind == "relu"
    # the model itself is untouched: still in place, same output as its own forward
    assert model.relu.inplace is True
    with torch.no_grad():
        torch.testing.assert_close(result.logits, model(x.clone())[0])


def test_resnet18_relu_reused_17_times_and_bn_keeps_negatives() -> None:
    torch.manual_seed(0)
    model = get_model("resnet18", weights=None).eval()
    relu_modules = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relu_modules) == 9
    x = torch.randn(1, 3, 64, 64)
    result = capture(model, x)
    relus = result.of_kind("relu")
    assert len(relus) == 17
    assert len(set(result.names)) == len(result.names)
    assert [r.name for r in relus[:3]] == ["relu", "layer1.0.relu", "layer1.0.relu#2"]
    assert len(result.of_kind("add")) == 8
    for bn in result.of_kind("norm"):
        assert float(bn.tensor.min()) < 0, f"{bn.name} lost its negatives"
    with torch.no_grad():
        stem = model.bn1(model.conv1(x))
    torch.testing.assert_close(result["bn1"].tensor, stem[0])
    with torch.no_grad():
        torch.testing.assert_close(result.logits, model(x)[0], rtol=1e-4, atol=1e-5)
    assert all(m.inplace for m in relu_modules), "capture must not mutate the shared model"


def test_googlenet_functional_relus_all_captured() -> None:
    torch.manual_seed(0)
    model = get_model(
        "googlenet", weights=None, aux_logits=False, transform_input=True, init_weights=False
    ).eval()
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    result = capture(model, torch.randn(1, 3, 96, 96))
    relus = result.of_kind("relu")
    assert len(relus) == 57
    assert len({r.name for r in relus}) == 57
    assert "inception3a.branch1.relu" in result
    assert len(result.of_kind("concat")) == 10  # 9 inception blocks + the input transform
    torch.testing.assert_close(result["conv1.relu"].tensor, result["conv1.bn"].tensor.clamp(min=0))


def test_every_kind_is_known_and_list_layers_matches(lenet: nn.Module) -> None:
    model = get_model("mobilenet_v3_small", weights=None).eval()
    result = capture(model, torch.randn(1, 3, 64, 64))
    assert {layer.kind for layer in result.layers} <= set(KINDS)
    assert [info.name for info in list_layers(model)] == result.names
    assert {"activation", "mul", "add"} <= {layer.kind for layer in result.layers}


def test_subset_of_layers(lenet: nn.Module) -> None:
    x = torch.randn(1, 28, 28)
    full = capture(lenet, x)
    part = capture(lenet, x, layers=["pool2", "conv1", "softmax"])
    assert part.names == ["conv1", "pool2", "softmax"]  # execution order, not request order
    torch.testing.assert_close(part["pool2"].tensor, full["pool2"].tensor)
    none = capture(lenet, x, layers=[])
    assert none.names == []
    torch.testing.assert_close(none.probs, full.probs)
    with pytest.raises(KeyError, match="nope"):
        capture(lenet, x, layers=["nope"])


def test_bad_input_shape_is_refused(lenet: nn.Module) -> None:
    with pytest.raises(ValueError, match="one input"):
        capture(lenet, torch.randn(2, 1, 28, 28))


def test_threads_get_their_own_outputs(lenet: nn.Module) -> None:
    inputs = [
        torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(i)) for i in range(8)
    ]
    reference = [capture(lenet, x) for x in inputs]
    errors: list[str] = []
    barrier = threading.Barrier(len(inputs))

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(25):
            got = capture(lenet, inputs[i])
            for layer in got.layers:
                if not torch.equal(layer.tensor, reference[i][layer.name].tensor):
                    errors.append(f"thread {i}: {layer.name} differs")
                    return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # different inputs really gave different outputs (the check above is not vacuous)
    assert not torch.equal(reference[0]["conv1"].tensor, reference[1]["conv1"].tensor)


def test_no_hooks_or_state_left_after_1000_calls(lenet: nn.Module) -> None:
    before = _hook_count(lenet)
    x = torch.randn(1, 1, 28, 28)
    names = [layer.name for layer in list_layers(lenet)[:-1]]
    for i in range(1000):
        capture(lenet, x, layers=None if i % 100 == 0 else names[: 1 + i % len(names)])
    with pytest.raises(ValueError):
        capture(lenet, torch.randn(3, 3))
    assert _hook_count(lenet) == before == 0
    assert len(names) + 1 > MAX_KEPT_GRAPHS  # more subsets were asked for than are kept
    assert kept_graphs(lenet) == MAX_KEPT_GRAPHS


def test_results_are_inference_tensors_on_the_model_device(lenet: nn.Module) -> None:
    result = capture(lenet, torch.randn(1, 1, 28, 28))
    assert all(layer.tensor.is_inference() for layer in result.layers)
    assert all(layer.tensor.device.type == "cpu" for layer in result.layers)
    array = result["conv1"].numpy()
    array[:] = 0  # a host copy: writing it leaves the capture intact
    assert float(result["conv1"].tensor.abs().sum()) > 0
    stats = result["relu1"].stats()
    values = result["relu1"].tensor
    assert stats["min"] == 0.0 and stats["max"] == pytest.approx(float(values.max()))
    assert stats["zero_fraction"] == pytest.approx(float((values == 0).float().mean()))


def test_each_layer_knows_what_feeds_it(lenet: nn.Module) -> None:
    result = capture(lenet, torch.randn(1, 1, 28, 28))
    assert result["conv1"].inputs == ("input",)
    assert result["pool1"].inputs == ("relu1",)
    assert result["conv2"].inputs == ("pool1",)
    assert result["fc1"].inputs == ("flatten",)
    assert result["softmax"].inputs == ("fc3",)
    resnet = get_model("resnet18", weights=None).eval()
    layers = {info.name: info for info in list_layers(resnet)}
    assert layers["layer1.0.add"].inputs == ("layer1.0.bn2", "maxpool")
    assert layers["layer2.0.add"].inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    assert layers["layer1.0.relu#2"].inputs == ("layer1.0.add",)
