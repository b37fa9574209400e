"""The execution boundary for students' files: a sandboxed worker reads them, plain data returns.

:mod:`.boundary` starts and limits the worker, :mod:`.worker` is what runs inside it (the
tasks of a module its caller names, e.g. :mod:`explorer.models.untrusted`: this package
imports no model code), :mod:`.protocol` frames their messages, and :mod:`.plain` is the one
form a network crosses the boundary in (rebuilt and costed by the server before anything
runs).
"""

from explorer.sandbox.boundary import RefusalCache, SandboxError, prewarm, run_task, sandbox_kind
from explorer.sandbox.plain import PlainGraphError, check_cost, from_plain, parse_plain

__all__ = [
    "PlainGraphError",
    "RefusalCache",
    "SandboxError",
    "check_cost",
    "from_plain",
    "parse_plain",
    "prewarm",
    "run_task",
    "sandbox_kind",
]
