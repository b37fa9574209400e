"""Your own network: a CNN brought as a file that carries its graph, loaded without running it.

Two formats are accepted, both read as data:

- ``torch.export`` programs (``.pt2``, ``torch.export.save``). PyTorch's loader would unpickle
  some entries with ``weights_only=False`` and would load AOTInductor's compiled code, so the
  archive is checked first (no compiled code, no pickled Python objects) and loaded with every
  unpickling limited to tensors; the graph may use only PyTorch's own operators.
- ONNX (``.onnx``), parsed as protobuf and converted with onnx2torch into a ``torch.fx``
  ``GraphModule`` of ordinary modules (``nn.Conv2d``, ``nn.ReLU`` …), after moving the model
  to opset 17, the newest onnx2torch converts.

Pickled whole models (``torch.save(model)``) and TorchScript are refused: unpickling a model
runs whatever code the file names, and TorchScript archives are pickles too. Export them
instead (see the README). Limits for a hosted app — file size, parameter count, one forward
pass's time — each come with a clear message.
"""

from __future__ import annotations

import hashlib
import io
import json
import operator
import pickle
import re
import threading
import time
import types
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from unittest import mock

import numpy as np
import torch
from torch import fx, nn

from explorer.inputs.spec import InputSpec, InputSpecError
from explorer.models.cards import CARD_ENTRY, CardError, check_card, read_card
from explorer.models.device import pick_device
from explorer.models.sandboxed import run_untrusted
from explorer.models.weights import weights_digest
from explorer.sandbox.boundary import RefusalCache, SandboxError
from explorer.sandbox.plain import ALLOWED_OPERATORS

if TYPE_CHECKING:
    from explorer.models.zoo import LoadedModel

MAX_FILE_MB = 200
"""Largest file accepted (the page's upload limit too)."""
MAX_PARAMETERS = 150_000_000
"""Most parameters (and buffers) a model may hold: VGG-16 has 138 M."""
FORWARD_BUDGET_S = 10.0
"""Longest one forward pass of a batch of one may take on this server."""
FORMATS = {".pt2": "torch.export", ".onnx": "ONNX"}
ONNX_OPSET = 17
"""The opset models are converted to before onnx2torch (its newest)."""
_ALLOWED_NAMESPACES = ("aten",)
_SAFE_EXPRESSION = re.compile(r"-?\d+|Symbol\('s\d+', positive=True, integer=True\)")
_PT2_REFUSED_PREFIXES = ("data/aotinductor/",)
_PT2_OBJECT_MARKERS = ("custom_obj_", "opaque_obj_")
_load_lock = threading.Lock()

REFUSED_FORMATS = (
    "a pickled whole model (torch.save(model)) or TorchScript runs code when loaded, which a "
    "hosted app never does: export it with torch.export.save(torch.export.export(model, "
    "(example,)), 'model.pt2') or torch.onnx.export(model, (example,), 'model.onnx')"
)


class OwnModelError(ValueError):
    """A file that cannot be used as a model, with a message for the user."""


def check_input(spec: InputSpec) -> None:
    """Refuse input settings no model here can take (:meth:`InputSpec.check`).

    Raises:
        OwnModelError: Channels, size, mean/std or the digit layout do not fit.
    """
    try:
        spec.check()
    except InputSpecError as exc:
        raise OwnModelError(str(exc)) from None


@dataclass(frozen=True)
class Program:
    """A model read from a file.

    Attributes:
        module: The graph as a ``torch.fx.GraphModule``, in eval mode, no grad.
        format: ``"torch.export"`` or ``"ONNX"``.
        input_shape: ``(C, H, W)`` as the file states it; ``None`` where it does not.
        parameters: Parameters and buffers it holds.
        digest: sha256 of the file.
        shape: The ``(C, H, W)`` input a sandboxed read converted it for.
    """

    module: nn.Module
    format: str
    input_shape: tuple[int, int, int] | None
    parameters: int
    digest: str = ""
    """sha256 of the file: what tells it apart in every shared cache."""
    shape: tuple[int, int, int] | None = None
    """The input the graph was converted for (``None``: read in this process, any)."""


def format_of(filename: str) -> str:
    """The format a file name says (``"torch.export"`` or ``"ONNX"``).

    Raises:
        OwnModelError: Any other extension, pickles and TorchScript included.
    """
    lower = filename.lower()
    for suffix, name in FORMATS.items():
        if lower.endswith(suffix):
            return name
    if lower.endswith((".pt", ".pth", ".pkl", ".ckpt", ".bin")):
        raise OwnModelError(f"{filename}: {REFUSED_FORMATS}")
    raise OwnModelError(f"{filename}: use a .pt2 (torch.export) or .onnx file")


def read_program(data: bytes, filename: str) -> Program:
    """Read a ``.pt2`` or ``.onnx`` file's graph, running nothing it contains.

    Raises:
        OwnModelError: Too big, not what it claims, compiled code or Python objects inside,
            operators that are not PyTorch's or ONNX's, too many parameters.
    """
    kind = format_of(filename)
    if len(data) > MAX_FILE_MB * 1024 * 1024:
        raise OwnModelError(f"{filename} is over {MAX_FILE_MB} MB")
    module, shape = _read_pt2(data) if kind == "torch.export" else _read_onnx(data)
    if kind == "ONNX":
        module.eval()  # an exported program is frozen as exported (it refuses .eval())
    module.requires_grad_(False)
    count = sum(t.numel() for t in (*module.parameters(), *module.buffers()))
    if count > MAX_PARAMETERS:
        raise OwnModelError(f"{count:,} parameters: over this server's {MAX_PARAMETERS:,}")
    return Program(module, kind, shape, count)


@contextmanager
def tensors_only_unpickling() -> Iterator[None]:
    """While a ``.pt2`` loads: every unpickling may build tensors only, never objects."""
    real_load = torch.load

    def load_tensors(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OwnModelError("the program holds pickled Python objects")

    from torch.export.pt2_archive import _package

    no_pickle = types.SimpleNamespace(**{**vars(pickle), "loads": refuse, "load": refuse})
    with (
        _load_lock,
        mock.patch.object(torch, "load", load_tensors),
        mock.patch.object(_package, "pickle", no_pickle),
        mock.patch.object(torch._C, "_pickle_load_obj", refuse),
    ):
        yield


MAX_ENTRY_MB = 256
"""Largest size one entry of a .pt2 archive may unpack to."""
MAX_RATIO = 200
"""Largest compression ratio of an entry (a deflate bomb's is about 1,000)."""
MAX_GRAPH_NODES = 4_000
"""Most nodes a graph may have (ResNet-152's is about 1,000)."""


def _check_pt2_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            names = [entry.filename for entry in entries]
            _check_entry_sizes(entries)
            graphs = [
                archive.read(e)
                for e in entries
                if e.filename.split("/", 1)[-1].startswith("models/")
            ]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OwnModelError(f"not a torch.export program (not a .pt2 archive: {exc})") from None
    if not any(name.endswith("archive_format") or name == "version" for name in names):
        raise OwnModelError(
            "not a torch.export program: a .pt2 archive has an archive_format entry "
            f"(this zip looks like torch.save's output; {REFUSED_FORMATS})"
        )
    for name in names:
        inner = name.split("/", 1)[-1]
        if inner.startswith(_PT2_REFUSED_PREFIXES):
            raise OwnModelError("the program holds compiled code (AOTInductor), never loaded here")
        if any(marker in name for marker in _PT2_OBJECT_MARKERS):
            raise OwnModelError("the program holds Python objects, never loaded here")
        if inner.startswith("models/") and inner != "models/model.json":
            raise OwnModelError(
                f"the archive holds {inner[:60]}: one graph, models/model.json, is read here"
            )
    for graph in graphs:
        _check_expressions(graph)


def _check_entry_sizes(entries: list[zipfile.ZipInfo]) -> None:
    """Refuse an entry that unpacks too large or too many times its packed size."""
    for entry in entries:
        if entry.file_size > MAX_ENTRY_MB * 1024 * 1024:
            raise OwnModelError(f"an entry of the archive unpacks to over {MAX_ENTRY_MB} MB")
        if entry.file_size > 1024 * 1024 and entry.file_size > MAX_RATIO * max(
            entry.compress_size, 1
        ):
            raise OwnModelError("an entry of the archive is packed over 200 times (a zip bomb?)")


def _check_expressions(raw: bytes) -> None:
    """Refuse symbolic shapes that are anything but a plain size symbol or a number.

    PyTorch's loader turns every ``expr_str`` into an expression with ``sympy.sympify``, which
    runs it as Python: a crafted file would run any code it liked.
    """
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise OwnModelError("not a torch.export program (a graph that is not plain JSON)") from None
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "guards_code" and value:
                    raise OwnModelError(
                        "the program carries guard code (Python run on every pass): never run here"
                    )
                if key == "nodes" and isinstance(value, list) and len(value) > MAX_GRAPH_NODES:
                    raise OwnModelError(f"the graph has over {MAX_GRAPH_NODES:,} nodes")
                if key == "expr_str" and not (
                    isinstance(value, str) and _SAFE_EXPRESSION.fullmatch(value)
                ):
                    raise OwnModelError(
                        "the program's shapes hold expressions other than plain sizes "
                        "(never evaluated here): export it with fixed or simple dynamic shapes"
                    )
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _read_pt2(data: bytes) -> tuple[nn.Module, tuple[int, int, int] | None]:
    _check_pt2_archive(data)
    try:
        with tensors_only_unpickling():
            program = torch.export.load(io.BytesIO(data))
    except OwnModelError:
        raise
    except Exception as exc:
        raise OwnModelError(f"not a loadable torch.export program: {_short(exc)}") from None
    check_operators(program.graph)
    shape = _pt2_input_shape(program)
    return program.module(check_guards=False), shape


def check_operators(graph: fx.Graph) -> None:
    """Refuse a graph that calls anything but PyTorch's own operators of a CNN classifier.

    Raises:
        OwnModelError: A custom operator, or an ATen operator outside the allowed set.
    """
    for node in graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        target = node.target
        namespace = getattr(target, "namespace", None)
        if not isinstance(target, torch._ops.OpOverload) or namespace not in _ALLOWED_NAMESPACES:
            raise OwnModelError(
                f"the graph uses {target}, which is not one of PyTorch's own operators "
                "(custom operators are not loaded here)"
            )
        name = target.overloadpacket.__name__
        if name not in ALLOWED_OPERATORS:
            raise OwnModelError(
                f"the graph uses aten.{name}, which is not an operator of a CNN classifier "
                "(only layers, activations, pooling and shape operators are run here)"
            )


def _pt2_input_shape(program: Any) -> tuple[int, int, int] | None:
    inputs = set(program.graph_signature.user_inputs)
    shapes = [
        tuple(int(n) for n in node.meta["val"].shape)
        for node in program.graph.nodes
        if node.op == "placeholder" and node.name in inputs and "val" in node.meta
    ]
    if len(shapes) != 1:
        raise OwnModelError(f"the program takes {len(shapes)} inputs: it must take one image")
    return _chw(shapes[0])


def _chw(shape: Sequence[int]) -> tuple[int, int, int] | None:
    if len(shape) != 4 or not all(n > 0 for n in shape[1:]):
        return None
    return int(shape[1]), int(shape[2]), int(shape[3])


def _read_onnx(data: bytes) -> tuple[nn.Module, tuple[int, int, int] | None]:
    import onnx
    import onnx2torch
    from onnx import version_converter

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:
        raise OwnModelError(f"not an ONNX model: {_short(exc)}") from None
    if _uses_external_data(model.graph):
        raise OwnModelError(
            "the weights are in a separate .onnx.data file: export one file "
            "(torch.onnx.export(..., external_data=False))"
        )
    _check_onnx_operators(model.graph)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OwnModelError(f"not a valid ONNX model: {_short(exc)}") from None
    shape = _onnx_input_shape(model)
    try:
        if (
            max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
            > ONNX_OPSET
        ):
            model = version_converter.convert_version(model, ONNX_OPSET)
        _allow_no_zero_reshapes(model)
        module = onnx2torch.convert(model)
    except NotImplementedError as exc:
        raise OwnModelError(
            f"the graph uses an operator not supported here: {_short(exc)}"
        ) from None
    except Exception as exc:
        raise OwnModelError(f"this ONNX model cannot be converted: {_short(exc)}") from None
    return module, shape


ONNX_OPERATORS = frozenset(
    """Conv Relu LeakyRelu Elu Sigmoid Tanh HardSigmoid HardSwish Clip Gelu MaxPool
    AveragePool GlobalAveragePool GlobalMaxPool Gemm MatMul Add Sub Mul Div BatchNormalization
    Flatten Reshape Transpose Squeeze Unsqueeze Concat Softmax LogSoftmax Dropout Identity
    Constant Pad ReduceMean Shape Gather""".split()  # noqa: SIM905  (a list that reads)
)
"""The ONNX operators a CNN classifier is made of (no ``ConstantOfShape``, ``Tile``,
``Expand``, ``Loop``: sizes come from the graph, never made up by it)."""


def _check_onnx_operators(graph: Any) -> None:
    if len(graph.node) > MAX_GRAPH_NODES:
        raise OwnModelError(f"the graph has over {MAX_GRAPH_NODES:,} nodes")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPERATORS:
            raise OwnModelError(
                f"the graph uses {node.op_type}, which is not an operator of a CNN classifier "
                "(only layers, activations, pooling and shape operators are run here)"
            )


def aten_graph(program: Program, shape: tuple[int, int, int]) -> fx.GraphModule:
    """The program as a graph of ATen operators for a ``(1, *shape)`` input.

    A ``.pt2`` already is one; an ONNX model's onnx2torch modules are exported with
    ``torch.export`` (a Reshape to a constant shape first made a plain ``reshape``, which
    onnx2torch's data-dependent check would otherwise stop).

    Raises:
        OwnModelError: The graph does not export for that input.
    """
    module = program.module
    if program.format == "torch.export":
        assert isinstance(module, fx.GraphModule)
        return module
    assert isinstance(module, fx.GraphModule)
    _constant_reshapes(module)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = torch.export.export(module, (torch.zeros(1, *shape),))
    except Exception as exc:
        raise OwnModelError(f"this ONNX model cannot be converted: {_short(exc)}") from None
    check_operators(exported.graph)
    return exported.module(check_guards=False)


def _constant_reshapes(gm: fx.GraphModule) -> None:
    from onnx2torch.node_converters.reshape import OnnxReshape

    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(
            gm.get_submodule(str(node.target)), OnnxReshape
        ):
            continue
        target = node.args[1] if len(node.args) > 1 else None
        if not isinstance(target, fx.Node) or target.op != "get_attr":
            continue
        owner, _, leaf = str(target.target).rpartition(".")
        value = getattr(gm.get_submodule(owner), leaf)
        if torch.any(value == 0):
            continue
        with gm.graph.inserting_before(node):
            plain = gm.graph.call_function(
                torch.reshape, (node.args[0], tuple(int(v) for v in value.tolist()))
            )
        node.replace_all_uses_with(plain)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()


def _uses_external_data(graph: Any) -> bool:
    """Whether any tensor of the graph (initialisers, node attributes, subgraphs) names a file.

    onnx2torch would read such a file relative to the server's folder: a way to leak files.
    """
    tensors = list(graph.initializer)
    for sparse in graph.sparse_initializer:
        tensors += [sparse.values, sparse.indices]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
            if attribute.HasField("sparse_tensor"):
                tensors += [attribute.sparse_tensor.values, attribute.sparse_tensor.indices]
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            if any(_uses_external_data(g) for g in [*subgraphs, *attribute.graphs]):
                return True
    return any(t.data_location == 1 or len(t.external_data) > 0 for t in tensors)


def _onnx_input_shape(model: Any) -> tuple[int, int, int] | None:
    initialised = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialised]
    if len(inputs) != 1:
        raise OwnModelError(f"the model takes {len(inputs)} inputs: it must take one image")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    return _chw([d if d > 0 else 0 for d in dims])


def _allow_no_zero_reshapes(model: Any) -> None:
    """Set ``allowzero`` to 0 on Reshapes whose constant shape has no 0 (same result).

    PyTorch's exporter writes ``allowzero=1``, which onnx2torch does not convert; it only
    changes what a 0 in the target shape means.
    """
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        for attribute in node.attribute:
            shape = constants.get(node.input[1]) if len(node.input) > 1 else None
            no_zero = shape is not None and not np.any(shape == 0)
            if attribute.name == "allowzero" and attribute.i == 1 and no_zero:
                attribute.i = 0


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"


def check_classifier(module: nn.Module, spec: InputSpec, budget_s: float = FORWARD_BUDGET_S) -> int:
    """Run one zero input through the model; return how many classes it scores.

    Raises:
        OwnModelError: The input shape does not fit, the pass takes over ``budget_s``, or the
            output is not one vector of class scores.
    """
    device = next(
        iter(module.parameters()), torch.zeros(0)
    ).device  # a cached program may have moved
    x = torch.zeros(1, *spec.shape, device=device)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as exc:
        raise OwnModelError(
            f"the model does not run on a {'×'.join(map(str, spec.shape))} input: {_short(exc)}"
        ) from None
    elapsed = time.perf_counter() - start
    if elapsed > budget_s:
        raise OwnModelError(
            f"one forward pass took {elapsed:.1f} s, over this server's {budget_s:g} s"
        )
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1 or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise OwnModelError(f"the output must be one vector of class scores (1, K), not {shape}")
    return int(out.shape[1])


def parse_labels(text: str, count: int) -> tuple[str, ...]:
    """Class names, one per line (blank lines dropped), for ``count`` classes.

    Raises:
        OwnModelError: Not exactly ``count`` names.
    """
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != count:
        raise OwnModelError(f"the labels file has {len(names)} names for {count} classes")
    return names


def default_spec(program: Program) -> InputSpec | None:
    """The input the file states, unnormalised (``None`` where it states none)."""
    if program.input_shape is None or program.input_shape[0] not in (1, 3):
        return None
    spec = InputSpec(*program.input_shape)
    try:
        spec.check()
    except InputSpecError:
        return None
    return spec


_answers = RefusalCache()


def read_untrusted(
    data: bytes, filename: str, shape: tuple[int, int, int] | None = None
) -> Program:
    """Read a user's ``.pt2``/``.onnx`` in the sandbox; the network rebuilt from plain data.

    The sandboxed worker runs :func:`read_program` and the conversion
    (:mod:`explorer.models.untrusted`); this process only rebuilds the checked plain graph
    and works out its cost on fake tensors. Answers and refusals are kept by the file's
    sha256 and the input shape.

    Args:
        data: The file's bytes.
        filename: Its name (the extension picks the format).
        shape: ``(C, H, W)`` to convert it for; ``None``: the shape the file states.

    Raises:
        OwnModelError: Any reason the file cannot be used, with its message.
    """
    format_of(filename)
    if len(data) > MAX_FILE_MB * 1024 * 1024:
        raise OwnModelError(f"{filename} is over {MAX_FILE_MB} MB")
    key = (hashlib.sha256(data).hexdigest(), filename.lower().rsplit(".", 1)[-1], shape)
    answer = _answers.get(key)
    if answer is None:
        try:
            answer = _convert(data, filename, shape)
        except OwnModelError as exc:
            answer = exc
        _answers.put(key, answer)
    if isinstance(answer, OwnModelError):
        raise answer
    assert isinstance(answer, Program)
    return answer


def _convert(data: bytes, filename: str, shape: tuple[int, int, int] | None) -> Program:
    from explorer.sandbox.plain import PlainGraphError, check_cost, from_plain, parse_plain

    try:
        header, blobs = run_untrusted("own_model", data, filename=filename, shape=shape)
        module = from_plain(parse_plain(blobs[0], blobs[1]))
        converted = tuple(int(n) for n in header["shape"])
        check_cost(module, (converted[0], converted[1], converted[2]))
    except (SandboxError, PlainGraphError) as exc:
        raise OwnModelError(str(exc)) from None
    except (KeyError, IndexError, TypeError, ValueError):
        raise OwnModelError("the sandbox gave a malformed answer") from None
    stated = header.get("stated_shape")
    return Program(
        module,
        str(header.get("format", "")),
        _chw([1, *stated]) if isinstance(stated, list) and len(stated) == 3 else None,
        int(header.get("parameters", 0)),
        hashlib.sha256(data).hexdigest(),
        (converted[0], converted[1], converted[2]),
    )


def load_program(
    data: bytes,
    filename: str,
    spec: InputSpec | None = None,
    labels: str | None = None,
    device: str | None = None,
) -> LoadedModel:
    """A :class:`~explorer.models.zoo.LoadedModel` of the user's file (its bytes, its name).

    :func:`read_untrusted` (for the spec's shape), then :func:`program_model`. A ``.pt2``
    given without input settings or labels uses its card's, if it carries one
    (:func:`explorer.models.cards.read_card`).

    Raises:
        OwnModelError: Any reason the file cannot be used, with its message.
    """
    if spec is None and labels is None and format_of(filename) == "torch.export":
        spec, labels = _card_settings(data)
    if spec is not None:
        check_input(spec)  # before the sandbox reads the file for that input
    program = read_untrusted(data, filename, spec.shape if spec else None)
    return program_model(program, filename, spec, labels, device)


def _card_settings(data: bytes) -> tuple[InputSpec | None, str | None]:
    """The input and class names (one per line) of a ``.pt2``'s card; ``None``s if none."""
    try:
        card = read_card(data)
    except CardError as exc:
        raise OwnModelError(str(exc)) from None
    if card is None:
        return None, None
    return card.spec, "\n".join(card.classes)


def program_model(
    program: Program,
    filename: str,
    spec: InputSpec | None = None,
    labels: str | None = None,
    device: str | None = None,
) -> LoadedModel:
    """A read :class:`Program` with its input settings, ready to run as any model.

    Args:
        program: What :func:`read_program` read.
        filename: The file's name (the weights' label).
        spec: The input; ``None``: as the file states it, unnormalised.
        labels: Class names, one per line; ``None``: the class indices.
        device: As :func:`explorer.models.device.pick_device`.

    Raises:
        OwnModelError: No input shape known, settings that do not fit, or the model is not a
            classifier of that input.
    """
    spec = spec or default_spec(program)
    if spec is None:
        raise OwnModelError(
            "the file does not say its input's shape: give the channels, height and width"
        )
    check_input(spec)
    if program.shape is not None and program.shape != spec.shape:
        raise OwnModelError(
            f"the model was read for a {'×'.join(map(str, program.shape))} input, not "
            f"{'×'.join(map(str, spec.shape))}: read it again for that input"
        )
    count = check_classifier(program.module, spec)
    names = parse_labels(labels, count) if labels else tuple(str(i) for i in range(count))
    module = program.module.to(pick_device(device))
    return own_loaded_model(module, filename, program.format, spec, names, program.digest)


def own_loaded_model(
    module: nn.Module,
    filename: str,
    file_format: str,
    spec: InputSpec,
    categories: tuple[str, ...],
    digest: str = "",
) -> LoadedModel:
    """A user's model as the pages and the CLI use any model.

    Args:
        module: Its graph, in eval mode, on its device.
        filename: The file it came from (its weights' label).
        file_format: ``"torch.export"`` or ``"ONNX"``.
        spec: Its input.
        categories: Its class names.
        digest: sha256 of the file (graph and weights); ``""``: the weights' own digest.
    """
    from explorer.models.zoo import Family, LoadedModel, ModelSpec, Source

    name = Path(filename).name
    entry = ModelSpec(
        name=f"own:{name}",
        title=f"Your model ({name})",
        family=Family.DIGIT if spec.digit else Family.PHOTO,
        input_size=spec.shape,
        year=0,
        description=f"A {file_format} graph you brought.",
        source=Source.OWN,
        input=spec,
    )
    device = next(iter(module.parameters()), torch.zeros(0)).device
    return LoadedModel(
        spec=entry,
        model=module,
        device=device,
        weights=name,
        categories=categories,
        # the file's content, its input and its class names: what tells its answers apart
        identity=f"{digest or weights_digest(module)}:{spec}:{_digest_of(categories)}",
    )


def program_bytes(net: nn.Module, spec: InputSpec, card: dict[str, Any]) -> bytes:
    """``net`` as a ``.pt2`` program for ``spec``'s input, ``card`` inside; written in memory.

    The card is the archive's extra file :data:`~explorer.models.cards.CARD_ENTRY`.

    Raises:
        CardError: The card would not be read back (checked before writing).
        OwnModelError: torch.export cannot trace the network.
    """
    text = json.dumps(card, indent=2)
    check_card(text.encode())
    buffer = io.BytesIO()
    export_model(net, spec.shape, buffer, {CARD_ENTRY: text})
    return buffer.getvalue()


def _digest_of(categories: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(categories).encode()).hexdigest()[:16]


def export_model(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    path: Path | BinaryIO,
    extra_files: Mapping[str, str] | None = None,
) -> None:
    """Write ``model`` as a file this module reads: ``.pt2`` (torch.export) or ``.onnx``.

    How the shipped examples in ``assets/models/own/`` were made, and how to bring a model
    of your own: the graph is traced on a zero input of ``input_shape``.

    Args:
        model: The network (put in eval mode).
        input_shape: ``(C, H, W)`` of its input.
        path: The file (its extension says the format), or a binary stream (a ``.pt2``).
        extra_files: A ``.pt2``'s extra files, name → text (a card).

    Raises:
        OwnModelError: Another extension, or a network torch.export cannot trace.
    """
    kind = format_of(path.name) if isinstance(path, Path) else "torch.export"
    example = (torch.zeros(1, *input_shape),)
    model = model.eval()
    if kind == "torch.export" or not isinstance(path, Path):
        try:
            program = torch.export.export(model, example)
        except Exception as exc:  # torch.export fails in many ways, each a long report
            text = str(exc).strip()
            first = text.splitlines()[0][:200] if text else ""
            raise OwnModelError(
                f"torch.export could not trace the network ({type(exc).__name__}: {first})"
            ) from exc
        torch.export.save(program, path, extra_files=dict(extra_files or {}))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, path, dynamo=True, external_data=False, verbose=False, report=False
        )
