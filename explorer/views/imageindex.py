"""The channel card's top inputs from an image index, when the server is given one.

``EXPLORER_IMAGE_INDEX`` names index files (``python -m explorer index-images``), several
separated by ``os.pathsep``, one per model. Each is read once per process (again when the file
changes) through :func:`explorer.analysis.imageindex.load_index`, which checks it as untrusted
input; a file that cannot be used logs one line and is ignored, and the card keeps the shipped
set. Sessions that ask for the same file at once wait for one read and share it. The pictures
are read from the indexed folder when a card shows them, as a job for the heavy-work scheduler
(:func:`indexed_tops_job`: at most ``k`` ≤ 100 files, each through the app's bounded image
reader), outlined at the unit that peaked, and kept in the scheduler's cache. The card names
the folder, never its path on the server.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from explorer.analysis.capture import CaptureResult
from explorer.analysis.imageindex import (
    IMAGE_SUFFIXES,
    MAX_FILE_BYTES,
    ImageIndex,
    ImageIndexError,
    IndexedFile,
)
from explorer.hosting.scheduler import Job, Progress, model_profile
from explorer.inputs.preprocess import ImageError
from explorer.models.zoo import LoadedModel
from explorer.views.channel import TopPicture, outlined

ENV_VAR = "EXPLORER_IMAGE_INDEX"
MAX_INDEXES = 32
"""Index files the variable may name (one per model: the zoo is smaller)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedIndex:
    """An index the server was given.

    Attributes:
        path: Its file.
        key: What tells this version of the file apart (path, size, modification time).
        index: Its contents.
    """

    path: Path
    key: str
    index: ImageIndex


@dataclass(frozen=True)
class IndexedTops:
    """A channel's top images from an index, as the card shows them.

    Attributes:
        pictures: The images that could be read, best first, the peak unit outlined.
        what: The set in words (the folder's name and its number of images).
        note: What could not be shown and why (files changed or gone), or None.
    """

    pictures: tuple[TopPicture, ...]
    what: str
    note: str | None = None


class _Shelf:
    """The last version read of each index file, and which bad files were already logged.

    A file (up to 512 MB) is read under its own lock: sessions that ask for it at once wait
    for the one read and share its answer, and other files are not held up.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.read: dict[Path, tuple[str, ImageIndex | None]] = {}  # path: (version, index)
        self.reading: dict[Path, threading.Lock] = {}
        self.logged: set[str] = set()

    def log_once(self, key: str, message: str) -> None:
        with self.lock:
            if key in self.logged:
                return
            self.logged.add(key)
        _log.warning(message)

    def load(self, path: Path) -> ServedIndex | None:
        from explorer.analysis.imageindex import load_index

        try:
            stat = path.stat()
        except OSError as exc:
            self.log_once(f"{path}|missing", f"{ENV_VAR}: {path}: {exc.strerror}; ignored")
            return None
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        with self.lock:
            version, index = self.read.get(path, ("", None))
            reading = self.reading.setdefault(path, threading.Lock())
        if version != key:  # new, or rewritten since (an older version is let go)
            with reading:
                with self.lock:  # another session may have read it while this one waited
                    version, index = self.read.get(path, ("", None))
                if version != key:
                    try:
                        index = load_index(path)
                    except ImageIndexError as exc:
                        self.log_once(key, f"{ENV_VAR}: {exc}; ignored")
                        index = None
                    with self.lock:
                        self.read[path] = (key, index)
        return None if index is None else ServedIndex(path, key, index)


_SHELF = _Shelf()


def served_indexes(value: str | None = None) -> dict[str, ServedIndex]:
    """The usable indexes named by ``value`` (default: ``$EXPLORER_IMAGE_INDEX``), by model.

    A file that cannot be used, or a second one for the same model, logs one line and is
    left out.
    """
    text = os.environ.get(ENV_VAR, "") if value is None else value
    paths = [Path(part.strip()).expanduser() for part in text.split(os.pathsep) if part.strip()]
    if len(paths) > MAX_INDEXES:
        _SHELF.log_once(f"many|{text}", f"{ENV_VAR}: only the first {MAX_INDEXES} files are read")
    found: dict[str, ServedIndex] = {}
    for path in paths[:MAX_INDEXES]:
        served = _SHELF.load(path)
        if served is None:
            continue
        model = served.index.model
        if model in found:
            _SHELF.log_once(
                f"twice|{served.key}",
                f"{ENV_VAR}: {path} is a second index of {model}; ignored",
            )
            continue
        found[model] = served
    return found


def indexed_tops_job(
    loaded: LoadedModel, result: CaptureResult, layer: str, channel: int
) -> Job | str | None:
    """The channel's top images from the server's index of ``loaded``'s model, as a job.

    Its answer is an :class:`IndexedTops`. It reads at most the index's ``k`` (≤ 100) files,
    each through the app's bounded image reader, and is costed as one pass to ``layer`` a
    picture (reading, preparing and outlining one is of that order).

    Returns:
        The job; or a sentence why the model's index does not apply here (other weights, a
        layer it does not hold, its folder gone), to show before the shipped set; or None
        when the server has no index of this model.
    """
    served = served_indexes().get(loaded.name)
    if served is None:
        return None
    index = served.index
    name = served.path.name
    if index.weights != loaded.cache_key:
        other = index.weights.partition("|")[2].partition("|")[0] or "unnamed"
        return (
            f"The image index {name} was made with other weights of {loaded.name} "
            f"({other}): showing the sample photos."
        )
    if layer not in index.layers:
        return f"The image index {name} does not hold {layer}: the sample photos."
    if not 0 <= channel < index.layers[layer].channels:
        return f"The image index {name} has no channel {channel} of {layer}."
    if not Path(index.folder).is_dir():
        return (
            f"The folder {_folder_name(index)} of the image index {name} is gone: "
            "showing the sample photos."
        )
    count = len(index.tops(layer, channel))
    cost = model_profile(loaded, result).cost(
        f"reading the {count} top images of the index", count, layer=layer
    )
    work = functools.partial(_read_tops, loaded, index, layer, channel)
    return Job(("indexed-top", loaded.cache_key, served.key, layer, channel), work, cost)


def _folder_name(index: ImageIndex) -> str:
    """The indexed folder as the card names it: its name, not its path on the server."""
    return Path(index.folder).name or index.folder[:1]


def _read_tops(
    loaded: LoadedModel, index: ImageIndex, layer: str, channel: int, progress: Progress
) -> IndexedTops:
    folder = Path(index.folder)
    what = f"the {index.images:,} images of {_folder_name(index)} (an image index)"
    tops = index.tops(layer, channel)
    pictures, lost = [], []
    for done, found in enumerate(tops):
        progress(done / len(tops))
        entry = index.files[found.index]
        try:
            display = loaded.prepare(_indexed_path(folder, entry)).display
        except (ImageError, OSError, ValueError) as exc:
            lost.append(f"{entry.path} ({_reason(exc)})")
            continue
        caption = f"{_short(entry.path)} · peak {found.peak:.3g}"
        pictures.append(TopPicture(outlined(loaded, layer, display, found), caption, found))
    note = None
    if lost:
        note = f"Not shown: {'; '.join(lost[:3])}{' …' if len(lost) > 3 else ''}."
    return IndexedTops(tuple(pictures), what, note)


def _indexed_path(folder: Path, entry: IndexedFile) -> Path:
    """The file, when it is still inside the folder and as it was when indexed.

    Raises:
        OSError: gone, changed, too big, or (through a link) outside the folder.
    """
    path = folder / entry.path
    if not entry.path.lower().endswith(IMAGE_SUFFIXES):  # load_index refuses these already
        raise OSError("not an image")
    if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
        raise OSError("outside the folder")
    stat = path.stat()
    if stat.st_size != entry.size or stat.st_mtime_ns != entry.mtime_ns:
        raise OSError("changed since it was indexed")
    if stat.st_size > MAX_FILE_BYTES:
        raise OSError("too big")
    return path


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "gone"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())[:80]


def _short(path: str) -> str:
    return path if len(path) <= 40 else "…" + path[-39:]
