"""One-line captions and worked formulas for each stage of a network, with its own numbers.

Every view in the app carries a caption saying what the stage computes; the formula, filled
in with this layer's kernel, stride, padding and sizes, is one click away.
"""

from __future__ import annotations

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
    out = _shape(layer.shape)
    src = _shape(source_shape) if source_shape else "?"
    stats = layer.stats()
    if layer.kind == "conv" and isinstance(module, nn.Conv2d):
        kh, kw = pair(module.kernel_size)
        sh, _ = pair(module.stride)
        ph, _ = pair(module.padding) if not isinstance(module.padding, str) else (0, 0)
        dh, _ = pair(module.dilation)
        cin = module.in_channels // module.groups
        caption = (
            f"{module.out_channels} filters of {cin}×{kh}×{kw} slide over the {src} input "
            f"(stride {sh}, padding {ph}): each value = Σ(patch ⊙ kernel) + bias → {out}"
        )
        height = source_shape[-2] if source_shape else 0
        formula = (
            f"**Convolution** (cross-correlation: the kernel is not flipped)\n\n"
            f"out[c, y, x] = b[c] + Σᵢ Σₘ Σₙ "
            f"in[i, {sh}y + m − {ph}, {sh}x + n − {ph}] · w[c, i, m, n]\n\n"
            f"Output size: {output_size_numbers(height, kh, sh, ph, dh)} per side; "
            f"depth = number of filters = {module.out_channels}.\n\n"
            f"Weights: {module.weight.numel():,} + {module.out_channels} biases."
        )
        return StageText(caption, formula)
    if layer.kind == "relu":
        zeros = stats["zero_fraction"]
        return StageText(
            f"ReLU = max(0, x), element by element: {zeros:.0%} of the values are now 0 → {out}",
            "**ReLU** keeps positive values and replaces every negative one with 0. "
            "Convolution is linear; this non-linearity is what lets the network learn "
            f"non-linear functions. Here {zeros:.1%} of the {layer.tensor.numel():,} values "
            "are zero.",
        )
    if layer.kind == "pool" and isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kh, _ = pair(module.kernel_size)
        sh, _ = pair(module.stride)
        ph, _ = pair(module.padding)
        what = "largest" if isinstance(module, nn.MaxPool2d) else "mean"
        name = "Max" if isinstance(module, nn.MaxPool2d) else "Average"
        height = source_shape[-2] if source_shape else 0
        return StageText(
            f"{name} pooling {kh}×{kh}, stride {sh}: keeps the {what} value of each window, "
            f"map by map → {src} becomes {out}",
            f"**{name} pooling** has no weights. Each channel is pooled on its own (depth "
            f"unchanged). Output size: {output_size_numbers(height, kh, sh, ph)} per side. "
            "It makes the maps smaller and more tolerant of small shifts.",
        )
    if layer.kind == "flatten":
        return StageText(
            f"Flatten: the {src} maps become one vector of {layer.tensor.numel()} numbers",
            "**Flatten** only reorders: channel by channel, row by row. Nothing is computed.",
        )
    if layer.kind == "linear" and isinstance(module, nn.Linear):
        return StageText(
            f"Fully connected: each of the {module.out_features} units = w · x + b over all "
            f"{module.in_features} inputs → {out}",
            f"**Fully connected** layer: out = W·x + b with W of {module.out_features}×"
            f"{module.in_features} = {module.weight.numel():,} weights. Every unit sees every "
            "input.",
        )
    if layer.kind == "softmax":
        return StageText(
            "Softmax: e^zᵢ / Σⱼ e^zⱼ turns the scores into probabilities that sum to 1",
            "**Softmax** exponentiates each score and divides by the sum, so the values lie "
            "between 0 and 1 and add up to 1; the largest is the prediction.",
        )
    if layer.kind == "norm":
        return StageText(
            f"Normalisation ({layer.op}): learned scale and shift per channel → {out}",
            "**Batch normalisation** (eval mode): (x − running mean) / √(running var + ε) · γ + β.",
        )
    if layer.kind == "add":
        return StageText(
            f"Add: the shortcut is added to the block's output, element by element → {out}",
            "**Residual connection**: the block learns a correction F(x) and outputs F(x) + x.",
        )
    if layer.kind == "concat":
        return StageText(
            f"Concatenate: branches stacked along the channel axis → {out}",
            "**Concatenation** (Inception): the branches' maps are stacked; depths add up.",
        )
    return StageText(f"{layer.op} ({layer.kind}) → {out}", "")
