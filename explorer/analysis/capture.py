"""Capture every layer's output of a model, in execution order, from a traced graph.

The model is traced once with ``torch.fx`` (cached per model). The trace is rewritten so
that every in-place op runs out of place and the graph *returns* every layer's value
alongside the logits. A capture is then one plain forward call: no hooks are registered,
no state is shared between calls, so two threads can capture on the same model at once,
and a later in-place ReLU cannot rewrite an earlier layer's output.

Functional activations (``F.relu`` inside GoogLeNet's ``BasicConv2d``) and reused modules
(ResNet's ``relu`` runs twice per block) each get their own entry. Names are torch's dotted
``named_modules()`` paths; a module or op called again in the same place gets ``#2``,
``#3``…; a functional op is named after the module it runs in plus the op
(``inception3a.branch1.relu``).
"""

from __future__ import annotations

import copy
import inspect
import io
import operator
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

KINDS = (
    "conv",
    "norm",
    "relu",
    "activation",
    "pool",
    "linear",
    "add",
    "concat",
    "mul",
    "flatten",
    "dropout",
    "softmax",
    "other",
)
"""Every layer kind a capture reports (``relu`` covers ReLU/ReLU6; ``activation`` the rest)."""

SOFTMAX_NAME = "softmax"
INPUT_NAME = "input"


class CaptureError(RuntimeError):
    """The model could not be traced or captured."""


@dataclass(frozen=True)
class LayerOutput:
    """One layer's output for one input.

    Attributes:
        name: Stable dotted name (``layer1.0.relu#2``).
        kind: One of :data:`KINDS`.
        op: What ran: the module class (``Conv2d``) or the function (``relu``, ``add``).
        module: Dotted path of the module that ran, for module layers (for its weights).
        tensor: The output without the batch dimension, on the model's device.
        inputs: Names of the captured layers (or ``"input"``) feeding this one, so a unit can
            be traced back (``pool1`` ← ``relu1``; a residual ``add`` has two).
    """

    name: str
    kind: str
    op: str
    module: str | None
    tensor: torch.Tensor
    inputs: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape without the batch dimension, e.g. ``(64, 56, 56)``."""
        return tuple(self.tensor.shape)

    def numpy(self) -> np.ndarray:
        """The values as a float32 NumPy array on the host (a copy, safe to keep)."""
        return self.tensor.detach().to("cpu", torch.float32).numpy().copy()

    def stats(self) -> dict[str, float]:
        """``min``, ``max``, ``mean`` and ``zero_fraction`` of the values."""
        t = self.tensor.detach().float()
        return {
            "min": float(t.min()),
            "max": float(t.max()),
            "mean": float(t.mean()),
            "zero_fraction": float((t == 0).float().mean()),
        }


@dataclass(frozen=True)
class CaptureResult:
    """Everything one forward pass produced, in execution order.

    Attributes:
        input: The input tensor as the model received it (no batch dimension).
        layers: Every captured layer in execution order; the last is ``softmax`` when it
            was asked for.
        logits: The model's output scores (1-D).
        probs: Softmax probabilities (1-D, sums to 1).
    """

    input: torch.Tensor
    layers: list[LayerOutput]
    logits: torch.Tensor
    probs: torch.Tensor
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({layer.name: i for i, layer in enumerate(self.layers)})

    def __getitem__(self, name: str) -> LayerOutput:
        try:
            return self.layers[self._index[name]]
        except KeyError:
            raise KeyError(f"no captured layer named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        """Layer names in execution order."""
        return [layer.name for layer in self.layers]

    def of_kind(self, kind: str) -> list[LayerOutput]:
        """Captured layers of one kind, in execution order."""
        return [layer for layer in self.layers if layer.kind == kind]

    def to_npz(self) -> bytes:
        """Every layer (and the input) as a compressed ``.npz``, keyed by layer name."""
        arrays = {INPUT_NAME: self.input.detach().to("cpu", torch.float32).numpy()}
        arrays.update({layer.name: layer.numpy() for layer in self.layers})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most probable class indices with their probabilities, best first."""
        k = max(1, min(k, self.probs.numel()))
        values, indices = torch.topk(self.probs.detach().float().cpu(), k)
        return [(int(i), float(v)) for v, i in zip(values, indices, strict=True)]


@dataclass(frozen=True)
class LayerInfo:
    """Static description of a capturable layer (known from the trace, before any run)."""

    name: str
    kind: str
    op: str
    module: str | None
    inputs: tuple[str, ...] = ()
    """Names of the captured layers (or ``"input"``) whose values flow into this one."""


# --- classification of graph nodes ---------------------------------------------------------

_MODULE_KINDS: tuple[tuple[tuple[type[nn.Module], ...], str], ...] = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d), "conv"),
    (
        (
            nn.BatchNorm1d,
            nn.BatchNorm2d,
            nn.BatchNorm3d,
            nn.LayerNorm,
            nn.GroupNorm,
            nn.LocalResponseNorm,
            nn.InstanceNorm2d,
        ),
        "norm",
    ),
    ((nn.ReLU, nn.ReLU6), "relu"),
    (
        (
            nn.Hardswish,
            nn.Hardsigmoid,
            nn.Sigmoid,
            nn.Tanh,
            nn.LeakyReLU,
            nn.GELU,
            nn.SiLU,
            nn.ELU,
            nn.PReLU,
            nn.Hardtanh,
            nn.Mish,
            nn.Softplus,
        ),
        "activation",
    ),
    (
        (
            nn.MaxPool1d,
            nn.MaxPool2d,
            nn.AvgPool1d,
            nn.AvgPool2d,
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveMaxPool2d,
            nn.LPPool2d,
        ),
        "pool",
    ),
    ((nn.Linear,), "linear"),
    ((nn.Flatten,), "flatten"),
    ((nn.Dropout, nn.Dropout2d, nn.AlphaDropout), "dropout"),
    ((nn.Softmax, nn.LogSoftmax), "softmax"),
)

_FUNCTION_KINDS: dict[Any, tuple[str, str]] = {
    F.relu: ("relu", "relu"),
    torch.relu: ("relu", "relu"),
    torch.relu_: ("relu", "relu"),
    F.relu6: ("relu", "relu6"),
    F.hardswish: ("activation", "hardswish"),
    F.hardsigmoid: ("activation", "hardsigmoid"),
    F.leaky_relu: ("activation", "leaky_relu"),
    F.gelu: ("activation", "gelu"),
    F.silu: ("activation", "silu"),
    F.elu: ("activation", "elu"),
    F.hardtanh: ("activation", "hardtanh"),
    torch.sigmoid: ("activation", "sigmoid"),
    F.sigmoid: ("activation", "sigmoid"),
    torch.tanh: ("activation", "tanh"),
    F.tanh: ("activation", "tanh"),
    F.max_pool2d: ("pool", "max_pool2d"),
    F.avg_pool2d: ("pool", "avg_pool2d"),
    F.adaptive_avg_pool2d: ("pool", "adaptive_avg_pool2d"),
    F.adaptive_max_pool2d: ("pool", "adaptive_max_pool2d"),
    F.conv2d: ("conv", "conv2d"),
    F.linear: ("linear", "linear"),
    F.batch_norm: ("norm", "batch_norm"),
    F.dropout: ("dropout", "dropout"),
    F.softmax: ("softmax", "softmax"),
    torch.softmax: ("softmax", "softmax"),
    torch.flatten: ("flatten", "flatten"),
    torch.cat: ("concat", "cat"),
    torch.concat: ("concat", "cat"),
}
_ATEN = torch.ops.aten
_ATEN_KINDS: dict[Any, tuple[str, str]] = {
    # torch.export programs (own models) are graphs of ATen operators.
    **dict.fromkeys((_ATEN.conv2d.default, _ATEN.convolution.default), ("conv", "conv2d")),
    **dict.fromkeys((_ATEN.relu.default, _ATEN.relu_.default), ("relu", "relu")),
    _ATEN.sigmoid.default: ("activation", "sigmoid"),
    _ATEN.tanh.default: ("activation", "tanh"),
    _ATEN.hardtanh.default: ("activation", "hardtanh"),
    _ATEN.hardswish.default: ("activation", "hardswish"),
    _ATEN.silu.default: ("activation", "silu"),
    _ATEN.gelu.default: ("activation", "gelu"),
    _ATEN.leaky_relu.default: ("activation", "leaky_relu"),
    _ATEN.max_pool2d.default: ("pool", "max_pool2d"),
    _ATEN.avg_pool2d.default: ("pool", "avg_pool2d"),
    _ATEN.adaptive_avg_pool2d.default: ("pool", "adaptive_avg_pool2d"),
    _ATEN.linear.default: ("linear", "linear"),
    _ATEN.batch_norm.default: ("norm", "batch_norm"),
    _ATEN.flatten.using_ints: ("flatten", "flatten"),
    _ATEN.dropout.default: ("dropout", "dropout"),
    **dict.fromkeys((_ATEN.softmax.int, _ATEN._softmax.default), ("softmax", "softmax")),
    _ATEN.cat.default: ("concat", "cat"),
}
_FUNCTION_KINDS.update(_ATEN_KINDS)
_BINARY_KINDS: dict[Any, tuple[str, str]] = {
    **dict.fromkeys((operator.add, operator.iadd, torch.add), ("add", "add")),
    **dict.fromkeys((operator.mul, operator.imul, torch.mul), ("mul", "mul")),
    **dict.fromkeys((_ATEN.add.Tensor, _ATEN.add_.Tensor), ("add", "add")),
    _ATEN.mul.Tensor: ("mul", "mul"),
}
_METHOD_KINDS: dict[str, tuple[str, str]] = {
    "relu": ("relu", "relu"),
    "sigmoid": ("activation", "sigmoid"),
    "tanh": ("activation", "tanh"),
    "softmax": ("softmax", "softmax"),
    "flatten": ("flatten", "flatten"),
    "view": ("flatten", "view"),
    "reshape": ("flatten", "reshape"),
}
_BINARY_METHODS: dict[str, tuple[str, str]] = {"add": ("add", "add"), "mul": ("mul", "mul")}
_IN_PLACE_FUNCTIONS: dict[Any, Any] = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
    torch.relu_: torch.relu,
}
_NON_TENSOR_METHODS = {"size", "dim", "numel", "item", "tolist", "stride"}


def _module_kind(module: nn.Module) -> str:
    for types, kind in _MODULE_KINDS:
        if isinstance(module, types):
            return kind
    return "other"


def _is_tensor_node(arg: object) -> bool:
    """Best static guess that a graph value is a tensor (not a size, an int or a constant)."""
    if not isinstance(arg, fx.Node):
        return False
    if arg.op == "call_method" and arg.target in _NON_TENSOR_METHODS:
        return False
    return not (arg.op == "call_function" and arg.target in (getattr, len))


def _classify(node: fx.Node, root: nn.Module) -> tuple[str, str] | None:
    """The ``(kind, op)`` of a node worth showing, or ``None`` for plumbing."""
    if node.op == "call_module":
        module = root.get_submodule(str(node.target))
        return _module_kind(module), type(module).__name__
    if node.op == "call_function":
        return _kind_of(node.target, node.args, _FUNCTION_KINDS, _BINARY_KINDS)
    if node.op == "call_method":
        return _kind_of(str(node.target).rstrip("_"), node.args, _METHOD_KINDS, _BINARY_METHODS)
    return None


def _kind_of(
    target: Any,
    args: tuple[Any, ...],
    kinds: dict[Any, tuple[str, str]],
    binary_kinds: dict[Any, tuple[str, str]],
) -> tuple[str, str] | None:
    """``(kind, op)`` of a function or method; a binary one counts only between two tensors."""
    if target in kinds:
        return kinds[target]
    if target in binary_kinds and sum(map(_is_tensor_node, args)) >= 2:
        return binary_kinds[target]
    return None


def _enclosing_module(node: fx.Node) -> str:
    """Dotted path of the module a functional op ran in ('' at the top level)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return str(path)


# --- making a traced graph safe ------------------------------------------------------------


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, module)


def _inplace_arg_index(fn: Callable[..., Any]) -> int | None:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    return params.index("inplace") if "inplace" in params else None


def _make_out_of_place(gm: fx.GraphModule) -> None:
    """Rewrite every in-place op of ``gm`` to run out of place (in ``gm`` only)."""
    for node in gm.graph.nodes:
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            if getattr(module, "inplace", False):
                replacement = copy.copy(module)  # shallow: shares parameters, not the flag
                setattr(replacement, "inplace", False)  # noqa: B010 (not every module declares it)
                _set_submodule(gm, str(node.target), replacement)
        elif node.op == "call_function":
            if node.target in _IN_PLACE_FUNCTIONS:
                node.target = _IN_PLACE_FUNCTIONS[node.target]
            if node.kwargs.get("inplace"):
                node.kwargs = {**node.kwargs, "inplace": False}
            index = _inplace_arg_index(node.target) if callable(node.target) else None
            if index is not None and len(node.args) > index and node.args[index] is True:
                args = list(node.args)
                args[index] = False
                node.args = tuple(args)
        elif node.op == "call_method":
            name = str(node.target)
            if name.endswith("_") and not name.startswith("_") and hasattr(torch.Tensor, name[:-1]):
                node.target = name[:-1]


def _layer_name(node: fx.Node, op: str) -> tuple[str, str | None]:
    """A layer's name before ``#2``, ``#3``… numbering, and its module's path (for a module)."""
    if node.op == "call_module":
        return str(node.target), str(node.target)
    where = _enclosing_module(node)
    return (f"{where}.{op}" if where else op), None


class _Sources:
    """Which captured layers (or the input) the value of each node of a graph comes from.

    Fill :attr:`captured` in execution order: a node's sources are looked up through the
    uncaptured nodes before it, down to captured ones or the input.
    """

    def __init__(self) -> None:
        self.captured: dict[fx.Node, str] = {}
        self._found: dict[fx.Node, tuple[str, ...]] = {}

    def of(self, node: fx.Node) -> tuple[str, ...]:
        """Captured layers (or the input) that a node's value comes from."""
        if node in self.captured:
            return (self.captured[node],)
        if node.op == "placeholder":
            return (INPUT_NAME,)
        if node not in self._found:
            self._found[node] = self.inputs_of(node)
        return self._found[node]

    def inputs_of(self, node: fx.Node) -> tuple[str, ...]:
        """The sources of every input of ``node``, in order, each once."""
        found: dict[str, None] = {}
        for arg in node.all_input_nodes:
            found.update(dict.fromkeys(self.of(arg)))
        return tuple(found)


MAX_KEPT_GRAPHS = 8
"""Capture graphs kept per model (one per subset of layers asked for), least recent dropped."""


class _Traced:
    """A model's trace, its layer list, and capture graphs (one per requested subset)."""

    def __init__(self, model: nn.Module) -> None:
        try:
            tracer = fx.Tracer()
            graph = tracer.trace(model)
        except Exception as exc:  # tracing raises many error types
            raise CaptureError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
        self.base = fx.GraphModule(model, graph)
        _make_out_of_place(self.base)
        self.device = _model_device(model)
        self.layers: list[LayerInfo] = []
        self._node_of: dict[str, str] = {}
        sources = _Sources()
        counts: Counter[str] = Counter()
        for node in self.base.graph.nodes:
            kind_op = _classify(node, self.base)
            if kind_op is None:
                continue
            kind, op = kind_op
            base_name, module = _layer_name(node, op)
            counts[base_name] += 1
            name = base_name if counts[base_name] == 1 else f"{base_name}#{counts[base_name]}"
            self.layers.append(LayerInfo(name, kind, op, module, sources.inputs_of(node)))
            self._node_of[name] = node.name
            sources.captured[node] = name
        output = next(node for node in self.base.graph.nodes if node.op == "output")
        self.softmax = LayerInfo(
            SOFTMAX_NAME, "softmax", "softmax", None, sources.of(output.all_input_nodes[0])
        )
        self._variants: OrderedDict[tuple[str, ...], fx.GraphModule] = OrderedDict()
        self._lock = threading.Lock()

    def kept(self) -> int:
        """How many capture graphs are kept now."""
        with self._lock:
            return len(self._variants)

    def graph_for(self, names: tuple[str, ...]) -> fx.GraphModule:
        """A GraphModule returning ``(logits, *outputs of names)``, built once per subset."""
        with self._lock:
            gm = self._variants.get(names)
            if gm is not None:
                self._variants.move_to_end(names)
                return gm
        graph = copy.deepcopy(self.base.graph)
        by_name = {node.name: node for node in graph.nodes}
        output = next(node for node in graph.nodes if node.op == "output")
        wanted = [by_name[self._node_of[name]] for name in names]
        output.args = ((output.args[0], *wanted),)
        gm = fx.GraphModule(self.base, graph)
        with self._lock:
            self._variants[names] = gm
            while len(self._variants) > MAX_KEPT_GRAPHS:
                self._variants.popitem(last=False)
        return gm


def _model_device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        return tensor.dtype
    return torch.float32


_TRACES: weakref.WeakKeyDictionary[nn.Module, _Traced] = weakref.WeakKeyDictionary()
_TRACES_LOCK = threading.Lock()


def _traced(model: nn.Module) -> _Traced:
    """The cached trace of ``model``; re-traced if the model moved to another device."""
    with _TRACES_LOCK:
        traced = _TRACES.get(model)
        if traced is None or traced.device != _model_device(model):
            traced = _Traced(model)
            _TRACES[model] = traced
        return traced


def kept_graphs(model: nn.Module) -> int:
    """How many capture graphs of ``model`` are kept now (at most :data:`MAX_KEPT_GRAPHS`)."""
    with _TRACES_LOCK:
        traced = _TRACES.get(model)
    return 0 if traced is None else traced.kept()


def list_layers(model: nn.Module) -> list[LayerInfo]:
    """Every layer a capture of ``model`` reports, in execution order, without running it.

    The last entry is always the ``softmax`` the capture appends to the logits.
    """
    traced = _traced(model)
    return [*traced.layers, traced.softmax]


def capture(
    model: nn.Module,
    x: torch.Tensor,
    layers: Iterable[str] | None = None,
) -> CaptureResult:
    """Run ``model`` on one input and return every layer's output in execution order.

    Args:
        model: A model in eval mode (traced with ``torch.fx`` on first use, then cached).
        x: One input, shaped ``(C, H, W)`` or ``(1, C, H, W)``; moved to the model's device.
        layers: Names to keep (see :func:`list_layers`); ``None`` keeps every layer. The
            probabilities are always computed.

    Returns:
        The outputs, in execution order, on the model's device, plus logits and probs.

    Raises:
        KeyError: a requested layer name does not exist.
        ValueError: ``x`` is not a single input.
        CaptureError: the model cannot be traced or returns something other than scores.
    """
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(
            f"capture takes one input shaped (C, H, W) or (1, C, H, W), got {tuple(x.shape)}"
        )
    traced = _traced(model)
    infos = traced.layers
    if layers is None:
        chosen = infos
        want_softmax = True
    else:
        requested = list(dict.fromkeys(layers))
        known = {info.name for info in infos}
        unknown = [name for name in requested if name not in known and name != SOFTMAX_NAME]
        if unknown:
            raise KeyError(f"unknown layer name(s): {', '.join(unknown)}")
        wanted = set(requested)
        chosen = [info for info in infos if info.name in wanted]
        want_softmax = SOFTMAX_NAME in wanted
    gm = traced.graph_for(tuple(info.name for info in chosen))
    x = x.to(device=_model_device(model), dtype=_model_dtype(model))
    with torch.inference_mode():
        logits, *values = gm(x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise CaptureError("the model must return a (1, classes) tensor of scores")
        probs = torch.softmax(logits.float(), dim=1)[0]
    outputs = [
        LayerOutput(info.name, info.kind, info.op, info.module, value[0], info.inputs)
        for info, value in zip(chosen, values, strict=True)
        if isinstance(value, torch.Tensor) and value.dim() >= 1
    ]
    if want_softmax:
        info = traced.softmax
        outputs.append(LayerOutput(info.name, info.kind, info.op, None, probs, info.inputs))
    return CaptureResult(input=x[0], layers=outputs, logits=logits[0], probs=probs)
