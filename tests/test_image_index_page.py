"""The channel card with an image index: the server's indexes, the pictures, the Image page."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explorer.analysis.imageindex as imageindex
from explorer.analysis.capture import CaptureResult
from explorer.analysis.explain import receptive_field
from explorer.analysis.imageindex import ImageIndex, index_folder, load_index
from explorer.bench.imageindex import synthetic_photos
from explorer.hosting.scheduler import Job
from explorer.models.zoo import LoadedModel, load_model
from explorer.views.cache import forget_shared
from explorer.views.imageindex import ENV_VAR, IndexedTops, indexed_tops_job, served_indexes

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["conv1", "layer1.0.conv1"]
ORANGE = (255, 127, 14)


@pytest.fixture(scope="module")
def resnet() -> LoadedModel:
    return load_model("resnet18", "untrained")


@pytest.fixture(scope="module")
def indexed(resnet: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 photos and their index of ResNet-18 (untrained): ``(folder, index file)``."""
    root = tmp_path_factory.mktemp("index")
    folder = root / "shapes"
    synthetic_photos(folder, 12, side=96)
    out = root / "shapes.resnet18.npz"
    index_folder(
        resnet.model,
        lambda path: resnet.prepare(path).tensor,
        folder,
        out,
        model_name="resnet18",
        weights=resnet.cache_key,
        layers=LAYERS,
        progress=False,
    )
    return folder, out


def tops_of(
    loaded: LoadedModel, folder: Path, layer: str, channel: int
) -> IndexedTops | str | None:
    """What the card gets: the job's answer (run here), or why the index does not apply."""
    result: CaptureResult = loaded.capture(loaded.prepare(folder / "shape_00001.jpg"))
    job = indexed_tops_job(loaded, result, layer, channel)
    if not isinstance(job, Job):
        return job
    assert job.cost is not None and job.cost.passes == 9  # costed: one pass a picture
    answer: IndexedTops = job.run(lambda _done: None)
    return answer


def test_the_card_shows_the_indexs_top_images_with_the_peak_unit_boxed(
    resnet: LoadedModel, indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, out = indexed
    monkeypatch.setenv(ENV_VAR, str(out))
    forget_shared()
    found = tops_of(resnet, folder, "layer1.0.conv1", 5)
    assert isinstance(found, IndexedTops) and found.note is None
    # the folder's name only: where it lies on the server is not the students' business
    assert found.what == "the 12 images of shapes (an image index)"
    index = load_index(out)
    tops = index.tops("layer1.0.conv1", 5)
    assert len(found.pictures) == len(tops) == 9
    for shown, top in zip(found.pictures, tops, strict=True):
        path = index.files[top.index].path
        assert shown.caption == f"{path} · peak {top.peak:.3g}" and shown.found == top
        # the picture is the file as the model saw it, boxed at the receptive field of the
        # unit that peaked (the top-left corner of the clipped box is orange)
        box = receptive_field(resnet.model, "layer1.0.conv1", *top.unit).clipped(224, 224)
        assert shown.picture.shape == (224, 224, 3)
        assert tuple(shown.picture[box.top, box.left]) == ORANGE
        inside = resnet.prepare(folder / path).display
        assert np.array_equal(
            shown.picture[box.top + 2, box.left + 2], inside[box.top + 2, box.left + 2]
        )


def test_an_index_that_does_not_apply_says_why(
    resnet: LoadedModel,
    indexed: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, out = indexed
    monkeypatch.setenv(ENV_VAR, str(out))
    forget_shared()
    assert tops_of(load_model("vgg11", "untrained"), folder, "features.0", 0) is None
    note = tops_of(resnet, folder, "layer2.0.conv1", 0)
    assert isinstance(note, str) and "does not hold layer2.0.conv1" in note
    pretrained = LoadedModel(resnet.spec, resnet.model, resnet.device, "pretrained", ())
    note = tops_of(pretrained, folder, "conv1", 0)
    assert isinstance(note, str) and "other weights" in note and "untrained" in note
    # the folder moved away: say so (by its name), and the card falls back to the samples
    shutil.move(str(folder), str(tmp_path / "away"))
    try:
        forget_shared()
        gone = tops_of(resnet, tmp_path / "away", "conv1", 0)
        assert gone == (
            f"The folder shapes of the image index {out.name} is gone: showing the sample photos."
        )
    finally:
        shutil.move(str(tmp_path / "away"), str(folder))
    # a changed file: say which
    first = load_index(out).tops("conv1", 0)[0]
    changed = folder / load_index(out).files[first.index].path
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        forget_shared()
        found = tops_of(resnet, folder, "conv1", 0)
        assert isinstance(found, IndexedTops) and len(found.pictures) == 8
        assert found.note is not None and "changed since it was indexed" in found.note
    finally:
        os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_bad_index_files_log_one_line_each_and_are_ignored(
    indexed: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _folder, out = indexed
    junk = tmp_path / "junk.npz"
    junk.write_text("not an index")
    twice = tmp_path / "twice.npz"
    shutil.copy(out, twice)
    value = os.pathsep.join([str(tmp_path / "missing.npz"), str(junk), str(out), str(twice)])
    with caplog.at_level(logging.WARNING, logger="explorer.views.imageindex"):
        for _ in range(3):  # every rerun asks again: still one line a file
            found = served_indexes(value)
            assert list(found) == ["resnet18"] and found["resnet18"].path == out
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "missing.npz" in lines[0] and "junk.npz is not an image index" in lines[1]
    assert "twice.npz is a second index of resnet18" in lines[2]
    assert all(line.startswith(f"{ENV_VAR}: ") and line.endswith("ignored") for line in lines)
    # a file rebuilt while the server runs is read again
    shutil.copy(out, junk)
    os.utime(junk, ns=(junk.stat().st_atime_ns, junk.stat().st_mtime_ns + 10**9))
    assert served_indexes(str(junk))["resnet18"].path == junk


def test_the_image_page_card_shows_the_index(
    indexed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, out = indexed
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(junk), str(out)]))
    forget_shared()
    at = AppTest.from_file(str(REPO / "pages" / "image.py"), default_timeout=240).run()
    assert not at.exception
    at.toggle(key="image_card").set_value(True).run()
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    assert "**Top inputs** among the 12 images of shapes (an image index)" in markdown
    assert str(folder.parent) not in markdown and "sample photos" not in markdown
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    shown = [c for c in captions if " · peak " in c]
    assert len(shown) == 9 and all(c.startswith(("shape_", "set")) for c in shown)
    # the folder gone: the card says so and ranks the shipped sample photos instead
    shutil.move(str(folder), str(tmp_path / "away"))
    try:
        at.run()
    finally:
        shutil.move(str(tmp_path / "away"), str(folder))
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    assert "**Top inputs** among the 4 sample photos only (a small set)" in markdown
    notes = [c.value for c in at.caption]
    assert (
        f"The folder shapes of the image index {out.name} is gone: showing the sample "
        "photos." in notes
    )
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert not any(" · peak " in c for c in captions)


def planted(good: Path, target: Path, **changes: object) -> Path:
    """A copy of the index ``good`` with some header fields changed."""
    with zipfile.ZipFile(good) as old:
        header = json.loads(np.load(io.BytesIO(old.read("header.npy"))).tobytes())
        buffer = io.BytesIO()
        text = json.dumps({**header, **changes}).encode()
        np.save(buffer, np.frombuffer(text, dtype=np.uint8))
        with zipfile.ZipFile(target, "w") as new:
            for info in old.infolist():
                data = buffer.getvalue() if info.filename == "header.npy" else old.read(info)
                new.writestr(info.filename, data)
    return target


def test_an_index_with_malformed_weights_is_ignored_not_a_crash(
    resnet: LoadedModel,
    indexed: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder, out = indexed
    bad = planted(out, tmp_path / "bad.npz", weights="pretrained")  # no "|"
    monkeypatch.setenv(ENV_VAR, str(bad))
    with caplog.at_level(logging.WARNING, logger="explorer.views.imageindex"):
        assert tops_of(resnet, folder, "conv1", 0) is None  # the card keeps the samples
    assert "weights must read 'resnet18|<weights>|…'; ignored" in caplog.text
    # well formed but of other weights: named in the note
    other = planted(out, tmp_path / "other.npz", weights="resnet18|mine.pth|abc")
    monkeypatch.setenv(ENV_VAR, str(other))
    note = tops_of(resnet, folder, "conv1", 0)
    assert isinstance(note, str) and "other weights of resnet18 (mine.pth)" in note


def test_sessions_asking_at_once_share_one_read_of_the_index(
    indexed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folder, out = indexed
    fresh = tmp_path / "fresh.npz"  # a file this process has not read yet
    shutil.copy(out, fresh)
    reads: list[Path] = []
    real = imageindex.load_index

    def slow(path: Path) -> ImageIndex:
        reads.append(path)
        time.sleep(0.5)  # a big file: the others ask while it is read
        return real(path)

    monkeypatch.setattr(imageindex, "load_index", slow)
    together = threading.Barrier(7)
    found: list[ImageIndex] = []

    def session() -> None:
        together.wait(timeout=30)
        found.append(served_indexes(str(fresh))["resnet18"].index)

    threads = [threading.Thread(target=session) for _ in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert reads == [fresh]  # one read ...
    assert len(found) == 7 and all(index is found[0] for index in found)  # ... shared
