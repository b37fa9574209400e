"""The model zoo: offline fallback, pretrained path, shipped weights, ZFNet sizes, OOM fallback."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.analysis.capture import CaptureResult, capture
from explorer.models import zoo
from explorer.models.device import DeviceError, available_devices, is_out_of_memory, pick_device
from explorer.models.zoo import ZOO, ModelError, load_model

TORCHVISION_MODELS = [name for name, spec in ZOO.items() if spec.source == "torchvision"]


def test_zoo_lists_the_famous_nets() -> None:
    assert set(ZOO) == {
        "lenet5", "harley", "alexnet", "zfnet", "vgg11", "vgg16", "googlenet",
        "resnet18", "resnet50", "mobilenet_v3_small", "squeezenet1_1",
    }  # fmt: skip
    rows = zoo.zoo_table()
    assert [row["name"] for row in rows] == list(ZOO)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_models_load_untrained_offline_with_one_notice(name: str) -> None:
    loaded = load_model(name)
    assert loaded.weights == "untrained"
    assert loaded.is_untrained
    assert loaded.notice is not None and "UNTRAINED" in loaded.notice
    assert "EXPLORER_OFFLINE" in loaded.notice
    assert len(loaded.categories) == 1000 and loaded.categories[0] == "tench"
    assert not loaded.model.training
    assert loaded.parameter_count == sum(p.numel() for p in loaded.model.parameters())
    prepared = loaded.prepare(Image.new("RGB", (300, 200), (200, 120, 40)))
    assert prepared.tensor.shape == (1, 3, 224, 224)
    result = loaded.capture(prepared, layers=[])
    assert result.probs.shape == (1000,)


def test_untrained_weights_are_deterministic() -> None:
    first = load_model("alexnet", "untrained")
    second = load_model("alexnet", "untrained")
    assert first.notice is None  # asked for untrained: nothing to warn about
    second_state = second.model.state_dict()
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second_state[name]), name


def test_pretrained_path_uses_torchvision_weights_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a successful download: whatever the weights API returns is what gets loaded."""
    torch.manual_seed(7)
    fake = zoo.build_architecture(ZOO["squeezenet1_1"]).state_dict()
    fake = {k: v + 1.0 if v.is_floating_point() else v for k, v in fake.items()}
    weights_enum = zoo.torchvision_weights(ZOO["squeezenet1_1"])
    monkeypatch.setattr(type(weights_enum), "get_state_dict", lambda self, **kw: fake)
    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: True)
    loaded = load_model("squeezenet1_1")
    assert loaded.weights == "pretrained" and loaded.notice is None
    assert loaded.weights_label == "pretrained (ImageNet)"
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, fake[name]), name


def test_unreachable_host_gives_untrained_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent-hub-dir")
    loaded = load_model("squeezenet1_1")
    assert loaded.weights == "untrained"
    assert "download.pytorch.org cannot be reached" in (loaded.notice or "")


def test_failed_download_gives_untrained(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: object, **kwargs: object) -> None:
        raise OSError("connection reset")

    weights_enum = zoo.torchvision_weights(ZOO["squeezenet1_1"])
    monkeypatch.setattr(type(weights_enum), "get_state_dict", boom)
    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: True)
    loaded = load_model("squeezenet1_1")
    assert loaded.weights == "untrained"
    assert "connection reset" in (loaded.notice or "")


def test_shipped_digit_models_load_trained() -> None:
    for name, size in (("lenet5", 28), ("harley", 32)):
        loaded = load_model(name)
        assert loaded.weights == "pretrained" and loaded.notice is None
        assert loaded.categories == tuple("0123456789")
        assert loaded.card is not None and loaded.card["val_accuracy"] >= 0.985
        ink = np.zeros((280, 280), dtype=np.uint8)
        ink[60:220, 130:150] = 255  # a vertical bar: a "1"
        prepared = loaded.prepare(Image.fromarray(ink))
        assert prepared.tensor.shape == (1, 1, size, size)
        result = loaded.capture(prepared)
        assert loaded.categories[result.top(1)[0][0]] == "1"


def test_zfnet_follows_the_paper() -> None:
    loaded = load_model("zfnet")
    assert loaded.weights == "untrained" and "paper" in (loaded.notice or "")
    result = capture(loaded.model, torch.randn(1, 3, 224, 224))
    convs = result.of_kind("conv")
    assert [c.shape for c in convs] == [
        (96, 110, 110), (256, 26, 26), (384, 13, 13), (384, 13, 13), (256, 13, 13),
    ]  # fmt: skip
    pools = result.of_kind("pool")
    assert [p.shape for p in pools] == [(96, 55, 55), (256, 13, 13), (256, 6, 6)]
    assert convs[0].module is not None
    conv1 = loaded.model.get_submodule(convs[0].module)
    assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)
    assert [layer.shape for layer in result.of_kind("linear")] == [(4096,), (4096,), (1000,)]


def test_unknown_model_lists_the_zoo() -> None:
    with pytest.raises(ModelError, match="choose one of lenet5, harley"):
        load_model("inception_v9")


def test_out_of_memory_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model("lenet5")
    loaded.device = torch.device("cuda")  # pretend it ran on a GPU
    calls = {"n": 0}
    real_capture = capture  # the function zoo calls, before it is patched

    def flaky(*args: Any, **kwargs: Any) -> CaptureResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_capture(*args, **kwargs)

    monkeypatch.setattr(zoo, "capture", flaky)
    result = loaded.capture(torch.zeros(1, 1, 28, 28))
    assert calls["n"] == 2
    assert loaded.device.type == "cpu"
    assert "ran out of memory" in (loaded.notice or "")
    assert result.probs.shape == (10,)


def test_out_of_memory_while_moving_the_model_falls_back_to_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_to = torch.nn.Module.to

    def to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        if args and torch.device(args[0]).type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 500.00 MiB")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    loaded = load_model("lenet5", device=torch.device("cuda"))
    assert loaded.device.type == "cpu"
    assert next(loaded.model.parameters()).device.type == "cpu"
    assert "ran out of memory loading LeNet-5" in (loaded.notice or "")
    assert loaded.capture(torch.zeros(1, 1, 28, 28)).probs.shape == (10,)


def test_host_reachable_is_bounded_even_when_the_lookup_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time

    release = threading.Event()

    def hanging_lookup(*args: object, **kwargs: object) -> object:
        release.wait(30)  # a resolver that never answers (released at the end of the test)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hanging_lookup)
    zoo.host_reachable.cache_clear()
    start = time.monotonic()
    try:
        assert zoo.host_reachable("download.example", 0.2) is False
        assert time.monotonic() - start < 5  # not the 30 s the lookup would take
    finally:
        release.set()
        zoo.host_reachable.cache_clear()


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == available_devices()[0]
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert pick_device(None).type == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available"):
            pick_device("cuda")
        with pytest.raises(DeviceError):
            load_model("lenet5", device="cuda")
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert not is_out_of_memory(ValueError("out of range"))
