"""Own weights: weights_only loading, refusal of code-running pickles, mismatch messages."""

from __future__ import annotations

import io
import pathlib
from pathlib import Path

import pytest
import torch
from torch import nn

from explorer.models.nets import LeNet5
from explorer.models.weights import (
    WeightsError,
    check_state_dict,
    load_weights_into,
    read_state_dict,
)
from explorer.models.zoo import ModelError, load_model


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (pathlib.Path.touch, (self.marker,))


def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Exploit(marker)}, evil)
    with pytest.raises(WeightsError, match=r"refused to load evil\.pth"):
        read_state_dict(evil)
    with pytest.raises(ModelError, match="only plain tensors"):
        load_model("lenet5", weights=evil)
    assert not marker.exists()
    # the same file unpickled without the guard would indeed run the code
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_own_weights_load_exactly(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = LeNet5()
    path = tmp_path / "mine.pth"
    torch.save(source.state_dict(), path)
    loaded = load_model("lenet5", weights=path)
    assert loaded.weights == str(path)
    assert loaded.weights_label == "own weights (mine.pth)"
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)


def test_checkpoint_wrappers_and_dataparallel_prefix_accepted() -> None:
    source = LeNet5()
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    buffer = io.BytesIO()
    torch.save(wrapped, buffer)
    model = load_weights_into(LeNet5(), buffer.getvalue())
    assert isinstance(model, LeNet5)
    assert torch.equal(model.fc3.bias, source.fc3.bias)


def test_wrong_architecture_lists_what_did_not_match(tmp_path: Path) -> None:
    class Other(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 6, 5)
            self.fc3 = nn.Linear(84, 11)

    path = tmp_path / "other.pth"
    torch.save(Other().state_dict(), path)
    with pytest.raises(WeightsError) as info:
        load_weights_into(LeNet5(), path)
    message = str(info.value)
    assert "missing 8: conv1.weight" in message
    assert "unexpected 2: stem.weight, stem.bias" in message
    assert "wrong shape 2: fc3.weight (11, 84) (model needs (10, 84))" in message


def test_check_state_dict_accepts_an_exact_match() -> None:
    model = LeNet5()
    check_state_dict(model, model.state_dict())


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not a torch file at all", "not a PyTorch weights file"),
        (b"", "not a PyTorch weights file"),
    ],
)
def test_garbage_bytes_are_a_clear_error(payload: bytes, match: str) -> None:
    with pytest.raises(WeightsError, match=match):
        read_state_dict(payload)


def test_non_state_dict_content_is_refused() -> None:
    buffer = io.BytesIO()
    torch.save([torch.zeros(2)], buffer)
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        read_state_dict(buffer.getvalue())
    buffer = io.BytesIO()
    torch.save({"w": 3}, buffer)
    with pytest.raises(WeightsError, match="not a named tensor"):
        read_state_dict(buffer.getvalue())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")


class _ShellExploit:
    """The classic payload: a shell command run by os.system when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_os_system_pickle_is_refused_as_code(tmp_path: Path) -> None:
    marker = tmp_path / "shell-ran"
    evil = tmp_path / "shell.pth"
    torch.save({"w": torch.zeros(1), "payload": _ShellExploit(marker)}, evil)
    with pytest.raises(WeightsError, match=r"asks to run \S*system"):
        read_state_dict(evil)
    assert not marker.exists()


def test_an_image_passed_as_weights_is_a_clear_error(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), (10, 200, 30)).save(png)
    with pytest.raises(WeightsError, match=r"photo\.png is not a PyTorch weights file"):
        read_state_dict(png)
