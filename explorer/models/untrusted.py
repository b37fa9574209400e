"""What the sandboxed worker runs on a student's file: tasks that answer with plain data.

Run only inside the worker (:mod:`explorer.sandbox.worker`, started by
:mod:`explorer.models.sandboxed`); never imported by the server. :func:`setup` imports
everything a task needs before the worker lowers its limits.

Tasks:
    ``own_model``: a ``.pt2``/``.onnx`` network → its plain graph (see
        :mod:`explorer.sandbox.plain`), the classes it scores and the shapes it states.
    ``state_dict``: a ``.pth`` state dict → its tensors as ``safetensors`` bytes.
"""

from __future__ import annotations

from typing import Any


def setup() -> None:
    """Import what the tasks use and run on one thread: before any limit, before any byte."""
    import onnx  # noqa: F401
    import onnx2torch  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch
    import torch.export

    import explorer.models.own
    import explorer.models.weights
    import explorer.sandbox.plain  # noqa: F401

    torch.set_num_threads(1)


def own_model(header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Read a network of the user's, check it runs, and give it back as plain data."""
    from explorer.inputs.spec import InputSpec
    from explorer.models.own import (
        OwnModelError,
        aten_graph,
        check_classifier,
        check_input,
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
    spec = InputSpec(shape[0], shape[1], shape[2])
    check_input(spec)
    classes = check_classifier(graph, spec)
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
"""The tasks by name, as :func:`explorer.sandbox.boundary.run_task` asks for them."""


def refusal(exc: BaseException) -> str | None:
    """The message to send back for a refusal of the file; ``None`` for any other error."""
    from explorer.models.own import OwnModelError
    from explorer.models.weights import WeightsError
    from explorer.sandbox.plain import PlainGraphError

    if isinstance(exc, OwnModelError | WeightsError | PlainGraphError):
        return str(exc)
    return None
