"""The sandboxed worker: reads one untrusted file, answers with plain data, exits.

Started by :mod:`explorer.sandbox.boundary` inside bubblewrap (no network, a read-only view of
Python and this package, a private ``/tmp``, none of the server's environment) as
``python -m explorer.sandbox.worker TASKS_MODULE MEMORY_MB CPU_S``. It imports the tasks
module and everything its ``setup()`` imports first, says it is ready, then lowers its own
limits for good (memory, CPU time, file size, open files) before it reads a single byte of
the request: whatever the file makes PyTorch's loaders do happens under those limits, and
the server kills the worker at its wall-clock limit. One file per worker: nothing one
student's file did survives into another's.

A tasks module (e.g. :mod:`explorer.models.untrusted`) offers ``setup()``, ``TASKS`` (name →
``task(header, data) -> (answer, blobs)``) and ``refusal(exc)`` (the message of an error that
refuses the file, else ``None``). This package never imports one itself.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import resource
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from explorer.sandbox.protocol import read_frame, write_frame

READY = b"ready\n"
MAX_REQUEST_BYTES = 512 * 1024 * 1024
"""Largest request read (the file and its header)."""
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

Refusal = Callable[[BaseException], str | None]


def _lower_limits(memory_mb: int, cpu_s: int) -> None:
    """Limit this process for good: address space and CPU beyond what it used so far, files."""
    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    address_space = mapped * 1024 + memory_mb * 1024 * 1024
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = math.ceil(usage.ru_utime + usage.ru_stime)  # torch's import counts as CPU time too
    for limit, value in (
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_CPU, (spent + cpu_s, spent + cpu_s + 2)),  # SIGXCPU, then SIGKILL
        (resource.RLIMIT_FSIZE, 16 * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 256),
    ):
        resource.setrlimit(limit, value if isinstance(value, tuple) else (value, value))


def answer_error(exc: BaseException, refusal: Refusal) -> dict[str, Any]:
    """The answer's header for a task that raised ``exc``: a message fit for the user."""
    message = refusal(exc)
    if message is not None:
        return {"ok": False, "error": message}
    if isinstance(exc, MemoryError):
        return {
            "ok": False,
            "error": "reading it needs more memory than this server gives one file",
        }
    if isinstance(exc, RecursionError):
        return {"ok": False, "error": "it is nested too deeply to read"}
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return {"ok": False, "error": f"it cannot be read: {text}"}


def load_tasks(name: str) -> ModuleType:
    """Import the tasks module ``name`` and run its ``setup()``.

    Raises:
        ValueError: ``name`` is not a module name.
    """
    if not _MODULE_NAME.fullmatch(name):
        raise ValueError(f"not a module name: {name!r}")
    module = importlib.import_module(name)
    module.setup()
    return module


def main() -> int:
    """Serve one request from standard input; the answer goes to the original stdout."""
    answer_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answer
    tasks = load_tasks(sys.argv[1])  # everything imported before the limits are lowered
    answer_stream.write(READY)
    answer_stream.flush()
    memory_mb, cpu_s = int(sys.argv[2]), int(sys.argv[3])
    _lower_limits(memory_mb, cpu_s)
    try:
        header, blobs = read_frame(sys.stdin.buffer, MAX_REQUEST_BYTES)
        task = tasks.TASKS[str(header.get("task"))]
        answer, out = task(header, blobs[0] if blobs else b"")
        write_frame(answer_stream, {"ok": True, **answer}, out)
    except BaseException as exc:
        write_frame(answer_stream, answer_error(exc, tasks.refusal), [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
