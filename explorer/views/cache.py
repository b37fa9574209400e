"""What every session shares, and how it is named: the app's one cache policy.

- **The models** are loaded once per server process and kept for good: the pages'
  ``cached_model`` (``st.cache_resource``, keyed by zoo name and weights: at most the zoo).
- **Everything computed from a model or an input** (captures, maps, visualisations, sweeps,
  the lab's inputs) is kept in the heavy-work scheduler's one cache
  (:class:`~explorer.hosting.scheduler.BoundedCache`: bounded in bytes, least recently used
  out first, thread-safe), for every session.
- **One key scheme**: a tuple of strings and numbers, ``(what, model, input, settings…)`` —
  what the answer is (``"why"``, ``"sweep"``…), the model's
  :attr:`~explorer.models.zoo.LoadedModel.cache_key` (name, weights and what they hold), the
  input's sha256 (or a shipped input's name), then the settings that change the answer. Never
  an array, a tensor or a name a student chose.

A scheduler job carries its key (``Job.key``) and its answer is kept under it; light work that
never queues calls :func:`shared` with a key of the same scheme. Kept values are shared by
every session: never change one in place (the lab's arrays are made read-only; captures,
maps and tensors are not, so a view copies before it edits).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from explorer.hosting.scheduler import default_scheduler

T = TypeVar("T")


def shared(key: tuple[Hashable, ...], make: Callable[[], T]) -> T:
    """The answer kept under ``key`` for every session, or ``make()``'s, then kept.

    Args:
        key: ``(what, model, input, settings…)``, as the module says.
        make: Computes the answer when it is not kept.
    """
    found: T = default_scheduler().cache.get_or_make(key, make)
    return found


def is_shared(key: tuple[Hashable, ...]) -> bool:
    """Whether an answer is kept under ``key`` now."""
    return key in default_scheduler().cache


def forget_shared() -> None:
    """Forget every kept answer (tests that count computations start from nothing)."""
    default_scheduler().cache.clear()


__all__ = ["forget_shared", "is_shared", "shared"]
