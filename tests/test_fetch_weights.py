"""fetch-weights: the torch cache the app reads, offline errors, never the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model_weights

from explorer.cli import main
from explorer.models import zoo
from tests.conftest import REPO


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch cache of our own: ``$TORCH_HOME/hub/checkpoints``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    return tmp_path / "hub" / "checkpoints"


def _cached_file(checkpoints: Path, model: str) -> Path:
    """Where torchvision itself caches ``model``'s default weights: the URL's file name."""
    return checkpoints / Path(get_model_weights(model).DEFAULT.url).name


def _offline_with_cached(checkpoints: Path, model: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloads off, and a file where ``model``'s weights are cached (its content is ours)."""
    monkeypatch.setenv("EXPLORER_OFFLINE", "1")
    cached = _cached_file(checkpoints, model)
    cached.parent.mkdir(parents=True)
    return cached


def test_offline_is_one_error_line_and_exit_1(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXPLORER_OFFLINE", "1")
    assert main(["fetch-weights", "--models", "resnet18", "alexnet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: cannot download the pretrained weights of resnet18, alexnet: "
        "downloads are off (EXPLORER_OFFLINE is set)"
    ]
    assert not torch_home.exists() or not any(torch_home.iterdir())


def test_unreachable_host_is_one_error_line(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: False)
    assert main(["fetch-weights", "--models", "squeezenet1_1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "download.pytorch.org cannot be reached" in err[0]


def test_unknown_model_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch-weights", "--models", "resnet18", "lenet7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model 'lenet7'")


def test_cached_weights_are_found_offline_where_the_app_loads_them(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = _offline_with_cached(torch_home, "resnet18", monkeypatch)
    marker = {"marker": torch.arange(3.0)}
    torch.save(marker, cached)
    # zfnet and the digit nets have nothing to download; resnet18 is already there
    assert main(["fetch-weights", "--models", "resnet18", "zfnet", "lenet5"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == f"resnet18: present in {cached}"
    assert lines[1].startswith("zfnet: nothing to download")
    assert lines[2].startswith("lenet5: nothing to download")
    # and the app's loader reads that very file, offline
    state, reason = zoo.pretrained_state(zoo.torchvision_weights(zoo.ZOO["resnet18"]))
    assert reason is None and state is not None and torch.equal(state["marker"], marker["marker"])


def test_one_cached_one_missing_offline(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = _offline_with_cached(torch_home, "mobilenet_v3_small", monkeypatch)
    cached.write_bytes(b"cached")
    assert main(["fetch-weights", "--models", "mobilenet_v3_small", "squeezenet1_1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"mobilenet_v3_small: present in {cached}"]
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "squeezenet1_1" in err[0] and "mobilenet" not in err[0]


def test_download_goes_to_the_hub_cache_with_the_hash_check(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No network: torch's downloader is replaced; what it is asked to do is checked."""
    calls: list[tuple[str, str, str | None, bool]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None, progress: bool) -> None:
        calls.append((url, dst, hash_prefix, progress))
        Path(dst).write_bytes(b"x" * 2_000_000)

    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert main(["fetch-weights", "--models", "squeezenet1_1"]) == 0
    url = get_model_weights("squeezenet1_1").DEFAULT.url
    cached = _cached_file(torch_home, "squeezenet1_1")
    # the sha256 prefix torchvision puts in the file name, as torch.hub checks it
    assert calls == [(url, str(cached), cached.stem.rsplit("-", 1)[1], True)]
    assert capsys.readouterr().out.splitlines() == [
        f"squeezenet1_1: downloading {url}",
        f"squeezenet1_1: saved {cached} (2 MB)",
    ]


def test_failed_download_is_one_error_line(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def reset(url: str, dst: str, hash_prefix: str | None, progress: bool) -> None:
        raise OSError("connection reset by peer")

    monkeypatch.setenv("EXPLORER_OFFLINE", "0")
    monkeypatch.setattr(zoo, "host_reachable", lambda host, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", reset)
    assert main(["fetch-weights", "--models", "squeezenet1_1", "resnet18", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 2 of 2 downloads failed")
    assert "connection reset by peer" in err[0]


def test_entry_point_offline_has_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "fetch-weights"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "TORCH_HOME": str(tmp_path), "EXPLORER_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: cannot download the pretrained weights of alexnet, vgg11, vgg16, googlenet, "
        "resnet18, resnet50, mobilenet_v3_small, squeezenet1_1: downloads are off "
        "(EXPLORER_OFFLINE is set)"
    ]
