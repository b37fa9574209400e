"""One-line captions and worked formulas for each stage of a network, with its own numbers.

Every view in the app carries a caption saying what the stage computes; the formula, filled
in with this layer's kernel, stride, padding and sizes, is one click away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from explorer.analysis.capture import LayerOutput
from explorer.analysis.geometry import output_size_numbers, pair


@dataclass(frozen=True)
class StageText:
    """What to say about one stage.

    Attributes:
        caption: One line: what the stage does, with its shapes.
        formula: Markdown with the formula and this layer's numbers (may be empty).
    """

    caption: str
    formula: str


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def describe_stage(
    layer: LayerOutput, source_shape: tuple[int, ...] | None, module: nn.Module | None
) -> StageText:
    """Caption and formula for ``layer``.

    Args:
        layer: The captured layer.
        source_shape: Shape of what fed it (no batch dimension), if known.
        module: The module that ran, if any (for kernel size, stride, padding).
    """
    stage = _Stage(layer, source_shape, module)
    describe = _DESCRIBERS.get(layer.kind)
    text = describe(stage) if describe is not None else None
    if text is None:  # another kind, or a module the kind's text does not know
        return StageText(f"{layer.op} ({layer.kind}) → {stage.out}", "")
    return text


@dataclass(frozen=True)
class _Stage:
    """What :func:`describe_stage` was given, with the sizes every text quotes."""

    layer: LayerOutput
    source_shape: tuple[int, ...] | None
    module: nn.Module | None

    @property
    def out(self) -> str:
        """The layer's shape, e.g. ``64×56×56``."""
        return _shape(self.layer.shape)

    @property
    def src(self) -> str:
        """The shape of what fed the layer (``?`` when unknown)."""
        return _shape(self.source_shape) if self.source_shape else "?"

    @property
    def source_height(self) -> int:
        """The height of what fed the layer (0 when unknown)."""
        return self.source_shape[-2] if self.source_shape else 0


def _conv(stage: _Stage) -> StageText | None:
    module = stage.module
    if not isinstance(module, nn.Conv2d):
        return None
    kh, kw = pair(module.kernel_size)
    sh, _ = pair(module.stride)
    ph, _ = pair(module.padding) if not isinstance(module.padding, str) else (0, 0)
    dh, _ = pair(module.dilation)
    cin = module.in_channels // module.groups
    caption = (
        f"{module.out_channels} filters of {cin}×{kh}×{kw} slide over the {stage.src} input "
        f"(stride {sh}, padding {ph}): each value = Σ(patch ⊙ kernel) + bias → {stage.out}"
    )
    formula = (
        f"**Convolution** (cross-correlation: the kernel is not flipped)\n\n"
        f"out[c, y, x] = b[c] + Σᵢ Σₘ Σₙ "
        f"in[i, {sh}y + m − {ph}, {sh}x + n − {ph}] · w[c, i, m, n]\n\n"
        f"Output size: {output_size_numbers(stage.source_height, kh, sh, ph, dh)} per side; "
        f"depth = number of filters = {module.out_channels}.\n\n"
        f"Weights: {module.weight.numel():,} + {module.out_channels} biases."
    )
    return StageText(caption, formula)


def _relu(stage: _Stage) -> StageText:
    zeros = stage.layer.stats()["zero_fraction"]
    return StageText(
        f"ReLU = max(0, x), element by element: {zeros:.0%} of the values are now 0 → {stage.out}",
        "**ReLU** keeps positive values and replaces every negative one with 0. "
        "Convolution is linear; this non-linearity is what lets the network learn "
        f"non-linear functions. Here {zeros:.1%} of the {stage.layer.tensor.numel():,} values "
        "are zero.",
    )


def _pool(stage: _Stage) -> StageText | None:
    module = stage.module
    if not isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return None
    kh, _ = pair(module.kernel_size)
    sh, _ = pair(module.stride)
    ph, _ = pair(module.padding)
    what = "largest" if isinstance(module, nn.MaxPool2d) else "mean"
    name = "Max" if isinstance(module, nn.MaxPool2d) else "Average"
    return StageText(
        f"{name} pooling {kh}×{kh}, stride {sh}: keeps the {what} value of each window, "
        f"map by map → {stage.src} becomes {stage.out}",
        f"**{name} pooling** has no weights. Each channel is pooled on its own (depth "
        f"unchanged). Output size: {output_size_numbers(stage.source_height, kh, sh, ph)} per "
        "side. It makes the maps smaller and more tolerant of small shifts.",
    )


def _flatten(stage: _Stage) -> StageText:
    return StageText(
        f"Flatten: the {stage.src} maps become one vector of {stage.layer.tensor.numel()} numbers",
        "**Flatten** only reorders: channel by channel, row by row. Nothing is computed.",
    )


def _linear(stage: _Stage) -> StageText | None:
    module = stage.module
    if not isinstance(module, nn.Linear):
        return None
    return StageText(
        f"Fully connected: each of the {module.out_features} units = w · x + b over all "
        f"{module.in_features} inputs → {stage.out}",
        f"**Fully connected** layer: out = W·x + b with W of {module.out_features}×"
        f"{module.in_features} = {module.weight.numel():,} weights. Every unit sees every "
        "input.",
    )


def _softmax(stage: _Stage) -> StageText:
    return StageText(
        "Softmax: e^zᵢ / Σⱼ e^zⱼ turns the scores into probabilities that sum to 1",
        "**Softmax** exponentiates each score and divides by the sum, so the values lie "
        "between 0 and 1 and add up to 1; the largest is the prediction.",
    )


def _norm(stage: _Stage) -> StageText:
    return StageText(
        f"Normalisation ({stage.layer.op}): learned scale and shift per channel → {stage.out}",
        "**Batch normalisation** (eval mode): (x − running mean) / √(running var + ε) · γ + β.",
    )


def _add(stage: _Stage) -> StageText:
    return StageText(
        f"Add: the shortcut is added to the block's output, element by element → {stage.out}",
        "**Residual connection**: the block learns a correction F(x) and outputs F(x) + x.",
    )


def _concat(stage: _Stage) -> StageText:
    return StageText(
        f"Concatenate: branches stacked along the channel axis → {stage.out}",
        "**Concatenation** (Inception): the branches' maps are stacked; depths add up.",
    )


_DESCRIBERS: dict[str, Callable[[_Stage], StageText | None]] = {
    "conv": _conv,
    "relu": _relu,
    "pool": _pool,
    "flatten": _flatten,
    "linear": _linear,
    "softmax": _softmax,
    "norm": _norm,
    "add": _add,
    "concat": _concat,
}
"""The text of each layer kind; None from one means the module is not one it explains."""
