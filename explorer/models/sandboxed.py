"""The server's side of reading students' files: tasks of :mod:`.untrusted`, run sandboxed.

The sandbox (:mod:`explorer.sandbox`) knows nothing of models: it is told which module's
tasks its worker runs. This module tells it: :mod:`explorer.models.untrusted`.
"""

from __future__ import annotations

from typing import Any

from explorer.sandbox import boundary

TASKS_MODULE = "explorer.models.untrusted"
"""The module whose tasks the sandboxed worker runs."""


def run_untrusted(task: str, data: bytes, **fields: Any) -> tuple[dict[str, Any], list[bytes]]:
    """Run one task of :mod:`explorer.models.untrusted` on one file in a sandboxed worker.

    Raises:
        explorer.sandbox.SandboxError: The file was refused, or a limit stopped it.
    """
    return boundary.run_task(TASKS_MODULE, task, data, **fields)


def prewarm() -> None:
    """Keep a worker for these tasks started, torch imported (see :func:`boundary.prewarm`)."""
    boundary.prewarm(TASKS_MODULE)
