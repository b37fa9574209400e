"""Load a user's own weights safely: ``weights_only`` unpickling and clear mismatch messages."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

MAX_LISTED = 8


class WeightsError(ValueError):
    """A weights file that cannot be used, with a message fit to show a user."""


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" … and {more} more" if more > 0 else "")


def read_state_dict(source: str | os.PathLike[str] | bytes | BinaryIO) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt`` state dict with ``torch.load(weights_only=True)``.

    Accepts a bare state dict or a checkpoint holding one under ``state_dict`` or ``model``;
    strips the ``module.`` prefix that ``DataParallel`` adds. A pickle that would build
    arbitrary Python objects (and so could run code) is refused before anything runs.

    Raises:
        WeightsError: unreadable, unsafe, or not a mapping of names to tensors.
    """
    stream, label = _open_source(source)
    return _named_tensors(_unwrap_checkpoint(_safe_load(stream, label)), label)


def _open_source(
    source: str | os.PathLike[str] | bytes | BinaryIO,
) -> tuple[BinaryIO | str | os.PathLike[str], str]:
    """What ``torch.load`` reads for ``source``, and how messages name it."""
    if isinstance(source, bytes | bytearray):
        if not source:
            raise WeightsError("the uploaded file is empty, not a PyTorch weights file (.pth/.pt)")
        return io.BytesIO(source), "the uploaded file"
    if isinstance(source, str | os.PathLike):
        if not Path(source).is_file():
            raise WeightsError(f"weights file not found: {source}")
        return source, Path(source).name
    return source, getattr(source, "name", "the uploaded file")


def _safe_load(stream: BinaryIO | str | os.PathLike[str], label: str) -> object:
    """``torch.load(weights_only=True)``, its failures turned into :class:`WeightsError`."""
    try:
        return torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", str(exc), re.IGNORECASE)
        if found is None:  # not a pickle of allowed types at all: garbage bytes
            raise WeightsError(f"{label} is not a PyTorch weights file (.pth/.pt)") from None
        raise WeightsError(
            f"refused to load {label}: it asks to run {found.group(1)} when unpickled, and "
            "only plain tensors are accepted (weights_only=True). Save plain weights with "
            "torch.save(model.state_dict(), path)."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        text = str(exc).strip() if not isinstance(exc, KeyError) else ""
        detail = text.splitlines()[0][:200] if text else type(exc).__name__
        raise WeightsError(f"{label} is not a PyTorch weights file (.pth/.pt): {detail}") from None


def _unwrap_checkpoint(obj: object) -> object:
    """The state dict inside a checkpoint (``state_dict``, ``model`` …), else ``obj`` itself."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def _named_tensors(obj: object, label: str) -> dict[str, torch.Tensor]:
    """``obj`` checked to be a non-empty mapping of names to tensors, ``module.`` stripped."""
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{label} does not hold a state dict (a mapping of names to tensors)")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsError(f"{label}: entry {key!r} is not a named tensor")
        state[key.removeprefix("module.")] = value
    return state


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`WeightsError` listing every key/shape that does not fit ``model``."""
    check_shapes(model, {key: tuple(value.shape) for key, value in state.items()})


def check_shapes(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Raise :class:`WeightsError` listing every name/shape that does not fit ``model``."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = [key for key in expected if key not in shapes]
    unexpected = [key for key in shapes if key not in expected]
    wrong = [
        f"{key} {shapes[key]} (model needs {expected[key]})"
        for key in expected
        if key in shapes and tuple(shapes[key]) != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shape {len(wrong)}: {_listing(wrong)}")
    if problems:
        raise WeightsError(
            f"these weights do not fit {type(model).__name__}: " + "; ".join(problems)
        )


def read_untrusted_state_dict(
    source: str | os.PathLike[str] | bytes | BinaryIO, model: nn.Module
) -> dict[str, torch.Tensor]:
    """A user's state dict, unpickled in the sandbox, checked against ``model`` before loading.

    The sandboxed worker (:mod:`explorer.models.untrusted`) runs :func:`read_state_dict`
    under its limits and answers with ``safetensors`` bytes; their header's names and shapes
    are checked against ``model`` before a single tensor is made here.

    Raises:
        WeightsError: Unreadable, unsafe, over a limit, or not fitting ``model``.
    """
    from safetensors.torch import load

    from explorer.models.sandboxed import run_untrusted
    from explorer.sandbox.boundary import SandboxError

    stream, label = _open_source(source)
    data = Path(stream).read_bytes() if isinstance(stream, str | os.PathLike) else stream.read()
    try:
        header, blobs = run_untrusted("state_dict", data)
    except SandboxError as exc:
        message = str(exc)
        raise WeightsError(message if label in message else f"{label}: {message}") from None
    shapes = _safetensors_shapes(blobs[0] if blobs else b"")
    names = header.get("names")
    order: list[Any] = names if isinstance(names, list) else []
    ordered = {str(k): shapes[k] for k in order if k in shapes}  # the file's order, for messages
    check_shapes(model, {**ordered, **shapes})
    return load(blobs[0])


def _safetensors_shapes(blob: bytes) -> dict[str, tuple[int, ...]]:
    """Names and shapes from a ``safetensors`` header, read without making any tensor."""
    import json
    import struct

    try:
        (size,) = struct.unpack("<Q", blob[:8])
        header: dict[str, Any] = json.loads(blob[8 : 8 + size]) if size <= 16 * 1024 * 1024 else {}
        return {
            str(name): tuple(int(n) for n in entry["shape"])
            for name, entry in header.items()
            if name != "__metadata__"
        }
    except (struct.error, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise WeightsError("the sandbox gave a malformed answer") from None


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's weights (names and values): what tells two uploads apart."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_user_weights(
    model: nn.Module, source: str | os.PathLike[str] | bytes | BinaryIO
) -> tuple[str, str]:
    """Load a user's state dict into ``model`` (:func:`load_weights_into`).

    Returns:
        How the weights are labelled (the path, or the upload's name) and their digest
        (:func:`weights_digest`).

    Raises:
        WeightsError: Unreadable, unsafe, over a limit, or not fitting ``model``.
    """
    load_weights_into(model, source)
    label = (
        str(source)
        if isinstance(source, str | os.PathLike)
        else getattr(source, "name", "uploaded file")
    )
    return label, weights_digest(model)


def load_weights_into(
    model: nn.Module, source: str | os.PathLike[str] | bytes | BinaryIO
) -> nn.Module:
    """Read ``source`` in the sandbox, check it against ``model`` and load it (strict)."""
    model.load_state_dict(read_untrusted_state_dict(source, model), strict=True)
    return model
