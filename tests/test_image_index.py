"""The image index: top-k against a brute-force pass, resuming, bounds, hostile files, the CLI."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from explorer.analysis.capture import capture
from explorer.analysis.imageindex import (
    MAX_WARNINGS,
    ImageIndex,
    ImageIndexError,
    conv_layers,
    find_images,
    index_folder,
    load_index,
    save_index,
)
from explorer.bench.imageindex import QUICK_IMAGES, index_images_cost, synthetic_photos
from explorer.inputs.preprocess import preprocess_input
from explorer.inputs.spec import photo_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = photo_spec(40, 56)  # not square: rows and columns cannot be swapped unseen
LAYERS = ["conv1", "conv2"]


class Tiny(nn.Module):
    """Two convs, each followed by an in-place ReLU (one module called twice)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 5, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        logits: torch.Tensor = self.fc(self.pool(x).flatten(1))
        return logits


def prepare(path: Path) -> torch.Tensor:
    return preprocess_input(path, SPEC).tensor


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return Tiny().eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 coloured shapes (PNG, JPEG, WebP, some in sub-folders) and six files to skip."""
    root = tmp_path_factory.mktemp("photos")
    synthetic_photos(root, 40, side=64, formats=(".png", ".jpg", ".webp"))
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, not counted")
    os.symlink(root / "shape_00001.jpg", root / "linked.jpg")  # links are not followed
    # names an index could not record (and a server would refuse) are left out
    picture = (root / "shape_00001.jpg").read_bytes()
    (root / "back\\slash.jpg").write_bytes(picture)
    Path(os.fsdecode(bytes(root) + b"/not-utf8-\xff.jpg")).write_bytes(picture)
    return root


def run(model: nn.Module, folder: Path, out: Path, **settings: Any) -> ImageIndex:
    options: dict[str, Any] = {"layers": LAYERS, "k": 5, "batch_size": 4, "progress": False}
    options.update(settings)
    return index_folder(
        model, prepare, folder, out, model_name="tiny", weights="tiny|seed0|", **options
    )


def brute_force(model: nn.Module, folder: Path, layer: str) -> tuple[np.ndarray, ...]:
    """Every readable image's whole map per channel, by the app's capture: peak and argmax."""
    peaks, units, paths = [], [], []
    for entry in find_images(folder):
        try:
            x = prepare(folder / entry.path)
        except ValueError:
            continue
        maps = capture(model, x, [layer])[layer].tensor.numpy()  # (C, H, W), all of it
        flat = maps.reshape(maps.shape[0], -1)
        peaks.append(flat.max(axis=1))
        units.append(np.stack(np.unravel_index(flat.argmax(axis=1), maps.shape[1:]), axis=-1))
        paths.append(entry.path)
    return np.array(peaks), np.array(units), np.array(paths)


def test_top_k_is_the_brute_force_ranking(model: nn.Module, folder: Path, tmp_path: Path) -> None:
    warnings: list[str] = []
    index = run(model, folder, tmp_path / "tiny.npz", warn=warnings.append)
    assert index.images == 40 and index.skipped == 2  # broken.jpg, empty.png; not the link
    assert sorted(w.split()[2].rstrip(":") for w in warnings[:2]) == ["broken.jpg", "empty.png"]
    assert len(warnings) == 3 and "2 unreadable" in warnings[-1]
    paths = [f.path for f in index.files]
    assert "linked.jpg" not in paths and "set0/shape_00000.png" in paths
    for layer in LAYERS:
        peaks, units, names = brute_force(model, folder, layer)
        for channel in range(peaks.shape[1]):
            order = sorted(range(len(names)), key=lambda i: (-peaks[i, channel], i))[:5]
            found = index.tops(layer, channel)
            assert [paths[t.index] for t in found] == [names[i] for i in order]
            np.testing.assert_allclose(
                [t.peak for t in found], peaks[order, channel], rtol=1e-5, atol=1e-6
            )
            assert [t.unit for t in found] == [tuple(units[i, channel]) for i in order]
    # the saved file reads back the same
    back = load_index(tmp_path / "tiny.npz")
    assert back.files == index.files and list(back.layers) == LAYERS
    for layer in LAYERS:
        assert back.tops(layer, 3) == index.tops(layer, 3)


def test_keeps_only_k_a_channel_whatever_the_folder(
    model: nn.Module, folder: Path, tmp_path: Path
) -> None:
    index = run(model, folder, tmp_path / "k3.npz", k=3, layers=None)
    assert list(index.layers) == conv_layers(model) == LAYERS
    for tops in index.layers.values():
        assert tops.values.shape == tops.images.shape == (tops.channels, 3)
        assert tops.units.shape == (tops.channels, 3, 2)
    few = run(model, folder, tmp_path / "k100.npz", k=100)
    assert all(len(few.tops("conv2", c)) == 40 for c in range(8))  # fewer images than k


def test_an_interrupted_run_continues_to_the_same_index(
    model: nn.Module, folder: Path, tmp_path: Path
) -> None:
    whole = run(model, folder, tmp_path / "whole.npz")
    calls = [0]

    def stops_after_13(path: Path) -> torch.Tensor:
        calls[0] += 1
        if calls[0] > 13:
            raise KeyboardInterrupt
        return prepare(path)

    out = tmp_path / "resumed.npz"
    with pytest.raises(KeyboardInterrupt):
        index_folder(
            model,
            stops_after_13,
            folder,
            out,
            model_name="tiny",
            weights="tiny|seed0|",
            layers=LAYERS,
            k=5,
            batch_size=4,
            progress=False,
        )
    partial = load_index(out)
    assert len(partial.files) == 12  # three whole batches; the fourth was cut
    read: list[Path] = []

    def counting(path: Path) -> torch.Tensor:
        read.append(path)
        return prepare(path)

    resumed = index_folder(
        model,
        counting,
        folder,
        out,
        model_name="tiny",
        weights="tiny|seed0|",
        layers=LAYERS,
        k=5,
        batch_size=4,
        progress=False,
    )
    assert len(read) == 42 - 12  # only what the first run had not read
    assert resumed.files == whole.files
    for layer in LAYERS:
        a, b = resumed.layers[layer], whole.layers[layer]
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.units, b.units)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
    again = run(model, folder, out)  # nothing left: the same index
    assert again.files == whole.files
    with pytest.raises(ImageIndexError, match="another model"):
        index_folder(model, prepare, folder, out, model_name="other", weights="x", layers=LAYERS)
    with pytest.raises(ImageIndexError, match="keeps 5 images"):
        run(model, folder, out, k=6)


def interrupted(model: nn.Module, folder: Path, out: Path, after: int) -> None:
    """A run stopped (Ctrl-C) while reading image ``after + 1``: ``out`` holds the rest."""
    calls = [0]

    def stops(path: Path) -> torch.Tensor:
        calls[0] += 1
        if calls[0] > after:
            raise KeyboardInterrupt
        return prepare(path)

    with pytest.raises(KeyboardInterrupt):
        index_folder(
            model, stops, folder, out, model_name="tiny", weights="tiny|seed0|",
            layers=LAYERS, k=5, batch_size=4, progress=False,
        )  # fmt: skip


def test_a_file_changed_since_the_first_run_is_not_continued(
    model: nn.Module, folder: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "photos"
    shutil.copytree(folder, copy, symlinks=True)
    out = tmp_path / "changed.npz"
    interrupted(model, copy, out, after=13)
    read = [f.path for f in load_index(out).files]
    assert len(read) == 12 and "shape_00020.png" not in read
    # a file not read yet may change: it is read as it is now
    (copy / "shape_00020.png").touch()
    first, second = copy / read[0], copy / read[1]
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # changed in place
    message = "1 file(s) changed since this index was started: start again with a new --out"
    with pytest.raises(ImageIndexError, match=re.escape(message)):
        run(model, copy, out)
    second.unlink()  # removed
    with pytest.raises(ImageIndexError, match=r"^2 file"):
        run(model, copy, out)
    assert [f.path for f in load_index(out).files] == read  # the index is left as it was
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    shutil.copy(copy / read[2], second)  # replaced: the same name, another picture
    with pytest.raises(ImageIndexError, match=r"^1 file"):
        run(model, copy, out)


def test_unreadable_images_are_reported_a_line_each_up_to_a_cap(
    model: nn.Module, tmp_path: Path
) -> None:
    root = tmp_path / "bad"
    synthetic_photos(root, 3, side=32)
    for i in range(MAX_WARNINGS + 5):
        (root / f"bad_{i:02d}.png").write_bytes(b"\x89PNG broken")
    warnings: list[str] = []
    index = run(model, root, tmp_path / "bad.npz", warn=warnings.append)
    assert index.images == 3 and index.skipped == MAX_WARNINGS + 5
    assert sum(w.startswith("warning: skipped bad_") for w in warnings) == MAX_WARNINGS
    assert len(warnings) == MAX_WARNINGS + 2  # "more … not listed" and the count
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "a.jpg").write_bytes(b"junk")
    with pytest.raises(ImageIndexError, match="could be read"):
        run(model, only_bad, tmp_path / "none.npz")
    assert not (tmp_path / "none.npz").exists()


# --- hostile index files --------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_index(model: nn.Module, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "good.npz"
    run(model, folder, out)
    return out


def rewritten(source: Path, target: Path, **members: bytes) -> Path:
    """A copy of an index with some ``.npy`` members replaced (or removed: ``b""``)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in members:
                new.writestr(info, old.read(info))
            elif members[name]:
                new.writestr(info.filename, members[name])
    return target


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def header_of(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as archive:
        data = np.load(io.BytesIO(archive.read("header.npy")))
    header: dict[str, object] = json.loads(data.tobytes())
    return header


def with_header(good: Path, target: Path, **changes: object) -> Path:
    header = {**header_of(good), **changes}
    text = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return rewritten(good, target, header=npy(text))


def test_hostile_index_files_are_refused_with_a_clear_error(
    good_index: Path, tmp_path: Path
) -> None:
    data = good_index.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def case(name: str, path: Path, message: str) -> None:
        cases[name] = (path, message)

    (tmp_path / "half.npz").write_bytes(data[: len(data) // 2])
    case("truncated", tmp_path / "half.npz", "not an image index")
    (tmp_path / "text.npz").write_text("hello")
    case("not npz", tmp_path / "text.npz", "not an image index")
    (tmp_path / "empty.npz").write_bytes(b"")
    case("empty", tmp_path / "empty.npz", "not an image index")
    case("a member missing", rewritten(good_index, tmp_path / "m.npz", units_1=b""), "no units_1")
    # a header declaring a huge array: refused from its .npy header, nothing allocated
    huge = npy(np.zeros(4, np.float32)).replace(b"(4,)", b"(4000000000000,)")
    case("huge array", rewritten(good_index, tmp_path / "h.npz", values_0=huge), "shaped")
    case(
        "huge layer",
        with_header(good_index, tmp_path / "hl.npz", layers=[{"name": "c", "channels": 10**9}]),
        "channels must be",
    )
    case("huge file list", with_header(good_index, tmp_path / "hf.npz", files=10**12), "files")
    case("huge k", with_header(good_index, tmp_path / "hk.npz", k=10**6), "k must be")
    many = [{"name": f"l{i}", "channels": 65_536, "map": [8, 8]} for i in range(80)]
    case("too many entries", with_header(good_index, tmp_path / "te.npz", layers=many), "entries")
    case("version", with_header(good_index, tmp_path / "v.npz", version=99), "version 99")
    case("foreign", with_header(good_index, tmp_path / "f.npz", format="zip"), "no CNN Explorer")
    pickled = npy(np.array([{"a": 1}], dtype=object))
    case("pickle", rewritten(good_index, tmp_path / "p.npz", images_0=pickled), "holds object")
    escape = np.frombuffer(json.dumps([["../../etc/passwd", 1, 1, True]] * 42).encode(), np.uint8)
    case(
        "path escape",
        rewritten(good_index, tmp_path / "e.npz", files=npy(escape)),
        "leaves the folder",
    )
    secret = np.frombuffer(json.dumps([["notes.txt", 1, 1, True]] * 42).encode(), np.uint8)
    case(
        "not an image",
        rewritten(good_index, tmp_path / "s.npz", files=npy(secret)),
        "a file that is not an image: 'notes.txt'",
    )
    case(
        "weights",
        with_header(good_index, tmp_path / "w.npz", weights="pretrained"),
        "weights must read 'tiny|<weights>|…'",
    )
    with zipfile.ZipFile(good_index) as archive:
        images = np.load(io.BytesIO(archive.read("images_0.npy")))
        units = np.load(io.BytesIO(archive.read("units_0.npy")))
    case(
        "image number",
        rewritten(good_index, tmp_path / "i.npz", images_0=npy(images + 1000)),
        "out of range",
    )
    case(
        "unit outside",
        rewritten(good_index, tmp_path / "u.npz", units_0=npy(units + 500)),
        "outside its",
    )
    for name, (path, message) in cases.items():
        with pytest.raises(ImageIndexError, match=message) as caught:
            load_index(path)
        assert "\n" not in str(caught.value), name
    assert load_index(good_index).images == 40  # the original still reads


def test_save_is_atomic_and_leaves_no_temporary_file(
    good_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = load_index(good_index)
    out = tmp_path / "copy.npz"
    save_index(index, out)
    before = out.read_bytes()

    def fails(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fails)
    with pytest.raises(OSError, match="disk full"):
        save_index(index, out)
    assert out.read_bytes() == before  # the old index is whole
    assert [p.name for p in tmp_path.iterdir()] == ["copy.npz"]


# --- the command line -----------------------------------------------------------------------


def cli(*args: str, prefix: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """``index-images`` in a child process; ``prefix`` runs it under another command."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "explorer", "index-images", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "EXPLORER_OFFLINE": "1", **env},
    )


def test_the_command_indexes_a_folder_with_resnet18(folder: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    shutil.copytree(folder, small, symlinks=True)
    out = tmp_path / "small.npz"
    layers = ["conv1", "layer1.0.conv1"]
    done = cli(str(small), "--model", "resnet18", "--weights", "untrained", "--out", str(out),
               "--layers", *layers, "--top-k", "4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "40 images (2 skipped), 2 layers, top 4 per channel" in done.stdout
    assert "image/s" in done.stderr  # the progress bar
    index = load_index(out)
    assert index.model == "resnet18" and index.weights == "resnet18|untrained|"
    assert index.folder == str(small.resolve()) and index.input_size == (224, 224)
    assert list(index.layers) == layers
    assert index.layers["layer1.0.conv1"].values.shape == (64, 4)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


BOMB_SIDE = 100_000
"""The bomb PNG's declared width and height: 10^10 RGB pixels, 30 GB decoded."""
# The address-space cap of the capped run, measured on the 2-core dev VM (torch 2.14.1+cu130,
# resnet18 untrained, 2 layers, 36 JPEGs of 224×224, OMP_NUM_THREADS=2, --device cpu):
# - a plain `python -c "import torch"` needs 3,181 MiB of address space (VmPeak 3,257,000 kB:
#   the CUDA build maps its libraries though it runs on the CPU); below that it cannot import;
# - this run's VmPeak is 4,138,644 kB (4,042 MiB; peak RSS about 1,000 MiB); under a 3,900 MiB
#   cap its conv2d fails to allocate, under 3,600 MiB torchvision does not import;
# - 5,120 MiB leaves about 1 GiB above the run's peak, and is under a fifth of what an unbounded
#   decode of the bomb needs: 100,000 × 100,000 pixels × 3 bytes = 30,000,000,000 bytes (27.9 GiB).
INDEX_CAP_BYTES = 5 * 2**30


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
def test_the_command_under_a_memory_cap_skips_a_bomb_in_one_line(tmp_path: Path) -> None:
    assert BOMB_SIDE * BOMB_SIDE * 3 > 5 * INDEX_CAP_BYTES  # decoding it would hit the cap
    root = tmp_path / "photos"
    readable = {
        p.relative_to(root).as_posix()
        for p in synthetic_photos(root, 36, side=224, formats=(".jpg",))
    }
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(b"\x00" * (1 + 3 * BOMB_SIDE) * 4)  # four rows of data: about 1 kB
    bomb = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    (root / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bomb)
    whole = (root / "shape_00001.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "notes.jpg").write_text("a text file named as a picture\n")
    out = tmp_path / "capped.npz"
    done = cli(str(root), "--model", "resnet18", "--weights", "untrained", "--device", "cpu",
               "--out", str(out), "--layers", "conv1", "layer1.0.conv1", "--top-k", "4",
               "--no-progress", prefix=("prlimit", f"--as={INDEX_CAP_BYTES}"),
               OMP_NUM_THREADS="2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the cap was not hit: nothing failed to allocate, no picture was too large to decode here
    for sign in ("alloc", "MemoryError", "failed to map", "too large or too intricate"):
        assert sign not in done.stderr, done.stderr
    index = load_index(out)
    assert {f.path for f in index.files if f.ok} == readable and index.images == len(readable)
    assert {f.path for f in index.files if not f.ok} == {"bomb.png", "truncated.jpg", "notes.jpg"}
    bomb_lines = [line for line in done.stderr.splitlines() if "bomb.png" in line]
    assert len(bomb_lines) == 1, done.stderr
    assert bomb_lines[0].startswith("warning: skipped bomb.png: the image is ")
    assert f"{BOMB_SIDE * BOMB_SIDE:,} pixels" in bomb_lines[0]
    assert f"{len(readable)} images (3 skipped)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet19"], "unknown model 'resnet19'"),
        (["--model", "resnet18", "--layers", "conv9"], "unknown layer(s) conv9"),
        (["--model", "resnet18", "--top-k", "0"], "--top-k must be 1…100"),
        (["--model", "resnet18", "--out", "/no/such/dir/x.npz"], "/no/such/dir is not a folder"),
    ],
)
def test_bad_arguments_are_one_error_line(
    folder: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = cli(str(folder), "--weights", "untrained", "--out", str(tmp_path / "x.npz"), *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "x.npz").exists()


def test_folders_without_images_are_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    for folder, message in ((tmp_path / "empty", "no images"), (tmp_path / "nope", "not a folder")):
        done = cli(str(folder), "--model", "resnet18", "--weights", "untrained")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ") and message in lines[0]


def test_inputs_of_another_shape_are_skipped(
    model: nn.Module, folder: Path, tmp_path: Path
) -> None:
    other = photo_spec(32, 32)

    def uneven(path: Path) -> torch.Tensor:
        spec = other if path.stem.endswith("7") else SPEC
        return preprocess_input(path, spec).tensor

    warnings: list[str] = []
    index = index_folder(
        model, uneven, folder, tmp_path / "u.npz", model_name="tiny", weights="w",
        layers=LAYERS, progress=False, warn=warnings.append,
    )  # fmt: skip
    skipped = {f.path for f in index.files if not f.ok}
    assert skipped - {"broken.jpg", "empty.png"} == {
        f"shape_{i:05d}{('.png', '.jpg', '.webp')[i % 3]}" for i in range(7, 40, 10)
    }
    assert any("prepared as (1, 3, 32, 32)" in w for w in warnings)


def test_the_quick_bench_is_a_check_on_few_images_not_a_figure() -> None:
    results, notes = index_images_cost(quick=True)
    assert results == dict.fromkeys(
        ["index_images_s_resnet18_1000", "index_images_peak_rss_mb_resnet18_1000"]
    )
    assert QUICK_IMAGES == 100
    for key, note in notes.items():
        assert note.startswith("not measured with --quick: a check on 100 images only gave "), key
        assert float(note.rsplit(" ", 1)[1]) > 0
