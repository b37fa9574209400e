"""The sandboxed worker: reads one untrusted file, answers with plain data, exits.

Started by :mod:`explorer.sandbox.boundary` inside bubblewrap (no network, a read-only view of
Python and this package, a private ``/tmp``, none of the server's environment). It imports
torch first, says it is ready, then lowers its own limits for good (memory, CPU time, file
size, open files) before it reads a single byte of the request: whatever the file makes
PyTorch's loaders do happens under those limits, and the server kills the worker at its
wall-clock limit. One file per worker: nothing one student's file did survives into another's.

Tasks:
    ``own_model``: a ``.pt2``/``.onnx`` network → its plain graph (see :mod:`.plain`), the
        classes it scores and the shapes it states.
    ``state_dict``: a ``.pth`` state dict → its tensors as ``safetensors`` bytes.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from typing import Any

READY = b"ready\n"


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


def own_model(header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Read a network of the user's, check it runs, and give it back as plain data."""
    from explorer.models.own import (
        InputSpec,
        OwnModelError,
        aten_graph,
        check_classifier,
        read_program,
    )
    from explorer.sandbox.plain import to_plain

    program = read_program(data, str(header["filename"]))
    requested = header.get("shape")
    shape = tuple(int(n) for n in requested) if requested else program.input_shape
    if shape is None or len(shape) != 3:
        raise OwnModelError(
            "the file does not say its input's shape: give the channels, height and width"
        )
    graph = aten_graph(program, (shape[0], shape[1], shape[2]))
    classes = check_classifier(graph, InputSpec(shape[0], shape[1], shape[2]))
    nodes, tensors = to_plain(graph).to_bytes()
    answer = {
        "format": program.format,
        "stated_shape": program.input_shape,
        "shape": list(shape),
        "parameters": program.parameters,
        "classes": classes,
    }
    return answer, [nodes, tensors]


def state_dict(header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Unpickle a ``.pth`` (tensors only) and give its tensors back as ``safetensors``."""
    from safetensors.torch import save

    from explorer.models.weights import read_state_dict

    state = read_state_dict(data)
    return {"names": list(state)}, [save({k: v.contiguous() for k, v in state.items()})]


TASKS = {"own_model": own_model, "state_dict": state_dict}


def _answer_error(exc: BaseException) -> dict[str, Any]:
    from explorer.models.own import OwnModelError
    from explorer.models.weights import WeightsError
    from explorer.sandbox.plain import PlainGraphError

    if isinstance(exc, OwnModelError | WeightsError | PlainGraphError):
        return {"ok": False, "error": str(exc)}
    if isinstance(exc, MemoryError):
        return {
            "ok": False,
            "error": "reading it needs more memory than this server gives one file",
        }
    if isinstance(exc, RecursionError):
        return {"ok": False, "error": "it is nested too deeply to read"}
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return {"ok": False, "error": f"it cannot be read: {text}"}


def main() -> int:
    """Serve one request from standard input; the answer goes to the original stdout."""
    answer_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answer
    import onnx  # noqa: F401  (everything imported before the limits are lowered)
    import onnx2torch  # noqa: F401
    import torch
    import torch.export

    import explorer.models.own
    import explorer.models.weights
    import explorer.sandbox.plain  # noqa: F401

    torch.set_num_threads(1)
    answer_stream.write(READY)
    answer_stream.flush()
    memory_mb, cpu_s = int(sys.argv[1]), int(sys.argv[2])
    _lower_limits(memory_mb, cpu_s)
    from explorer.sandbox.protocol import read_frame, write_frame

    try:
        header, blobs = read_frame(sys.stdin.buffer, 512 * 1024 * 1024)
        task = TASKS[str(header.get("task"))]
        answer, out = task(header, blobs[0] if blobs else b"")
        write_frame(answer_stream, {"ok": True, **answer}, out)
    except BaseException as exc:
        write_frame(answer_stream, _answer_error(exc), [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
