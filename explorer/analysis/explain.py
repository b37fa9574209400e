"""The arithmetic behind one clicked unit, and the patch of the input it can see.

:func:`explain_unit` recomputes a conv unit from its source patch (products, bias, total) or
a pool unit from its window (the winner of a max, the divisor of a mean), in float64, next
to the value the capture recorded. :func:`receptive_field` back-projects a unit through the
layer graph of :func:`explorer.analysis.capture.list_layers` to the box of input pixels that can
influence it; residual and concatenated branches contribute the union of their boxes.
"""

from __future__ import annotations

import operator
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.analysis.capture import INPUT_NAME, CaptureResult, LayerInfo, LayerOutput, list_layers
from explorer.analysis.geometry import Box, output_size, pair

_PASS_THROUGH_KINDS = frozenset({"relu", "activation", "dropout", "add", "mul", "concat"})
"""Kinds whose output at (y, x) reads only (y, x) of every input."""

_SPATIAL_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LocalResponseNorm,
)
"""Norms that mix no positions (BatchNorm in eval mode; LRN mixes channels only)."""


@dataclass(frozen=True, eq=False)
class _Unit:
    """Where an explained unit lies and what it read: the fields every kind of unit starts with.

    Attributes:
        layer: The layer's name.
        channel: Output channel.
        y: Output row.
        x: Output column.
        source: The layer (or ``"input"``) the layer read.
        box: The unit's footprint in the source map, before clipping (dilation included).
    """

    layer: str
    channel: int
    y: int
    x: int
    source: str
    box: Box


@dataclass(frozen=True, eq=False)
class ConvUnit(_Unit):
    """One conv output value, recomputed from the source patch under its filter.

    Its :class:`_Unit` fields name the conv layer, the output channel (the filter) and the
    position; ``box`` is the kernel's footprint in the source map (dilation included).

    Attributes:
        in_channels: Source channels the filter reads (one group's for grouped convs).
        patch: ``(C_in_group, kh, kw)`` source values under the kernel taps, 0 in the padding.
        kernel: ``(C_in_group, kh, kw)`` weights of the filter.
        products: ``patch * kernel``.
        bias: The filter's bias (0 without one).
        total: ``products.sum() + bias`` in float64.
        captured: The value the capture recorded.
    """

    in_channels: tuple[int, ...]
    patch: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    bias: float
    total: float
    captured: float


@dataclass(frozen=True, eq=False)
class PoolUnit(_Unit):
    """One pool output value, recomputed from its window.

    Its :class:`_Unit` fields name the pool layer, the channel (pools work on each map
    separately) and the position; ``box`` is the window's footprint in the source map.

    Attributes:
        op: ``"max"`` or ``"avg"``.
        window: ``(kh, kw)`` source values; padding is NaN for max, 0 for avg.
        winner: ``(row, col)`` inside the window of the max (the first one, as torch picks),
            ``None`` for avg.
        divisor: What the avg pool divided the window's sum by (torch's
            ``count_include_pad``/``divisor_override`` rules), ``None`` for max.
        value: The recomputed max or mean, in float64.
        captured: The value the capture recorded.
    """

    op: str
    window: np.ndarray
    winner: tuple[int, int] | None
    divisor: int | None
    value: float
    captured: float


# --- window geometry ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """How a sliding window maps an output index to source indices along one axis."""

    kernel: int
    stride: int
    padding: int  # before the first element
    padding_after: int
    dilation: int = 1

    def first(self, index: int) -> int:
        """Source index of the window's first tap (negative inside the padding)."""
        return index * self.stride - self.padding

    def taps(self, index: int) -> np.ndarray:
        """Source indices of every tap of the window at output ``index``."""
        return self.first(index) + np.arange(self.kernel) * self.dilation

    def back(self, lo: int, hi: int) -> tuple[int, int]:
        """Source interval read by outputs ``lo..hi`` (inclusive)."""
        return self.first(lo), self.first(hi) + (self.kernel - 1) * self.dilation

    def out_size(self, size: int, ceil_mode: bool = False) -> int:
        """Output length for a source of ``size`` (torch's formula)."""
        padding = (self.padding, self.padding_after)
        return output_size(size, self.kernel, self.stride, padding, self.dilation, ceil_mode)


def _conv_axes(conv: nn.Conv2d) -> tuple[_Axis, _Axis]:
    axes = []
    for i in range(2):
        kernel, stride, dilation = conv.kernel_size[i], conv.stride[i], conv.dilation[i]
        if conv.padding == "valid":
            before = after = 0
        elif conv.padding == "same":
            total = dilation * (kernel - 1)
            before, after = total // 2, total - total // 2  # torch pads the odd one after
        else:
            before = after = int(conv.padding[i])
        axes.append(_Axis(kernel, stride, before, after, dilation))
    return axes[0], axes[1]


def _pool_axes(pool: nn.MaxPool2d | nn.AvgPool2d) -> tuple[_Axis, _Axis]:
    kernel = pair(pool.kernel_size)
    stride = pair(pool.stride or pool.kernel_size)
    padding = pair(pool.padding)
    dilation = pair(pool.dilation) if isinstance(pool, nn.MaxPool2d) else (1, 1)
    rows, cols = (_Axis(kernel[i], stride[i], padding[i], padding[i], dilation[i]) for i in (0, 1))
    return rows, cols


def _box(rows: _Axis, cols: _Axis, y: int, x: int) -> Box:
    top, bottom = rows.back(y, y)
    left, right = cols.back(x, x)
    return Box(top, left, bottom + 1, right + 1)


def _gather(
    source: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``source[..., rows, cols]`` (outer product) and where they are inside."""
    height, width = source.shape[-2:]
    inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    values = source[..., np.clip(rows, 0, height - 1)[:, None], np.clip(cols, 0, width - 1)]
    return np.where(inside, values, fill), inside


# --- explain_unit --------------------------------------------------------------------------


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy().copy()


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _check_unit(out: LayerOutput, channel: int, y: int, x: int) -> None:
    if out.tensor.dim() != 3:
        raise ValueError(f"{out.name!r} is not a (C, H, W) map: its shape is {out.shape}")
    shape = out.shape
    if not all(0 <= i < n for i, n in zip((channel, y, x), shape, strict=True)):
        raise ValueError(
            f"unit (channel={channel}, y={y}, x={x}) is outside {out.name!r}, whose map is "
            f"{shape[0]} channels × {shape[1]} rows × {shape[2]} columns"
        )


def _source(result: CaptureResult, out: LayerOutput) -> tuple[str, np.ndarray]:
    if len(out.inputs) != 1:
        raise ValueError(f"{out.name!r} reads {len(out.inputs)} layers, expected one")
    name = out.inputs[0]
    if name == INPUT_NAME:
        tensor = result.input
    elif name in result:
        tensor = result[name].tensor
    else:
        raise ValueError(
            f"{out.name!r} reads {name!r}, which this capture left out: capture {name!r} too "
            "(or every layer)"
        )
    if tensor.dim() != 3:
        raise ValueError(f"{out.name!r} reads {name!r}, which is not a (C, H, W) map")
    return name, _float64(tensor)


def _check_feeds(
    out: LayerOutput, source: str, values: np.ndarray, channels: int, sizes: tuple[int, int]
) -> None:
    """Refuse when the captured source cannot be what the layer read (an op in between)."""
    if (values.shape[0], *sizes) != (channels, *out.shape[1:]):
        raise ValueError(
            f"{source!r} (shape {values.shape}) does not feed {out.name!r} (shape {out.shape}) "
            "directly: an uncaptured op sits in between"
        )


def _explain_conv(
    conv: nn.Conv2d, result: CaptureResult, out: LayerOutput, channel: int, y: int, x: int
) -> ConvUnit:
    if conv.padding_mode != "zeros":
        raise ValueError(
            f"{out.name!r} pads with {conv.padding_mode!r}; only zero padding is explained"
        )
    source, values = _source(result, out)
    rows, cols = _conv_axes(conv)
    sizes = (rows.out_size(values.shape[1]), cols.out_size(values.shape[2]))
    _check_feeds(out, source, values, conv.in_channels, sizes)
    per_group = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    in_channels = tuple(range(group * per_group, (group + 1) * per_group))
    patch, _ = _gather(values[in_channels[0] : in_channels[-1] + 1], rows.taps(y), cols.taps(x), 0)
    kernel = _float64(conv.weight[channel])
    bias = float(conv.bias[channel].detach()) if conv.bias is not None else 0.0
    products = patch * kernel
    return ConvUnit(  # the _Unit fields first: where the unit lies and what it read
        out.name,
        channel,
        y,
        x,
        source,
        _box(rows, cols, y, x),
        in_channels=in_channels,
        patch=_frozen(patch),
        kernel=_frozen(kernel),
        products=_frozen(products),
        bias=bias,
        total=float(products.sum() + bias),
        captured=float(out.tensor[channel, y, x]),
    )


def _explain_pool(
    pool: nn.MaxPool2d | nn.AvgPool2d,
    result: CaptureResult,
    out: LayerOutput,
    channel: int,
    y: int,
    x: int,
) -> PoolUnit:
    source, values = _source(result, out)
    rows, cols = _pool_axes(pool)
    sizes = (
        rows.out_size(values.shape[1], pool.ceil_mode),
        cols.out_size(values.shape[2], pool.ceil_mode),
    )
    _check_feeds(out, source, values, out.shape[0], sizes)
    is_max = isinstance(pool, nn.MaxPool2d)
    window, inside = _gather(values[channel], rows.taps(y), cols.taps(x), np.nan if is_max else 0)
    winner: tuple[int, int] | None = None
    divisor: int | None = None
    if is_max:
        # np.argmax returns the first maximum (torch scans in the same order) and, like
        # torch, lets a NaN in the data win; padding never wins.
        candidates = np.where(inside, window, -np.inf)
        flat = int(np.argmax(candidates))
        winner = (flat // window.shape[1], flat % window.shape[1])
        value = float(candidates[winner])
    else:
        divisor = _avg_divisor(pool, rows, cols, y, x, values.shape[1], values.shape[2])  # type: ignore[arg-type]
        value = float(window.sum() / divisor)
    return PoolUnit(  # the _Unit fields first: where the unit lies and what it read
        out.name,
        channel,
        y,
        x,
        source,
        _box(rows, cols, y, x),
        op="max" if is_max else "avg",
        window=_frozen(window),
        winner=winner,
        divisor=divisor,
        value=value,
        captured=float(out.tensor[channel, y, x]),
    )


def _avg_divisor(
    pool: nn.AvgPool2d, rows: _Axis, cols: _Axis, y: int, x: int, height: int, width: int
) -> int:
    """What torch divides an avg-pool window's sum by."""
    if pool.divisor_override:
        return int(pool.divisor_override)
    counts = []
    for axis, index, size in ((rows, y, height), (cols, x, width)):
        start = axis.first(index)
        end = min(start + axis.kernel, size + axis.padding)  # ceil_mode windows stop here
        if not pool.count_include_pad:
            start, end = max(start, 0), min(end, size)
        counts.append(end - start)
    return counts[0] * counts[1]


def explain_unit(
    model: nn.Module, result: CaptureResult, layer: str, channel: int, y: int, x: int
) -> ConvUnit | PoolUnit:
    """Recompute one unit of a Conv2d, MaxPool2d or AvgPool2d layer from its source.

    Args:
        model: The model that produced ``result`` (for the weights and the geometry).
        result: A capture holding ``layer`` and the layer (or input) it reads.
        layer: The layer's name.
        channel: Output channel.
        y: Output row.
        x: Output column.

    Returns:
        A :class:`ConvUnit` or a :class:`PoolUnit`, with the recomputed and captured values.

    Raises:
        ValueError: another kind of layer, a unit outside the map, the source not captured,
            or a conv padding mode other than zeros.
    """
    channel, y, x = operator.index(channel), operator.index(y), operator.index(x)
    try:
        out = result[layer]
    except KeyError:
        raise ValueError(f"layer {layer!r} is not in this capture") from None
    module = model.get_submodule(out.module) if out.module is not None else None
    if not (
        (out.kind == "conv" and isinstance(module, nn.Conv2d))
        or (out.kind == "pool" and isinstance(module, nn.MaxPool2d | nn.AvgPool2d))
    ):
        raise ValueError(
            f"only Conv2d, MaxPool2d and AvgPool2d units can be explained; {layer!r} is a "
            f"{out.kind} layer ({out.op})"
        )
    _check_unit(out, channel, y, x)
    if isinstance(module, nn.Conv2d):
        return _explain_conv(module, result, out, channel, y, x)
    assert isinstance(module, nn.MaxPool2d | nn.AvgPool2d)
    return _explain_pool(module, result, out, channel, y, x)


# --- receptive field -----------------------------------------------------------------------


class UnknownField(ValueError):
    """A receptive field that the layer graph does not let us compute (said plainly)."""


@dataclass(frozen=True)
class _Step:
    """How one layer's output positions depend on its inputs' positions."""

    inputs: tuple[str, ...]
    kind: str
    axes: tuple[_Axis, _Axis] | None  # None: position (y, x) reads (y, x) of every input
    whole: bool  # every output value can depend on every input position
    known: bool = True  # False: a conv or pool whose kernel and stride are not known here


def _step(model: nn.Module, info: LayerInfo) -> _Step:
    module = model.get_submodule(info.module) if info.module is not None else None
    axes: tuple[_Axis, _Axis] | None = None
    whole = False
    if info.kind == "conv" and isinstance(module, nn.Conv2d):
        whole = module.padding_mode == "circular"  # wraps the far edge round
        axes = _conv_axes(module)
    elif info.kind == "pool" and isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        axes = _pool_axes(module)
    elif info.kind == "norm":
        # LayerNorm, GroupNorm and InstanceNorm normalise by statistics of the whole map.
        whole = not (isinstance(module, _SPATIAL_NORMS) or info.op == "batch_norm")
    elif info.kind not in _PASS_THROUGH_KINDS and not isinstance(module, nn.Identity):
        whole = True  # adaptive pools, flatten, linear, softmax, ops we cannot see into
    # A functional conv or pool (a torch.export graph's operators): its kernel is not known.
    known = not (info.kind in ("conv", "pool") and module is None)
    whole = whole or not known
    return _Step(info.inputs, info.kind, axes, whole, known)


class _Plan:
    """A model's layer graph reduced to what receptive fields need, with memoised answers."""

    _MAX_CACHED = 65536

    def __init__(self, model: nn.Module) -> None:
        layers = list_layers(model)
        self.order = [info.name for info in layers]
        self.position = {name: i for i, name in enumerate(self.order)}
        self.steps = {info.name: _step(model, info) for info in layers}
        self._cache: dict[tuple[str, int, int], tuple[tuple[int, int], str | None]] = {}

    def interval(self, layer: str, axis: int, index: int) -> tuple[tuple[int, int], str | None]:
        """The input interval that unit ``index`` of ``layer`` reads along ``axis``.

        Returns:
            The interval (inclusive), and the first layer met that makes the unit depend on
            the whole input (or ``None``).
        """
        key = (layer, axis, index)
        found = self._cache.get(key)
        if found is None:
            found = self._back_project(layer, axis, index)
            if len(self._cache) >= self._MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _back_project(
        self, layer: str, axis: int, index: int
    ) -> tuple[tuple[int, int], str | None]:
        # One pass in reverse execution order: every consumer of a layer runs after it, so
        # its interval is complete (the hull of what each consumer reads) when it is
        # reached. Back-projection maps interval ends monotonically, so hulls commute with
        # it, and branches that split and merge again cost nothing extra.
        needed = {layer: (index, index)}
        whole: str | None = None
        for name in reversed(self.order[: self.position[layer] + 1]):
            span = needed.pop(name, None)
            if span is None:
                continue
            step = self.steps[name]
            if step.whole:
                whole = whole or name
                continue
            if step.axes is not None:
                span = step.axes[axis].back(*span)
            for source in step.inputs:
                old = needed.get(source, span)
                needed[source] = (min(old[0], span[0]), max(old[1], span[1]))
        if INPUT_NAME not in needed and whole is None:
            raise ValueError(f"{layer!r} does not depend on the input")
        return needed.get(INPUT_NAME, (0, 0)), whole


_PLANS: weakref.WeakKeyDictionary[nn.Module, _Plan] = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()


def _plan(model: nn.Module) -> _Plan:
    with _PLANS_LOCK:
        plan = _PLANS.get(model)
        if plan is None:
            plan = _Plan(model)
            _PLANS[model] = plan
        return plan


def receptive_field(
    model: nn.Module,
    layer: str,
    y: int,
    x: int,
    input_size: tuple[int, int] | None = None,
) -> Box:
    """The box of input pixels that can influence unit ``(y, x)`` of ``layer`` (any channel).

    Convs and max/avg pools widen the box by their kernel, stride, padding and dilation;
    element-wise layers pass it on to every input, and branches that merge (a residual
    ``add``, a channel ``concat``) give the union of their boxes. Layers that mix every
    position (adaptive pools, flatten, linear, softmax, layer/group norms) make it the
    whole input. Ops the capture does not list (slicing, interpolation) count as
    element-wise; BatchNorm is taken in eval mode.

    Args:
        model: The model (its layer graph comes from :func:`explorer.analysis.capture.list_layers`).
        layer: A layer name, or ``"input"``.
        y: Row of the unit in the layer's map.
        x: Column of the unit in the layer's map.
        input_size: The input's ``(height, width)``; needed when the answer is the whole
            input.

    Returns:
        The box before clipping (it may reach into the padding); ``Box(0, 0, H, W)`` when
        the unit sees the whole input.

    Raises:
        UnknownField: a conv or pool on the way is an operator without a module.
        ValueError: an unknown layer, a negative index, or a whole-input answer without
            ``input_size``.
    """
    y, x = operator.index(y), operator.index(x)
    if y < 0 or x < 0:
        raise ValueError(f"unit (y={y}, x={x}) has a negative index")
    if layer == INPUT_NAME:
        return Box(y, x, y + 1, x + 1)
    plan = _plan(model)
    if layer not in plan.position:
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}")
    (top, bottom), whole = plan.interval(layer, 0, y)
    (left, right), _ = plan.interval(layer, 1, x)
    if whole is None:
        return Box(top, left, bottom + 1, right + 1)
    if not plan.steps[whole].known:
        raise UnknownField(
            f"the receptive field of {layer!r} is not known here: {whole!r} is a "
            f"{plan.steps[whole].kind} operator whose kernel and stride the graph does not "
            "expose as a module (a torch.export program; an ONNX export shows them)"
        )
    if input_size is None:
        step = plan.steps[whole]
        raise ValueError(
            f"every unit of {layer!r} sees the whole input (through {whole!r}, a {step.kind} "
            "layer): pass input_size"
        )
    return Box(0, 0, int(input_size[0]), int(input_size[1]))


def receptive_field_size(
    model: nn.Module, layer: str, input_size: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The ``(height, width)`` of a unit's receptive field before clipping.

    It is the same for every unit of the layer (the input size when a unit sees the whole
    input, which needs ``input_size``).
    """
    box = receptive_field(model, layer, 0, 0, input_size)
    return box.height, box.width
