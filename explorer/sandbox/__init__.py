"""The execution boundary for students' files: a sandboxed worker reads them, plain data returns.

:mod:`.boundary` starts and limits the worker, :mod:`.worker` is what runs inside it (the
tasks of a module its caller names, e.g. :mod:`explorer.models.untrusted`: this package
imports no model code), :mod:`.protocol` frames their messages, and :mod:`.plain` is the one
form a network crosses the boundary in (rebuilt and costed by the server before anything
runs).

The package imports nothing itself, so a module loads only what it needs; ``__all__``
names its modules.
"""

__all__ = [
    "boundary",
    "plain",
    "protocol",
    "worker",
]
