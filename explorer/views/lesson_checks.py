"""The Lessons page's checks: is the student's action (or number) right? Pure functions.

Every check kind (:data:`CHECKS`) says which live view it reads, whether the student types
a number, and which parameters a lesson file gives it; its function reads the live view
(:mod:`explorer.views.lesson_live`) and computes the right answer with the library
(:func:`explorer.analysis.geometry.output_size`, the capture, :func:`maths.activate`…),
never from a number written in the lesson. A check whose question assumes settings (a
kernel, a stride, an activation) is given them by the lesson file and says what to set
while the live view differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from explorer.analysis import geometry
from explorer.figures.describe import number_text
from explorer.figures.style import shape_text
from explorer.lab import maths
from explorer.views.lesson_live import (
    ActivationLive,
    ConvLive,
    ExperimentLive,
    ModelLive,
    PoolLive,
    experiment_live,
    parameter_count,
    strongest_channel,
)

TOLERANCE = 1e-3
"""How close a typed number must be to a non-integer answer (the page shows 4 decimals)."""
REQUIRED = object()
"""A parameter's default when a lesson file must give it."""
T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """The answer to "is it right?": right or wrong, and what to tell the student."""

    correct: bool
    message: str


@dataclass(frozen=True)
class Param:
    """One parameter a lesson file gives a view or a check.

    Attributes:
        kind: ``int``, ``str`` or ``list`` (of ints or strings).
        default: Its value when the file leaves it out (:data:`REQUIRED`: it must give it).
        choices: The values allowed (for a list: its items), or None for any.
        low: The smallest allowed int (or list item).
        high: The largest allowed int (or list item).
        about: What it means, for the error messages.
    """

    kind: type
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None
    low: int | None = None
    high: int | None = None
    about: str = ""


@dataclass(frozen=True)
class CheckKind:
    """A kind of question: the live view it reads and how it decides.

    Attributes:
        view: The live view kind it needs (a key of ``explorer.views.lessons.VIEW_PARAMS``).
        answer: Whether the student types a number.
        params: What a lesson file gives it; one named ``layer`` is a layer of the view's
            model (checked when the lesson is loaded).
        run: ``run(params, live, answer) → Verdict``.
    """

    view: str
    answer: bool
    run: Callable[[Mapping[str, Any], Any, float | None], Verdict]
    params: dict[str, Param] = field(default_factory=dict)


def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else number_text(value, maths.DECIMALS)


def _same(answer: float | None, right: float) -> bool:
    if answer is None or not math.isfinite(answer):
        return False
    return abs(answer - right) <= (0 if float(right).is_integer() else TOLERANCE)


def _typed(answer: float | None) -> str:
    return "nothing" if answer is None else _number(answer)


def _live(live: object, kind: type[T]) -> T:
    if not isinstance(live, kind):
        raise TypeError(f"this check reads a {kind.__name__}, got {type(live).__name__}")
    return live


def _set_first(params: Mapping[str, Any], settings: Mapping[str, Any]) -> Verdict | None:
    """A wrong verdict naming the first setting that differs from the one the question asks."""
    for name, value in settings.items():
        want = params.get(name)
        if want is not None and value != want:
            return Verdict(False, f"First set the {name} to {want} (it is {value}).")
    return None


# --- the grid checks --------------------------------------------------------------------


def conv_value(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The kernel, stride and padding asked for are set; the number is ``output[row, col]``."""
    conv = _live(live, ConvLive)
    settings = {"kernel": conv.kernel_name, "stride": conv.stride, "padding": conv.padding}
    if unset := _set_first(params, settings):
        return unset
    row, col = params["row"], params["col"]
    rows, cols = conv.result.output.shape
    if row >= rows or col >= cols:
        return Verdict(False, f"This output is {rows}×{cols}: it has no [{row}, {col}].")
    step = conv.result.step(row, col)
    if _same(answer, step.value):
        return Verdict(True, f"Right: output[{row}, {col}] = {step.equation() or ''}.")
    return Verdict(False, f"Not quite: you typed {_typed(answer)}.")


def conv_size(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The settings asked for are set, and the typed number is the output's width (height)."""
    conv = _live(live, ConvLive)
    if unset := _set_first(params, {"stride": conv.stride, "padding": conv.padding}):
        return unset
    axis = 0 if params["axis"] == "height" else 1
    size, kernel = conv.image.shape[axis], conv.result.kernel.shape[1 + axis]
    pad = maths.padding_amounts(size, kernel, conv.stride, conv.padding)
    right = geometry.output_size(size, kernel, conv.stride, pad)
    if _same(answer, right):
        formula = geometry.output_size_formula(size, kernel, conv.stride, pad)
        return Verdict(True, f"Right: the {params['axis']} is {formula}.")
    return Verdict(False, f"Not quite: you typed {_typed(answer)}.")


def rectified(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The activation asked for is set; no value is negative and every positive one is kept."""
    activated = _live(live, ActivationLive)
    shown = activated.shown
    negatives = maths.count_negative(shown.after)
    if negatives:
        return Verdict(False, f"{negatives} values of the output are still negative.")
    positive = shown.before > 0
    if not (abs(shown.after[positive] - shown.before[positive]) <= 1e-12).all():
        return Verdict(
            False,
            f"No value is negative, but {shown.label} changed the positive values too.",
        )
    if activated.activation != params["activation"]:
        # e.g. "none" on a map with no negatives: the numbers cannot tell it from ReLU
        return Verdict(
            False,
            f"{shown.label} leaves this map as it is: it has no negative values to tell the "
            "activations apart. Pick the one that would set them to 0.",
        )
    return Verdict(True, f"Right: {shown.label} sets the negatives to 0 and keeps the rest.")


def pooled_shape(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The student's pooling makes the map the asked-for shape (with the mode asked for)."""
    pool = _live(live, PoolLive)
    want = tuple(params["shape"])
    if pool.pooled is None:
        return Verdict(False, f"That window does not fit: {pool.problem}.")
    if params["mode"] is not None and pool.pooled.mode != params["mode"]:
        return Verdict(False, f"Use {params['mode']} pooling.")
    got = pool.pooled.output.shape
    if got != want:
        return Verdict(False, f"The pooled map is {shape_text(got)}, not {shape_text(want)}.")
    rows, _ = pool.pooled.formulas()
    return Verdict(True, f"Right: {shape_text(pool.input.shape)} → {shape_text(got)} ({rows}).")


# --- the model checks -------------------------------------------------------------------


def layer_shape(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The picked layer's output has the asked-for shape."""
    model = _live(live, ModelLive)
    want, got = tuple(params["shape"]), model.row(model.layer).shape
    if got == want:
        return Verdict(True, f"Right: {model.layer} gives {shape_text(got)}.")
    return Verdict(False, f"{model.layer} gives {shape_text(got)}, not {shape_text(want)}.")


def receptive_field(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The picked layer is the first whose units see at least ``at_least`` pixels a side."""
    model = _live(live, ModelLive)
    least = params["at_least"]
    first = next((row for row in model.rows if min(row.field) >= least), None)
    picked = model.row(model.layer)
    seen = shape_text(picked.field)
    if first is not None and picked.name == first.name:
        return Verdict(True, f"Right: a unit of {picked.name} sees {seen} input pixels.")
    if min(picked.field) >= least:
        return Verdict(False, f"{picked.name} sees {seen}, but an earlier layer already does.")
    return Verdict(False, f"A unit of {picked.name} sees only {seen} input pixels.")


def channel(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The typed number is the channel of ``layer`` with the brightest value."""
    model = _live(live, ModelLive)
    right = strongest_channel(model.result, params["layer"])
    if _same(answer, right):
        return Verdict(True, f"Right: channel {right} of {params['layer']} responds most.")
    return Verdict(False, f"Not channel {_typed(answer)}: look for the brightest map.")


def prediction(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The typed number is the class the model predicts for the student's sample."""
    model = _live(live, ModelLive)
    predicted = model.predicted
    if answer is not None and _typed(answer) == predicted:
        verdict = "right" if predicted == model.label else f"wrong: it is a {model.label}"
        return Verdict(True, f"Right: {model.loaded.spec.title} says {predicted} ({verdict}).")
    return Verdict(False, f"The model does not say {_typed(answer)} for {model.sample}.")


def parameters(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """The typed number is how many numbers training adjusts in ``layer`` (or the model)."""
    model = _live(live, ModelLive)
    layer = params["layer"]
    right = model.row(layer).parameters if layer else parameter_count(model.loaded, None)
    where = params["layer"] or model.loaded.spec.title
    if _same(answer, right):
        return Verdict(True, f"Right: training adjusts {right:,} numbers in {where}.")
    return Verdict(False, f"Not {_typed(answer)}: count the weights and the biases.")


def misclassified(params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """A sample the model reads right, shifted or turned until it reads another digit."""
    moved = _live(live, ExperimentLive)
    if moved.change.shift == (0, 0) and moved.change.rotate == 0:
        return Verdict(False, "First shift or turn the digit with the sliders.")
    unmoved = experiment_live(moved.loaded, moved.sample, 0, 0)
    if unmoved.predicted != unmoved.label:
        return Verdict(
            False,
            f"{moved.loaded.spec.title} misreads this {moved.label} even unmoved "
            f"(as a {unmoved.predicted}): pick a sample it reads right.",
        )
    if moved.predicted != moved.label:
        return Verdict(
            True,
            f"Right: {moved.loaded.spec.title} now reads the {moved.label} as a "
            f"{moved.predicted} ({moved.probability:.0%}).",
        )
    return Verdict(False, f"It still reads a {moved.label} ({moved.probability:.0%}).")


_SHAPE = Param(list, low=1, high=4096, about="a list of sizes, e.g. [16, 5, 5]")
_LAYER = Param(str, about="a layer name of the model, e.g. conv1")

CHECKS: dict[str, CheckKind] = {
    "conv-value": CheckKind(
        "convolve",
        True,
        conv_value,
        {
            "row": Param(int, 0, low=0, high=64),
            "col": Param(int, 0, low=0, high=64),
            "kernel": Param(str, choices=tuple(maths.KERNELS), about="the kernel asked about"),
            "stride": Param(int, low=1, high=4, about="the stride asked about"),
            "padding": Param(str, choices=maths.PADDINGS, about="the padding asked about"),
        },
    ),
    "output-size": CheckKind(
        "convolve",
        True,
        conv_size,
        {
            "stride": Param(int, None, low=1, high=4),
            "padding": Param(str, None, choices=maths.PADDINGS),
            "axis": Param(str, "width", choices=("width", "height")),
        },
    ),
    "rectified": CheckKind(
        "activation",
        False,
        rectified,
        # only ReLU both zeroes the negatives and keeps the positives as they are
        {"activation": Param(str, choices=("relu",), about="the activation asked for")},
    ),
    "pooled-shape": CheckKind(
        "pool",
        False,
        pooled_shape,
        {"shape": _SHAPE, "mode": Param(str, None, choices=maths.POOL_MODES)},
    ),
    "layer-shape": CheckKind("model", False, layer_shape, {"shape": _SHAPE}),
    "receptive-field": CheckKind(
        "model", False, receptive_field, {"at_least": Param(int, low=1, high=4096)}
    ),
    "strongest-channel": CheckKind("model", True, channel, {"layer": _LAYER}),
    "prediction": CheckKind("model", True, prediction),
    "parameter-count": CheckKind(
        "model", True, parameters, {"layer": Param(str, "", about="a layer; empty: the model")}
    ),
    "misclassified": CheckKind("experiment", False, misclassified),
}
"""Every kind of question, by the name a lesson file uses (``check = "output-size"``)."""


def check(kind: str, params: Mapping[str, Any], live: object, answer: float | None) -> Verdict:
    """Decide whether the student got it right.

    Args:
        kind: A key of :data:`CHECKS`.
        params: The check's parameters, validated (every default filled in).
        live: The lesson's live view, as its kind computes it.
        answer: The number typed, for checks that ask for one.

    Anything the check cannot decide (a teacher's lesson that names what the view lacks, a
    view of the wrong kind) is a wrong verdict that says so, never an exception.
    """
    if kind not in CHECKS:
        return Verdict(False, f"This question cannot be checked: no check named {kind!r}.")
    if CHECKS[kind].answer and (answer is None or not math.isfinite(answer)):
        return Verdict(False, "Type your answer in the box first.")
    try:
        return CHECKS[kind].run(params, live, answer)
    except Exception as exc:  # a lesson file is teachers' input: the page must not crash
        return Verdict(False, f"This question cannot be checked ({exc}): tell your teacher.")


__all__ = ["CHECKS", "REQUIRED", "TOLERANCE", "CheckKind", "Param", "Verdict", "check"]
