"""A network as plain data: the one form an untrusted graph crosses the boundary in.

The worker (:mod:`explorer.sandbox.worker`) reads a user's ``.pt2`` or ``.onnx`` with
PyTorch's and onnx2torch's loaders, and hands the server only this: a JSON list of nodes whose
operators come from :data:`ALLOWED_OPERATORS`, with arguments that are numbers, booleans,
lists and references to earlier nodes, plus the tensors as ``safetensors`` bytes (a format
made to be read from strangers: a JSON header and raw numbers, no code). The server rebuilds a
``torch.fx.GraphModule`` from it with :func:`from_plain`, checking every name, operator and
argument, then works out every node's shape and the pass's floating-point operations on
shapeless "fake" tensors before a real number is allocated (:func:`check_cost`). Whatever a
crafted file makes torch's loaders do, it happens in the worker; what reaches the server can
only be a graph of these operators, of a bounded size and cost.

Each ``conv2d``/``linear`` operator whose weights are the file's own parameters becomes an
``nn.Conv2d``/``nn.Linear`` module named after them, so its filters, class activation maps
and receptive fields are shown as for any zoo model.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import fx, nn

ALLOWED_OPERATORS = frozenset(
    [
        "conv2d",
        "convolution",
        "_convolution",
        "relu",
        "relu_",
        "relu6",
        "sigmoid",
        "tanh",
        "hardtanh",
        "hardtanh_",
        "hardswish",
        "hardswish_",
        "hardsigmoid",
        "silu",
        "silu_",
        "gelu",
        "leaky_relu",
        "elu",
        "max_pool2d",
        "max_pool2d_with_indices",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "linear",
        "addmm",
        "mm",
        "bmm",
        "matmul",
        "t",
        "batch_norm",
        "_native_batch_norm_legit_no_training",
        "native_batch_norm",
        "layer_norm",
        "group_norm",
        "flatten",
        "view",
        "reshape",
        "_unsafe_view",
        "permute",
        "transpose",
        "squeeze",
        "unsqueeze",
        "contiguous",
        "clone",
        "expand",
        "slice",
        "select",
        "cat",
        "add",
        "add_",
        "sub",
        "mul",
        "mul_",
        "div",
        "mean",
        "sum",
        "amax",
        "softmax",
        "_softmax",
        "log_softmax",
        "dropout",
        "pad",
        "constant_pad_nd",
        "upsample_nearest2d",
        "upsample_bilinear2d",
        "sym_size",
    ]
)
"""The ATen operators a CNN classifier is made of: nothing that reads files or runs code
(``aten::from_file`` would read any file the server can)."""
MAX_NODES = 4_000
"""Most nodes a graph may have (ResNet-152 has about 1,000 operators)."""
MAX_NODE_ELEMENTS = 40_000_000
"""Most numbers one node may produce for one input (VGG-16's largest: 3.2 million)."""
MAX_PASS_ELEMENTS = 120_000_000
"""Most numbers all nodes together may produce for one input (a capture keeps them all)."""
MAX_PASS_GFLOPS = 40.0
"""Most floating-point operations one pass may take, in billions (VGG-16: 31)."""
MAX_HEADER_BYTES = 8 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_PATH = re.compile(r"[A-Za-z0-9_]{1,100}(\.[A-Za-z0-9_]{1,100}){0,15}")
_OVERLOAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_MAX_LIST = 64
_MAX_DEPTH = 4


class PlainGraphError(ValueError):
    """A plain graph that is not one the server accepts, with a message for the user."""


@dataclass(frozen=True)
class PlainGraph:
    """A network as data: ``nodes`` (JSON-ready) and its ``tensors`` by dotted name."""

    nodes: list[dict[str, Any]]
    tensors: dict[str, torch.Tensor]

    def to_bytes(self) -> tuple[bytes, bytes]:
        """``(JSON of the nodes, safetensors of the tensors)``."""
        return json.dumps(self.nodes).encode(), save_tensors(
            {k: v.detach().contiguous().float() for k, v in self.tensors.items()}
        )


# --- the worker's side: a GraphModule of ATen operators to plain data -----------------------


def to_plain(gm: fx.GraphModule) -> PlainGraph:
    """The plain form of a graph of ATen operators (``torch.export``'s ``module()``).

    Raises:
        PlainGraphError: A node that is not a placeholder, parameter, allowed operator or output.
    """
    nodes: list[dict[str, Any]] = []
    tensors: dict[str, torch.Tensor] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and str(node.target) == "_guards_fn":
            continue  # torch.export's shape guards: nothing the result depends on
        entry: dict[str, Any] = {"name": node.name, "op": node.op}
        if node.op == "get_attr":
            tensors[str(node.target)] = _attribute(gm, str(node.target))
            entry["target"] = str(node.target)
        elif node.op == "call_function":
            entry["target"] = _operator_name(node.target)
            entry["args"] = [_encode(a) for a in node.args]
            entry["kwargs"] = {k: _encode(v) for k, v in node.kwargs.items()}
        elif node.op == "output":
            entry["args"] = [_encode(node.args[0])]
        elif node.op != "placeholder":
            raise PlainGraphError(f"the graph calls {node.op} {node.target}: not an operator")
        nodes.append(entry)
    return PlainGraph(nodes, tensors)


def _attribute(gm: nn.Module, path: str) -> torch.Tensor:
    owner, _, leaf = path.rpartition(".")
    value = getattr(gm.get_submodule(owner) if owner else gm, leaf)
    if not isinstance(value, torch.Tensor):
        raise PlainGraphError(f"{path} is not a tensor")
    return value


def _operator_name(target: Any) -> str:
    if target is operator.getitem:
        return "getitem"
    if not isinstance(target, torch._ops.OpOverload) or target.namespace != "aten":
        raise PlainGraphError(f"the graph uses {target}, which is not one of PyTorch's operators")
    return f"{target.overloadpacket.__name__}.{target._overloadname}"


def _encode(value: Any) -> Any:
    if isinstance(value, fx.Node):
        return {"node": value.name}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise PlainGraphError(f"an operator's argument is a {type(value).__name__}: not plain data")


# --- the server's side: plain data to a checked GraphModule ---------------------------------


def parse_plain(header: bytes, blob: bytes) -> PlainGraph:
    """Read the worker's answer, checking sizes before anything is built.

    Raises:
        PlainGraphError: Malformed, too deep, too many nodes, or tensors that are not floats.
    """
    if len(header) > MAX_HEADER_BYTES:
        raise PlainGraphError("the graph's description is too large")
    try:
        nodes = json.loads(header)
        tensors = load_tensors(blob)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise PlainGraphError(f"the converted graph is malformed ({type(exc).__name__})") from None
    if not isinstance(nodes, list) or not 0 < len(nodes) <= MAX_NODES:
        raise PlainGraphError(f"a graph of 1…{MAX_NODES:,} nodes is accepted")
    if any(t.dtype != torch.float32 for t in tensors.values()):
        raise PlainGraphError("the graph's tensors must be float32")
    return PlainGraph(nodes, tensors)


def from_plain(plain: PlainGraph) -> fx.GraphModule:
    """Build the network the plain graph describes, in eval mode, without gradients.

    Raises:
        PlainGraphError: Any node, name, operator or argument outside what is accepted.
    """
    root = nn.Module()
    graph = fx.Graph()
    made: dict[str, fx.Node] = {}
    for entry in plain.nodes:
        if not isinstance(entry, Mapping):
            raise PlainGraphError("a node is not an object")
        name = _checked(entry.get("name"), _NAME, "node name")
        if name in made:
            raise PlainGraphError(f"two nodes are named {name}")
        made[name] = _add_node(graph, root, plain.tensors, entry, made)
    outputs = [n for n in graph.nodes if n.op == "output"]
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(outputs) != 1 or len(placeholders) != 1:
        raise PlainGraphError("the graph must take one input and give one output")
    gm = fx.GraphModule(root, graph)
    _promote_layers(gm)
    return gm.eval().requires_grad_(False)


def _checked(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PlainGraphError(f"a {what} is not a plain name: {str(value)[:40]!r}")
    return value


def _add_node(
    graph: fx.Graph,
    root: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    entry: Mapping[str, Any],
    made: Mapping[str, fx.Node],
) -> fx.Node:
    op, name = entry.get("op"), str(entry["name"])
    if op == "placeholder":
        return graph.placeholder(name)
    if op == "get_attr":
        path = _checked(entry.get("target"), _PATH, "tensor name")
        if path not in tensors:
            raise PlainGraphError(f"{path} has no tensor")
        _set_tensor(root, path, tensors[path])
        return graph.get_attr(path)
    if op == "call_function":
        target = _operator(entry.get("target"))
        args = _decode(entry.get("args", []), made, 0)
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, Mapping) or not isinstance(args, list):
            raise PlainGraphError("an operator's arguments are not a list and a mapping")
        decoded = {
            _checked(k, _NAME, "argument name"): _decode(v, made, 0) for k, v in kwargs.items()
        }
        return graph.call_function(target, tuple(args), decoded, name=name)
    if op == "output":
        args = _decode(entry.get("args", []), made, 0)
        result = args[0] if isinstance(args, list) and len(args) == 1 else None
        while isinstance(result, list) and len(result) == 1:
            result = result[0]  # torch.export returns a tuple of one tensor
        if not isinstance(result, fx.Node):
            raise PlainGraphError("the graph must give one tensor of class scores")
        output: fx.Node = graph.output(result)
        return output
    raise PlainGraphError(f"a node of kind {str(op)[:20]!r} is not accepted")


def _set_tensor(root: nn.Module, path: str, tensor: torch.Tensor) -> None:
    owner = root
    *parents, leaf = path.split(".")
    for part in parents:
        child = getattr(owner, part, None)
        if child is None:
            child = nn.Module()
            owner.add_module(part, child)
        if not isinstance(child, nn.Module):
            raise PlainGraphError(f"{path} clashes with another tensor's name")
        owner = child
    if hasattr(owner, leaf):
        raise PlainGraphError(f"{path} clashes with another name")
    owner.register_buffer(leaf, tensor)


def _operator(name: Any) -> Any:
    if name == "getitem":
        return operator.getitem
    text = str(name)
    packet, _, overload = text.partition(".")
    if packet not in ALLOWED_OPERATORS or not _OVERLOAD.fullmatch(overload):
        raise PlainGraphError(
            f"the graph uses aten.{text[:60]}, which is not an operator of a CNN classifier "
            "(only layers, activations, pooling and shape operators are run here)"
        )
    try:
        return getattr(getattr(torch.ops.aten, packet), overload)
    except AttributeError:
        raise PlainGraphError(f"aten.{text[:60]} is not one of PyTorch's operators") from None


def _decode(value: Any, made: Mapping[str, fx.Node], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise PlainGraphError("an operator's argument is nested too deep")
    if isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise PlainGraphError("an operator's argument list is too long")
        return [_decode(v, made, depth + 1) for v in value]
    if isinstance(value, Mapping):
        if set(value) == {"node"} and value["node"] in made:
            return made[value["node"]]
        if set(value) == {"float"} and value["float"] in ("inf", "-inf", "nan"):
            return float(value["float"])
        raise PlainGraphError("an operator's argument refers to nothing known")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**40:
        raise PlainGraphError("an operator's argument is out of range")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and value in ("same", "valid", "none", "tanh"):
        return value  # conv2d's padding, gelu's approximation
    raise PlainGraphError("an operator's argument is not plain data")


def _promote_layers(gm: fx.GraphModule) -> None:
    """Turn ``conv2d``/``linear`` on the file's own parameters into modules of that name."""
    aten = torch.ops.aten
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in (
            aten.conv2d.default,
            aten.linear.default,
        ):
            continue
        weight, bias = ([*list(node.args[1:3]), None, None])[:2]
        if not _own_parameter(weight, ".weight") or (
            bias is not None and not _own_parameter(bias, ".bias")
        ):
            continue
        path = str(weight.target).removesuffix(".weight")
        if bias is not None and str(bias.target) != f"{path}.bias":
            continue
        module = _layer(
            node,
            gm.get_buffer(str(weight.target)),
            None if bias is None else gm.get_buffer(str(bias.target)),
        )
        if module is None:
            continue
        owner = gm.get_submodule(path) if path else None
        own_names = {"weight"} | ({"bias"} if bias is not None else set())
        if owner is None or set(dict(owner.named_buffers())) != own_names or list(owner.children()):
            continue  # the tensors' module holds more than this layer: leave it an operator
        _replace_module(gm, path, module)
        with gm.graph.inserting_before(node):
            replacement = gm.graph.call_module(path, (node.args[0],))
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
        for tensor_node in (weight, bias):
            if tensor_node is not None:
                gm.graph.erase_node(tensor_node)
    _promote_operators(gm)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()


def _promote_operators(gm: fx.GraphModule) -> None:
    """Turn pooling and ReLU operators into modules named like their nodes.

    Receptive fields read a pool's window from its module; Guided Backprop guides ReLU modules.
    """
    aten = torch.ops.aten
    kinds: dict[Any, tuple[type[nn.Module], tuple[str, ...]]] = {
        aten.relu.default: (nn.ReLU, ()),
        aten.relu_.default: (nn.ReLU, ()),
        aten.max_pool2d.default: (
            nn.MaxPool2d,
            ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
        ),
        aten.avg_pool2d.default: (
            nn.AvgPool2d,
            (
                "kernel_size",
                "stride",
                "padding",
                "ceil_mode",
                "count_include_pad",
                "divisor_override",
            ),
        ),
    }
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in kinds or hasattr(gm, node.name):
            continue
        kind, names = kinds[node.target]
        settings = dict(zip(names, node.args[1:], strict=False)) | dict(node.kwargs)
        if set(settings) - set(names) or settings.get("stride") == []:
            settings.pop("stride", None)  # ATen's empty stride means the kernel's size
        try:
            module = kind(**settings)
        except (TypeError, ValueError):
            continue
        gm.add_submodule(node.name, module)
        with gm.graph.inserting_before(node):
            replacement = gm.graph.call_module(node.name, (node.args[0],))
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)


def _replace_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, leaf, module)


def _own_parameter(node: Any, suffix: str) -> bool:
    return (
        isinstance(node, fx.Node)
        and node.op == "get_attr"
        and str(node.target).endswith(suffix)
        and len(node.users) == 1
    )


def _layer(node: fx.Node, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module | None:
    if node.target == torch.ops.aten.linear.default:
        if weight.ndim != 2 or len(node.args) > 3 or node.kwargs:
            return None
        layer: nn.Module = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        conv = _conv_settings(node.args[3:], node.kwargs, weight)
        if conv is None:
            return None
        layer = nn.Conv2d(**conv, bias=bias is not None)
    layer.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        layer.bias = nn.Parameter(bias, requires_grad=False)
    return layer


def _conv_settings(
    rest: Sequence[Any], kwargs: Mapping[str, Any], weight: torch.Tensor
) -> dict[str, Any] | None:
    names = ("stride", "padding", "dilation", "groups")
    values = dict(zip(names, rest, strict=False)) | dict(kwargs)
    if weight.ndim != 4 or set(values) - set(names):
        return None
    groups = int(values.get("groups", 1))
    return {
        "in_channels": weight.shape[1] * groups,
        "out_channels": weight.shape[0],
        "kernel_size": tuple(weight.shape[2:]),
        "stride": values.get("stride", 1),
        "padding": values.get("padding", 0),
        "dilation": values.get("dilation", 1),
        "groups": groups,
    }


# --- what a pass costs, worked out on fake tensors -----------------------------------------


@dataclass(frozen=True)
class PassCost:
    """What one pass of a batch of one produces and computes."""

    largest_node: int
    elements: int
    gflops: float


def check_cost(gm: fx.GraphModule, shape: tuple[int, int, int]) -> PassCost:
    """Every node's shape and the pass's FLOPs on fake tensors; refuse what is too large.

    Raises:
        PlainGraphError: A node or the whole pass over this server's limits, or a graph that
            does not run on ``shape``.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    counter = _SizeCounter(gm)
    with FakeTensorMode(allow_non_fake_inputs=True) as fake:
        x = fake.from_tensor(torch.zeros(1, *shape))
        flops = FlopCounterMode(display=False)
        try:
            with flops:
                counter.run(x)
        except PlainGraphError:
            raise
        except Exception as exc:
            text = " ".join(str(exc).split())[:200]
            raise PlainGraphError(
                f"the model does not run on a {'×'.join(map(str, shape))} input: {text}"
            ) from None
    gflops = flops.get_total_flops() / 1e9
    if gflops > MAX_PASS_GFLOPS:
        raise PlainGraphError(
            f"one pass takes {gflops:.0f} GFLOPs, over this server's {MAX_PASS_GFLOPS:g}"
        )
    return PassCost(counter.largest, counter.total, gflops)


class _SizeCounter(fx.Interpreter):
    """Runs a graph node by node, refusing a node or a pass that produces too many numbers."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.largest = 0
        self.total = 0

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n.op in ("placeholder", "get_attr", "output"):
            return result
        count = sum(t.numel() for t in _tensors(result))
        self.largest = max(self.largest, count)
        self.total += count
        if count > MAX_NODE_ELEMENTS:
            raise PlainGraphError(
                f"{n.name} makes {count:,} numbers for one input, over this server's "
                f"{MAX_NODE_ELEMENTS:,}"
            )
        if self.total > MAX_PASS_ELEMENTS:
            raise PlainGraphError(
                f"one pass makes over {MAX_PASS_ELEMENTS:,} numbers, this server's limit"
            )
        return result


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []
