"""An image index: for every channel of a model's layers, a folder's images that excite it most.

After OpenAI Microscope, which showed for every channel of ImageNet models the data set's
images with the largest activation. :func:`index_folder` streams a folder of photos through a
model once, in batches, and keeps per channel only its running top ``k`` — the activation's
peak, the image and the ``(row, col)`` of the unit that peaked — never the activations
themselves, so memory stays bounded whatever the folder's size. It is resumable: the index
lists every file it has read (relative path, size, modification time) and is rewritten
atomically at checkpoints, so a second run continues where the first stopped (refused when a
file it has read has changed since: its peaks would be the old file's).

The file (:func:`save_index`, :func:`load_index`) is an uncompressed ``.npz`` of plain arrays
and a JSON header, versioned. An index is untrusted input to the server: :func:`load_index`
reads every member with its declared size checked before anything is allocated, refuses
object arrays (no pickle) and validates every value it will later use (a file list of
images only: the server opens them).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from explorer.analysis.capture import list_layers
from explorer.analysis.visualize import TopInput

FORMAT = "cnn-explorer-image-index"
VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
"""What counts as an image in a folder (case-insensitive)."""
DEFAULT_K = 9
MAX_K = 100
MAX_IMAGES = 1_000_000
"""Files one index lists (read or skipped): an ImageNet-sized folder."""
MAX_DEPTH = 16
"""Folder levels :func:`find_images` descends."""
MAX_LAYERS = 1_000
MAX_CHANNELS = 65_536
"""Channels of one layer."""
MAX_ENTRIES = 20_000_000
"""Channels × k over every layer (the largest zoo model, all convs, k = 100: ~2.6 M)."""
MAX_MAP_SIDE = 4_096
MAX_INDEX_BYTES = 512 * 2**20
"""The largest index file :func:`load_index` opens."""
MAX_HEADER_BYTES = 2**20
MAX_FILE_BYTES = 50 * 2**20
"""Larger image files are skipped (as the pages' photo uploader)."""
MAX_WARNINGS = 10
"""Unreadable images reported one line each; later ones only counted."""
CHECKPOINT_S = 30.0
"""Seconds between checkpoints (the index rewritten) while indexing."""

Prepare = Callable[[Path], torch.Tensor]
"""Reads an image file as the model's ``(1, C, H, W)`` input; raises ``ValueError``/``OSError``."""


class ImageIndexError(ValueError):
    """A bad index file, folder or setting (a one-line message for the user)."""


@dataclass(frozen=True)
class IndexedFile:
    """One file of the folder the index has read.

    Attributes:
        path: Its path relative to the folder, ``/``-separated.
        size: Its size in bytes when read.
        mtime_ns: Its modification time when read.
        ok: False when it could not be read as an image (skipped, not retried).
    """

    path: str
    size: int
    mtime_ns: int
    ok: bool = True


@dataclass(frozen=True)
class LayerTops:
    """The running top ``k`` of every channel of one layer.

    Attributes:
        name: The layer (a capture name, e.g. ``layer1.0.conv1``).
        map_size: ``(rows, cols)`` of its maps.
        values: ``(C, k)`` float32 peaks, best first; ``-inf`` in unused slots.
        images: ``(C, k)`` int32 indices into :attr:`ImageIndex.files`; ``-1`` unused.
        units: ``(C, k, 2)`` int32 ``(row, col)`` of the unit that peaked.
    """

    name: str
    map_size: tuple[int, int]
    values: np.ndarray
    images: np.ndarray
    units: np.ndarray

    @property
    def channels(self) -> int:
        """How many channels the layer has."""
        return int(self.values.shape[0])

    @classmethod
    def empty(cls, name: str, channels: int, map_size: tuple[int, int], k: int) -> LayerTops:
        """No image seen yet."""
        return cls(
            name,
            map_size,
            np.full((channels, k), -np.inf, dtype=np.float32),
            np.full((channels, k), -1, dtype=np.int32),
            np.zeros((channels, k, 2), dtype=np.int32),
        )

    def merged(self, peaks: np.ndarray, flat_units: np.ndarray, ids: np.ndarray) -> LayerTops:
        """The top ``k`` of these and a batch's ``(B, C)`` peaks and flat argmax positions.

        Ties keep the earlier image first: the running top (earlier images) comes first
        and the sort is stable.
        """
        k = self.values.shape[1]
        batch_values = np.nan_to_num(peaks.T.astype(np.float32), nan=-np.inf)
        values = np.concatenate([self.values, batch_values], axis=1)
        images = np.concatenate(
            [self.images, np.broadcast_to(ids.astype(np.int32), batch_values.shape)], axis=1
        )
        rows, cols = np.divmod(flat_units.T.astype(np.int64), self.map_size[1])
        units = np.concatenate(
            [self.units, np.stack([rows, cols], axis=-1).astype(np.int32)], axis=1
        )
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
        return replace(
            self,
            values=np.take_along_axis(values, order, axis=1),
            images=np.take_along_axis(images, order, axis=1),
            units=np.take_along_axis(units, order[..., None], axis=1),
        )


@dataclass(frozen=True)
class ImageIndex:
    """What excites every channel most among a folder's images.

    Attributes:
        model: The zoo name of the model.
        weights: Its weights id (:attr:`~explorer.models.zoo.LoadedModel.cache_key`).
        folder: The folder's absolute path when indexed.
        input_size: ``(height, width)`` of the model's input.
        k: Images kept per channel.
        layers: The layers indexed, in execution order.
        files: Every file read, in reading order (an image's id is its place here).
    """

    model: str
    weights: str
    folder: str
    input_size: tuple[int, int]
    k: int
    layers: dict[str, LayerTops]
    files: tuple[IndexedFile, ...] = field(default=())

    @property
    def images(self) -> int:
        """Images read and indexed."""
        return sum(f.ok for f in self.files)

    @property
    def skipped(self) -> int:
        """Files that could not be read as images."""
        return sum(not f.ok for f in self.files)

    def tops(self, layer: str, channel: int) -> list[TopInput]:
        """The channel's top images, best first (``index``: the place in :attr:`files`).

        Raises:
            KeyError: the layer is not indexed.
            IndexError: no such channel.
        """
        found = self.layers[layer]
        if not 0 <= channel < found.channels:
            raise IndexError(f"{layer} has {found.channels} channels, not {channel + 1}")
        return [
            TopInput(int(image), float(value), (int(row), int(col)))
            for value, image, (row, col) in zip(
                found.values[channel], found.images[channel], found.units[channel], strict=True
            )
            if image >= 0
        ]


# --- the folder -----------------------------------------------------------------------------


def find_images(folder: Path) -> list[IndexedFile]:
    """Every image file under ``folder``, sorted by relative path.

    Walks at most :data:`MAX_DEPTH` levels, never through links (a linked file or folder
    could lead out of the folder), and at most :data:`MAX_IMAGES` files.

    Raises:
        ImageIndexError: not a folder, or too many images.
    """
    if not folder.is_dir():
        raise ImageIndexError(f"{folder} is not a folder")
    found: list[IndexedFile] = []
    root = str(folder)
    for here, dirs, files in os.walk(root, followlinks=False):
        depth = len(Path(here).relative_to(root).parts)
        if depth >= MAX_DEPTH:
            dirs.clear()
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.lower().endswith(IMAGE_SUFFIXES) or name.startswith("."):
                continue
            path = Path(here, name)
            stat = path.lstat()
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file() or not _storable(relative):
                continue
            found.append(IndexedFile(relative, stat.st_size, stat.st_mtime_ns))
            if len(found) > MAX_IMAGES:
                raise ImageIndexError(f"{folder} holds more than {MAX_IMAGES:,} images")
    return sorted(found, key=lambda f: f.path)


def _storable(relative: str) -> bool:
    """Whether an index can record this path (UTF-8, and one :func:`safe_relative` takes)."""
    try:
        relative.encode("utf-8")
        safe_relative(relative)
    except (UnicodeEncodeError, ImageIndexError):
        return False
    return True


# --- running the model ----------------------------------------------------------------------


def conv_layers(model: nn.Module) -> list[str]:
    """The conv layers of ``model`` that are modules, in execution order (capture names)."""
    return [
        info.name
        for info in list_layers(model)
        if info.kind == "conv" and info.module == info.name and "#" not in info.name
    ]


def module_layers(model: nn.Module) -> list[str]:
    """Every layer an index may hold: each module's first call (the channel card's layers)."""
    modules = dict(model.named_modules())
    return [
        info.name
        for info in list_layers(model)
        if info.module == info.name and "#" not in info.name and info.name in modules
    ]


@contextmanager
def _peak_hooks(
    model: nn.Module, layers: Sequence[str]
) -> Iterator[dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]]]:
    """Hooks that keep, per layer, each input's per-channel peak and its flat position.

    The peak is taken inside the hook, as the layer's output appears, so a later in-place
    op cannot change it and no activation outlives its layer. Only a module's first call of
    a forward pass counts (the capture's name without ``#``). Hooks are removed in ``finally``.
    """
    modules = dict(model.named_modules())
    found: dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if name in found:
                return
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                raise ImageIndexError(f"{name} has no channels of maps to index")
            best, where = output.detach().flatten(2).float().max(dim=2)
            rows, cols = (int(side) for side in output.shape[2:])
            found[name] = (best.cpu().numpy(), where.cpu().numpy(), (rows, cols))

        return hook

    try:
        for name in layers:
            handles.append(modules[name].register_forward_hook(hook_for(name)))
        yield found
    finally:
        for handle in handles:
            handle.remove()


def _peaks(
    model: nn.Module, layers: Sequence[str], batch: torch.Tensor
) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    device = next(iter(model.parameters()), torch.zeros(0)).device
    with _peak_hooks(model, layers) as found, torch.inference_mode():
        model(batch.to(device))
    missing = [name for name in layers if name not in found]
    if missing:
        raise ImageIndexError(f"layer(s) {', '.join(missing)} did not run")
    return found


def _checked_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        chosen = conv_layers(model)
        if not chosen:
            raise ImageIndexError("the model has no conv layers: name some with --layers")
        return chosen
    known = module_layers(model)
    unknown = [name for name in layers if name not in known]
    if unknown:
        shown = ", ".join(known[:8]) + (" …" if len(known) > 8 else "")
        raise ImageIndexError(f"unknown layer(s) {', '.join(unknown)}: this model has {shown}")
    order = {name: i for i, name in enumerate(known)}
    return sorted(dict.fromkeys(layers), key=order.__getitem__)


def index_folder(
    model: nn.Module,
    prepare: Prepare,
    folder: Path,
    out: Path,
    *,
    model_name: str,
    weights: str,
    layers: Sequence[str] | None = None,
    k: int = DEFAULT_K,
    batch_size: int = 32,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    checkpoint_s: float = CHECKPOINT_S,
) -> ImageIndex:
    """Index every image under ``folder`` into ``out`` (continuing ``out`` if it exists).

    Args:
        model: The network, in eval mode.
        prepare: Reads a file as the model's input (bounded: the app's image reader).
        folder: The images (searched recursively, :func:`find_images`).
        out: The index file; rewritten atomically at checkpoints, at the end and on Ctrl-C.
        model_name: The zoo name, recorded.
        weights: The weights id, recorded (an index of other weights does not apply).
        layers: Layers to index; ``None``: every conv layer.
        k: Images kept per channel.
        batch_size: Images per forward pass.
        progress: A progress bar on stderr.
        warn: Gets one line per unreadable image (the first :data:`MAX_WARNINGS`).
        checkpoint_s: Seconds between checkpoints.

    Returns:
        The finished index.

    Raises:
        ImageIndexError: no images, unknown layers, a bad ``k``, or ``out`` is an index of
            another model, folder, layers or ``k``, or a file it has read has changed since.
    """
    if not 1 <= k <= MAX_K:
        raise ImageIndexError(f"--top-k must be 1…{MAX_K}, not {k}")
    if not 1 <= batch_size <= 1024:
        raise ImageIndexError(f"the batch size must be 1…1024, not {batch_size}")
    folder = folder.resolve()
    chosen = _checked_layers(model, layers)
    files = find_images(folder)
    if not files:
        raise ImageIndexError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    index = load_index(out) if out.exists() else None
    if index is not None:
        _check_resumable(index, model_name, weights, folder, chosen, k)
        _check_unchanged(index, files)
    done = {f.path for f in index.files} if index is not None else set()
    todo = [f for f in files if f.path not in done]
    state = _Progress(index, warn)
    bar = tqdm(total=len(files), initial=len(files) - len(todo), unit="image", disable=not progress)
    last_save = time.monotonic()
    try:
        for chunk in _chunks(todo, batch_size):
            tensors, read = state.read(folder, chunk, prepare)
            if state.index is None and tensors:
                state.begin(_empty_index(model, chosen, tensors[0], model_name, weights, folder, k))
            state.add(model, chosen, tensors, read)
            bar.update(len(chunk))
            if time.monotonic() - last_save > checkpoint_s:
                state.save(out)
                last_save = time.monotonic()
    finally:
        bar.close()
        state.save(out)  # what the last whole batch left: Ctrl-C keeps it too
    finished = state.snapshot()
    if finished is None:
        raise ImageIndexError(
            f"none of the {len(files):,} image files under {folder} could be read"
        )
    state.summary()
    return finished


def _chunks(files: Sequence[IndexedFile], size: int) -> Iterator[Sequence[IndexedFile]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


class _Progress:
    """The index so far, and the unreadable-file report.

    The files read are a growing list (a tuple rebuilt each batch would make a big folder's
    run quadratic). What is saved is :attr:`committed`, the tops and how many of the files
    they cover, replaced in one assignment once a whole batch is done: a Ctrl-C at any moment
    leaves a consistent pair.
    """

    def __init__(self, index: ImageIndex | None, warn: Callable[[str], None] | None) -> None:
        self.files: list[IndexedFile] = list(index.files) if index is not None else []
        self.committed: tuple[ImageIndex | None, int] = (index, len(self.files))
        self.warn = warn
        self.unreadable = 0
        self.shape: tuple[int, ...] | None = None  # every input's, from the first one read

    @property
    def index(self) -> ImageIndex | None:
        """The header and the tops; None before the first readable image."""
        return self.committed[0]

    def begin(self, index: ImageIndex) -> None:
        """Start from an empty index (the files skipped so far lead its list)."""
        self.committed = (index, self.committed[1])

    def read(
        self, folder: Path, chunk: Sequence[IndexedFile], prepare: Prepare
    ) -> tuple[list[torch.Tensor], list[IndexedFile]]:
        tensors: list[torch.Tensor] = []
        read: list[IndexedFile] = []
        for entry in chunk:
            try:
                if entry.size > MAX_FILE_BYTES:
                    raise ValueError(f"larger than {MAX_FILE_BYTES // 2**20} MB")
                tensor = prepare(folder / entry.path)
                self._check_shape(tuple(tensor.shape))
            except (ValueError, OSError) as exc:
                self._report(entry, exc)
                read.append(replace(entry, ok=False))
                continue
            tensors.append(tensor)
            read.append(entry)
        return tensors, read

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if self.shape is None and self.index is not None:  # resumed: as the index says
            self.shape = (*shape[:-2], *self.index.input_size)
        if self.shape is None:
            self.shape = shape
        if shape != self.shape:
            raise ValueError(f"prepared as {shape}, not as the others {self.shape}")

    def _report(self, entry: IndexedFile, exc: Exception) -> None:
        self.unreadable += 1
        if self.warn is None:
            return
        if self.unreadable <= MAX_WARNINGS:
            message = " ".join(str(exc).split())[:200]
            self.warn(f"warning: skipped {entry.path}: {message}")
        elif self.unreadable == MAX_WARNINGS + 1:
            self.warn("warning: more unreadable images: counted, not listed")

    def add(
        self,
        model: nn.Module,
        layers: Sequence[str],
        tensors: list[torch.Tensor],
        read: list[IndexedFile],
    ) -> None:
        """Add a batch: its files, and its readable images' peaks to every layer's top k."""
        index, count = self.committed
        del self.files[count:]  # what an interrupted batch had added
        if index is not None and tensors:
            ids = np.array([count + i for i, f in enumerate(read) if f.ok], dtype=np.int32)
            tops = dict(index.layers)
            found = _peaks(model, layers, torch.cat(tensors))
            for name, (peaks, where, _size) in found.items():
                tops[name] = tops[name].merged(peaks, where, ids)
            index = replace(index, layers=tops)
        self.files.extend(read)
        self.committed = (index, len(self.files))

    def snapshot(self) -> ImageIndex | None:
        """The index as it stands (None before the first readable image)."""
        index, count = self.committed
        return None if index is None else replace(index, files=tuple(self.files[:count]))

    def save(self, out: Path) -> None:
        """Write the index as it stands (nothing before the first readable image)."""
        index = self.snapshot()
        if index is not None:
            save_index(index, out)

    def summary(self) -> None:
        if self.warn is not None and self.unreadable:
            self.warn(f"warning: {self.unreadable:,} unreadable file(s) skipped in this run")


def _empty_index(
    model: nn.Module,
    layers: Sequence[str],
    example: torch.Tensor,
    model_name: str,
    weights: str,
    folder: Path,
    k: int,
) -> ImageIndex:
    found = _peaks(model, layers, example)
    tops = {
        name: LayerTops.empty(name, peaks.shape[1], size, k)
        for name, (peaks, _where, size) in found.items()
    }
    height, width = (int(s) for s in example.shape[-2:])
    return ImageIndex(model_name, weights, str(folder), (height, width), k, tops)


def _check_resumable(
    index: ImageIndex,
    model_name: str,
    weights: str,
    folder: Path,
    layers: Sequence[str],
    k: int,
) -> None:
    wanted = {"model": (model_name, weights), "folder": str(folder), "layers": list(layers)}
    has = {
        "model": (index.model, index.weights),
        "folder": index.folder,
        "layers": list(index.layers),
    }
    for what in wanted:
        if wanted[what] != has[what]:
            raise ImageIndexError(
                f"the index to continue was made with another {what} ({_short(has[what])}): "
                "choose another --out, or delete it to start again"
            )
    if index.k != k:
        raise ImageIndexError(
            f"the index to continue keeps {index.k} images a channel, not {k}: "
            "choose another --out, or delete it to start again"
        )


def _check_unchanged(index: ImageIndex, files: Sequence[IndexedFile]) -> None:
    """Refuse to continue when a file the index has read was changed, replaced or removed.

    Its peaks in the index would be those of the old file: the index would no longer be of
    this folder.
    """
    now = {f.path: (f.size, f.mtime_ns) for f in files}
    changed = sum(now.get(f.path) != (f.size, f.mtime_ns) for f in index.files)
    if changed:
        raise ImageIndexError(
            f"{changed:,} file(s) changed since this index was started: "
            "start again with a new --out"
        )


def _short(value: object) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"


# --- the file -------------------------------------------------------------------------------


def save_index(index: ImageIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically (a whole old file or a whole new one, never half).

    Raises:
        OSError: the folder cannot be written.
    """
    layers = list(index.layers.values())
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model": index.model,
        "weights": index.weights,
        "folder": index.folder,
        "input_size": list(index.input_size),
        "k": index.k,
        "layers": [
            {"name": t.name, "channels": t.channels, "map": list(t.map_size)} for t in layers
        ],
        "files": len(index.files),
        "images": index.images,
    }
    files = [[f.path, f.size, f.mtime_ns, f.ok] for f in index.files]
    arrays: dict[str, np.ndarray] = {
        "header": _json_bytes(header),
        "files": _json_bytes(files),
    }
    for i, tops in enumerate(layers):
        arrays[f"values_{i}"] = tops.values
        arrays[f"images_{i}"] = tops.images
        arrays[f"units_{i}"] = tops.units
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as fp:
            np.savez(fp, **arrays)  # type: ignore[arg-type]
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_bytes(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def load_index(path: Path) -> ImageIndex:
    """Read and check an index file (untrusted: sizes bounded before reading, no pickle).

    Raises:
        ImageIndexError: not an index, truncated, of another version, or with values out of
            range (the message says which).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise ImageIndexError(f"larger than {MAX_INDEX_BYTES // 2**20} MB")
        with zipfile.ZipFile(path) as archive:
            if len(archive.infolist()) > 3 * MAX_LAYERS + 2:
                raise ImageIndexError("too many members")
            return _read(archive)
    except ImageIndexError as exc:
        raise ImageIndexError(f"{path.name} is not a usable image index: {exc}") from None
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ImageIndexError(f"{path.name} is not an image index (.npz): {reason}") from None
    except OSError as exc:
        raise ImageIndexError(f"cannot read the image index {path}: {exc.strerror}") from None


def _read(archive: zipfile.ZipFile) -> ImageIndex:
    header = _json_member(archive, "header", MAX_HEADER_BYTES)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ImageIndexError("no CNN Explorer header")
    if header.get("version") != VERSION:
        raise ImageIndexError(
            f"format version {header.get('version')!r}, this program reads {VERSION}"
        )
    model = _text(header.get("model"), 100, "model")
    weights = _text(header.get("weights"), 2_000, "weights")
    if not weights.startswith(f"{model}|"):  # a cache key: model|weights|identity
        raise ImageIndexError(f"weights must read '{model}|<weights>|…'")
    folder = _text(header.get("folder"), 4_096, "folder")
    input_size = _pair(header.get("input_size"), "input_size")
    k = _integer(header.get("k"), 1, MAX_K, "k")
    count = _integer(header.get("files"), 0, MAX_IMAGES, "files")
    specs = header.get("layers")
    if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_LAYERS:
        raise ImageIndexError(f"layers must be a list of 1…{MAX_LAYERS}")
    layers = [_layer_spec(spec) for spec in specs]
    if len({name for name, _, _ in layers}) != len(layers):
        raise ImageIndexError("a layer is listed twice")
    if sum(channels for _, channels, _ in layers) * k > MAX_ENTRIES:
        raise ImageIndexError(f"more than {MAX_ENTRIES:,} channel × k entries")
    files = _files(_json_member(archive, "files", 256 * count + 1024), count)
    usable = np.array([f.ok for f in files] + [False], dtype=bool)  # [-1] is an unused slot
    tops: dict[str, LayerTops] = {}
    for i, (name, channels, map_size) in enumerate(layers):
        values = _member(archive, f"values_{i}", np.dtype("<f4"), (channels, k))
        images = _member(archive, f"images_{i}", np.dtype("<i4"), (channels, k))
        units = _member(archive, f"units_{i}", np.dtype("<i4"), (channels, k, 2))
        _check_tops(name, values, images, units, map_size, usable)
        tops[name] = LayerTops(name, map_size, values, images, units)
    return ImageIndex(model, weights, folder, input_size, k, tops, tuple(files))


def _check_tops(
    name: str,
    values: np.ndarray,
    images: np.ndarray,
    units: np.ndarray,
    map_size: tuple[int, int],
    usable: np.ndarray,
) -> None:
    used = images >= 0
    if np.any(images < -1) or np.any(images >= len(usable) - 1):
        raise ImageIndexError(f"{name}: an image number out of range")
    if not np.all(usable[images[used]]):
        raise ImageIndexError(f"{name}: a top image that was never read")
    if np.any(np.isnan(values)):
        raise ImageIndexError(f"{name}: a value that is not a number")
    rows, cols = units[..., 0][used], units[..., 1][used]
    if (
        np.any(rows < 0)
        or np.any(rows >= map_size[0])
        or np.any(cols < 0)
        or np.any(cols >= map_size[1])
    ):
        raise ImageIndexError(f"{name}: a unit outside its {map_size[0]}×{map_size[1]} map")


def _member(
    archive: zipfile.ZipFile, name: str, dtype: np.dtype[Any], shape: tuple[int, ...] | None
) -> np.ndarray:
    """One ``.npy`` member, its header checked against ``dtype`` and ``shape`` before reading.

    ``shape`` ``None``: any 1-D length (bounded by the caller through the member's size).
    """
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise ImageIndexError(f"no {name} array (truncated?)") from None
    with archive.open(info) as fp:
        found_shape, fortran, found_dtype = _npy_header(fp)
        if found_dtype != dtype or fortran:
            raise ImageIndexError(f"{name} holds {found_dtype}, not {dtype}")
        if shape is None and len(found_shape) != 1:
            raise ImageIndexError(f"{name} is not a list of bytes")
        if shape is not None and found_shape != shape:
            raise ImageIndexError(f"{name} is shaped {found_shape}, not {shape}")
        expected = math.prod(found_shape) * dtype.itemsize
        if info.file_size > expected + 4_096:
            raise ImageIndexError(f"{name} is larger than its shape says")
        if info.file_size < expected:  # a huge declared shape: refused before reading
            raise ImageIndexError(f"{name} is truncated (shaped {found_shape})")
        data = fp.read(expected)
    if len(data) != expected:
        raise ImageIndexError(f"{name} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(found_shape).copy()


def _npy_header(fp: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=1_024)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=1_024)
    else:
        raise ImageIndexError(f"an array of .npy version {version}")
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _json_member(archive: zipfile.ZipFile, name: str, limit: int) -> Any:
    info = archive.getinfo(f"{name}.npy") if f"{name}.npy" in archive.namelist() else None
    if info is None:
        raise ImageIndexError(f"no {name} (truncated?)")
    if info.file_size > limit + 4_096:
        raise ImageIndexError(f"its {name} is larger than {limit:,} bytes")
    data = _member(archive, name, np.dtype("u1"), None)
    try:
        return json.loads(data.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ImageIndexError(f"its {name} is not JSON") from None


def _files(value: object, count: int) -> list[IndexedFile]:
    if not isinstance(value, list) or len(value) != count:
        raise ImageIndexError(f"the file list does not hold the {count:,} files it declares")
    files = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and isinstance(item[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in item[1:3])
            and isinstance(item[3], bool)
        ):
            raise ImageIndexError("a file entry is not [path, size, mtime_ns, ok]")
        path = safe_relative(item[0])
        if not path.lower().endswith(IMAGE_SUFFIXES):  # the server opens only images
            raise ImageIndexError(f"a file that is not an image: {path[:80]!r}")
        files.append(IndexedFile(path, item[1], item[2], item[3]))
    return files


def safe_relative(path: str) -> str:
    """``path`` when it is a plain relative path inside a folder (no ``..``, not absolute).

    Raises:
        ImageIndexError: anything else.
    """
    parts = path.split("/")
    if (
        not path
        or len(path) > 1_024
        or "\x00" in path
        or "\\" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ImageIndexError(f"a file path that leaves the folder: {path[:80]!r}")
    return path


def _layer_spec(spec: object) -> tuple[str, int, tuple[int, int]]:
    if not isinstance(spec, dict):
        raise ImageIndexError("a layer entry is not an object")
    name = _text(spec.get("name"), 200, "layer name")
    channels = _integer(spec.get("channels"), 1, MAX_CHANNELS, f"{name}'s channels")
    return name, channels, _pair(spec.get("map"), f"{name}'s map")


def _text(value: object, limit: int, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ImageIndexError(f"{what} must be text of 1…{limit} characters")
    return value


def _integer(value: object, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ImageIndexError(f"{what} must be a whole number {low}…{high:,}")
    return value


def _pair(value: object, what: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ImageIndexError(f"{what} must be [height, width]")
    return (
        _integer(value[0], 1, MAX_MAP_SIDE, what),
        _integer(value[1], 1, MAX_MAP_SIDE, what),
    )


def default_output(folder: Path, model_name: str) -> Path:
    """Where an index goes without ``--out``: ``<folder>/../<folder name>.<model>.index.npz``."""
    folder = folder.resolve()
    return folder.parent / f"{folder.name}.{model_name}.index.npz"


def stderr_line(line: str) -> None:
    """One line on stderr (the default ``warn`` of the command line)."""
    print(line, file=sys.stderr)
