"""A model's architecture as a table: every captured layer with its hyper-parameters and costs.

One row per layer, in execution order: name, kind, kernel, stride, padding, output shape,
learnable parameters, receptive field and multiply-adds. Parameters are counted once per
module (a reused ReLU costs nothing the second time); multiply-adds are those of the conv
and linear layers, the ones that dominate a CNN's cost (norms, pools and element-wise ops
are listed with 0).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from torch import nn

from explorer.analysis.capture import CaptureResult, LayerOutput
from explorer.analysis.explain import receptive_field_size

_KERNEL_MODULES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class ArchitectureRow:
    """One layer of :func:`architecture_table`."""

    name: str
    kind: str
    op: str
    kernel: str
    stride: str
    padding: str
    output_shape: str
    parameters: int
    receptive_field: str
    mult_adds: int


@dataclass(frozen=True)
class ArchitectureTotals:
    """Sums over the table and the model's own parameter count, to compare."""

    layers: int
    parameters: int
    model_parameters: int
    mult_adds: int

    @property
    def unlisted_parameters(self) -> int:
        """Parameters of modules that no captured layer ran (0 for every zoo model)."""
        return self.model_parameters - self.parameters


def _pair_text(value: int | tuple[int, ...] | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value}×{value}"
    values = tuple(value)
    return "×".join(str(v) for v in values) if len(set(values)) > 1 else f"{values[0]}×{values[0]}"


def _hyper_parameters(module: nn.Module | None) -> tuple[str, str, str]:
    """Kernel, stride and padding of a conv or pool module as text ("—" where none)."""
    if isinstance(module, _KERNEL_MODULES):
        kernel = _pair_text(module.kernel_size)
        stride = _pair_text(module.stride)
        padding = _pair_text(module.padding)
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            kernel += f" ({module.groups} groups)"
        return kernel, stride, padding
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return f"adaptive → {_pair_text(module.output_size)}", "—", "—"  # type: ignore[arg-type]
    return "—", "—", "—"


def _mult_adds(module: nn.Module | None, layer: LayerOutput) -> int:
    """Multiply-adds of one conv or linear layer for one input (0 for anything else)."""
    outputs = math.prod(layer.shape)
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return outputs * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return outputs * module.in_features
    return 0


def _receptive_field_text(model: nn.Module, layer: LayerOutput, input_hw: tuple[int, int]) -> str:
    if len(layer.shape) != 3:
        return "whole input"
    try:
        height, width = receptive_field_size(model, layer.name, input_hw)
    except ValueError:
        return "—"
    return f"{height}×{width}"


def architecture_table(
    model: nn.Module, result: CaptureResult, input_hw: tuple[int, int]
) -> list[ArchitectureRow]:
    """Every captured layer of ``result`` with its hyper-parameters, size and costs.

    Args:
        model: The model that produced ``result``.
        result: A capture of every layer (its shapes are the output shapes).
        input_hw: The input's ``(height, width)`` (receptive fields that see all of it).
    """
    seen: set[str] = set()
    rows = []
    for layer in result.layers:
        module = model.get_submodule(layer.module) if layer.module is not None else None
        parameters = 0
        if module is not None and layer.module not in seen:
            seen.add(layer.module)  # type: ignore[arg-type]
            parameters = sum(p.numel() for p in module.parameters())
        kernel, stride, padding = _hyper_parameters(module)
        rows.append(
            ArchitectureRow(
                name=layer.name,
                kind=layer.kind,
                op=layer.op,
                kernel=kernel,
                stride=stride,
                padding=padding,
                output_shape=" × ".join(str(s) for s in layer.shape),
                parameters=parameters,
                receptive_field=_receptive_field_text(model, layer, input_hw),
                mult_adds=_mult_adds(module, layer),
            )
        )
    return rows


def architecture_totals(model: nn.Module, rows: Sequence[ArchitectureRow]) -> ArchitectureTotals:
    """Sum the table's parameters and multiply-adds; count the model's parameters directly."""
    return ArchitectureTotals(
        layers=len(rows),
        parameters=sum(row.parameters for row in rows),
        model_parameters=sum(p.numel() for p in model.parameters()),
        mult_adds=sum(row.mult_adds for row in rows),
    )


def architecture_csv(rows: Sequence[ArchitectureRow]) -> str:
    """The table as CSV text, a header row first."""
    buffer = io.StringIO()
    fields = list(ArchitectureRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def human_count(value: int | float) -> str:
    """``11689512`` → ``"11.7 M"``; small numbers unchanged."""
    value = float(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f}"


__all__ = [
    "ArchitectureRow",
    "ArchitectureTotals",
    "architecture_csv",
    "architecture_table",
    "architecture_totals",
    "human_count",
]
