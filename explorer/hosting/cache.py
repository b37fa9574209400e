"""The answers every session shares: a cache by content key, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import torch

CACHE_ENV = "EXPLORER_HEAVY_CACHE_MB"
DEFAULT_CACHE_MB = 1024
"""Answers kept for every session: about eight VGG-16 captures, or thousands of maps."""


def approximate_bytes(value: object, depth: int = 6) -> int:
    """Memory held by ``value``, roughly.

    Its tensors and arrays (a storage shared by several tensors counted once), plus a little
    for every other object, through dataclasses, mappings and sequences.
    """
    storages: dict[int, int] = {}
    other = _walk_bytes(value, depth, storages)
    return other + sum(storages.values())


def _walk_bytes(value: object, depth: int, storages: dict[int, int]) -> int:
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | str):
        return len(value)
    if depth <= 0:
        return 64
    children: Iterable[object] = ()
    if is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in fields(value)]
    elif isinstance(value, Mapping):
        children = list(value.values())
    elif isinstance(value, list | tuple | set | frozenset):
        children = value
    return 64 + sum(_walk_bytes(child, depth - 1, storages) for child in children)


class BoundedCache:
    """Answers shared by every session, by content key, least recently used out first.

    Bounded by :func:`approximate_bytes` of its values (an answer larger than the whole bound
    is returned but not kept). Thread-safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, value)`` when ``key`` is kept (now the most recent), else ``(False, None)``."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return False, None
            self._entries.move_to_end(key)
            return True, found[0]

    def put(self, key: Hashable, value: object) -> None:
        """Keep ``value`` under ``key``, evicting the least recently used beyond the bound."""
        size = approximate_bytes(value)
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old[1] if old else 0
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``make()``'s, kept."""
        found, value = self.lookup(key)
        if not found:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def bytes(self) -> int:
        """What the kept answers hold, by :func:`approximate_bytes`."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries
