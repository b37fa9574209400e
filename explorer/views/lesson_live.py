"""The Lessons page's live views, as data: what each lesson computes on the student's input.

Each kind of live view (a key of :data:`explorer.views.lessons.VIEW_PARAMS`) turns the
lesson's parameters and the student's settings into a small frozen result that the page draws
and a check (:mod:`explorer.views.lesson_checks`) reads. Everything is computed by the
library the full pages use: the lab's maths (:mod:`explorer.lab.maths`), the capture, the
receptive fields, the experiments' perturbations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explorer.analysis.capture import CaptureResult
from explorer.analysis.experiment import Perturbation, perturb
from explorer.analysis.explain import receptive_field_size
from explorer.figures.style import shape_text
from explorer.inputs.samples import digit_samples
from explorer.lab import maths
from explorer.models.zoo import ZOO, Family, LoadedModel
from explorer.views import lab as lab_view
from explorer.views.cache import shared
from explorer.views.experiment import plain_capture

TEACHING_INPUTS: dict[str, Callable[[], np.ndarray]] = {
    "square-7x7": maths.teaching_square,
    "binary-5x5": maths.teaching_binary,
}
"""The small inputs a lesson's grid views start from, by the name a lesson file uses."""
DIGIT_MODELS = tuple(name for name, spec in ZOO.items() if spec.family == Family.DIGIT)
"""The models a lesson's model views can use (the shipped digit nets)."""
MAX_STRIDE = 4
"""The largest stride and pooling window a lesson's sliders offer (the lab's too)."""
MAX_SHIFT = 8
"""The experiment view's largest shift, in pixels (the Experiment page's too)."""
MAX_ROTATE = 90
"""The experiment view's largest rotation, in degrees."""


def teaching_input(name: str) -> np.ndarray:
    """One of :data:`TEACHING_INPUTS` by name.

    Raises:
        ValueError: An unknown name.
    """
    if name not in TEACHING_INPUTS:
        raise ValueError(f"unknown input {name!r}; one of {', '.join(TEACHING_INPUTS)}")
    return TEACHING_INPUTS[name]()


def feature_map(input_name: str, kernel: str, padding: str) -> np.ndarray:
    """The teaching input convolved (cross-correlated) with a preset kernel, stride 1."""
    return maths.correlate2d(
        teaching_input(input_name), maths.KERNELS[kernel], padding=padding
    ).output


# --- the grid views ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLive:
    """A kernel sliding over a small input.

    Attributes:
        input_name: Which teaching input.
        kernel_name: Which preset kernel (a key of :data:`maths.KERNELS`).
        stride: The stride.
        padding: ``"valid"``, ``"same"`` or ``"full"``.
        result: The convolution, with every step.
    """

    input_name: str
    kernel_name: str
    stride: int
    padding: str
    result: maths.Conv2dResult

    @property
    def image(self) -> np.ndarray:
        """The unpadded input."""
        return teaching_input(self.input_name)


def convolve_live(input_name: str, kernel: str, stride: int, padding: str) -> ConvLive:
    """The convolution of a teaching input with the student's kernel, stride and padding.

    Raises:
        ValueError: Settings out of range, or a kernel larger than the padded input.
    """
    if not 1 <= stride <= MAX_STRIDE:
        raise ValueError(f"stride must be 1 … {MAX_STRIDE}, got {stride}")
    if kernel not in maths.KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}")
    result = maths.correlate2d(
        teaching_input(input_name), maths.KERNELS[kernel], stride=stride, padding=padding
    )
    return ConvLive(input_name, kernel, stride, padding, result)


@dataclass(frozen=True)
class ActivationLive:
    """A feature map through the student's activation.

    Attributes:
        activation: The activation's name (one of :data:`maths.ACTIVATIONS`).
        shown: The map before and after, on one colour scale.
    """

    activation: str
    shown: lab_view.ActivationView


def activation_live(conv: np.ndarray, activation: str) -> ActivationLive:
    """``conv`` through ``activation`` (a leaky ReLU's slope is the lab's 0.1).

    Raises:
        ValueError: An unknown activation.
    """
    if activation not in maths.ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    return ActivationLive(activation, lab_view.activation_view(conv, activation, 0.1))


@dataclass(frozen=True)
class PoolLive:
    """A rectified feature map pooled with the student's window, stride and mode.

    Attributes:
        input: The map being pooled.
        pooled: The pooling, or None when the window does not fit.
        problem: Why it does not fit (None when it does).
    """

    input: np.ndarray
    pooled: maths.Pool2dResult | None
    problem: str | None = None


def pool_live(values: np.ndarray, mode: str, size: int, stride: int) -> PoolLive:
    """``values`` pooled; a window that does not fit gives a :class:`PoolLive` with a problem."""
    if not (1 <= size <= MAX_STRIDE and 1 <= stride <= MAX_STRIDE):
        raise ValueError(f"window and stride must be 1 … {MAX_STRIDE}, got {size}, {stride}")
    try:
        return PoolLive(values, maths.pool2d(values, size, stride, mode))
    except ValueError as exc:
        return PoolLive(values, None, str(exc))


# --- the model views --------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRow:
    """One captured layer as the lesson's table shows it.

    Attributes:
        name: The layer's name.
        kind: conv, relu, pool, linear…
        shape: Its output's shape (no batch).
        field: The height and width of the input patch one of its units sees.
        parameters: How many numbers training adjusts in it (weights and biases).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    field: tuple[int, int]
    parameters: int


class SampleRun:
    """What a model view and an experiment view share: a sample digit through a model.

    A mixin for the frozen dataclasses below, which hold these three fields.
    """

    loaded: LoadedModel
    sample: str
    result: CaptureResult

    @property
    def label(self) -> str:
        """The sample's true digit."""
        return self.sample.split()[0]

    @property
    def predicted(self) -> str:
        """The class the model predicts (for the picture it was shown)."""
        return self.loaded.categories[self.result.top(1)[0][0]]


@dataclass(frozen=True)
class ModelLive(SampleRun):
    """A digit model on a sample digit: every layer, the prediction, the chosen layer.

    Attributes:
        loaded: The model.
        sample: The sample's label (a key of :func:`digit_samples`).
        result: Every layer's output.
        rows: Every layer as the table shows it.
        layer: The layer the student picked (a name in ``rows``).
    """

    loaded: LoadedModel
    sample: str
    result: CaptureResult
    rows: tuple[LayerRow, ...]
    layer: str

    def row(self, name: str) -> LayerRow:
        """The table row of layer ``name``.

        Raises:
            KeyError: No such layer.
        """
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r}")


def layer_table(rows: tuple[LayerRow, ...]) -> list[dict[str, str | int]]:
    """The model view's table: one row per layer, its columns as the page shows them."""
    return [
        {
            "layer": row.name,
            "kind": row.kind,
            "output shape": shape_text(row.shape),
            "receptive field": shape_text(row.field),
            "parameters": row.parameters,
        }
        for row in rows
    ]


def parameter_count(loaded: LoadedModel, module: str | None) -> int:
    """How many numbers training adjusts in ``module`` (the whole model for None or ``""``)."""
    part = loaded.model.get_submodule(module) if module else loaded.model
    return sum(p.numel() for p in part.parameters())


def layer_rows(loaded: LoadedModel, result: CaptureResult) -> tuple[LayerRow, ...]:
    """Every captured layer: shape, receptive field, parameters (kept per model)."""

    def make() -> tuple[LayerRow, ...]:
        size = tuple(result.input.shape[-2:])
        return tuple(
            LayerRow(
                layer.name,
                layer.kind,
                layer.shape,
                receptive_field_size(loaded.model, layer.name, (int(size[0]), int(size[1]))),
                parameter_count(loaded, layer.module) if layer.module else 0,
            )
            for layer in result.layers
        )

    return shared(("lesson layers", loaded.cache_key), make)


def sample_capture(loaded: LoadedModel, sample: str) -> CaptureResult:
    """A sample digit's capture through ``loaded``, kept for every session.

    Raises:
        ValueError: An unknown sample.
    """
    samples = digit_samples()
    if sample not in samples:
        raise ValueError(f"unknown sample {sample!r}")
    return shared(
        ("lesson capture", loaded.cache_key, sample),
        lambda: loaded.capture(loaded.prepare(samples[sample])),
    )


def model_live(loaded: LoadedModel, sample: str, layer: str | None = None) -> ModelLive:
    """The model view: ``sample`` through ``loaded``; ``layer`` (default: the first) picked.

    Raises:
        ValueError: An unknown sample or layer.
    """
    result = sample_capture(loaded, sample)
    rows = layer_rows(loaded, result)
    chosen = layer or rows[0].name
    if chosen not in result:
        raise ValueError(f"{loaded.spec.title} has no layer {chosen!r}")
    return ModelLive(loaded, sample, result, rows, chosen)


def strongest_channel(result: CaptureResult, layer: str) -> int:
    """The channel of ``layer`` with the largest single value (the brightest map)."""
    values = result[layer].tensor.detach().float().cpu()
    return int(torch.argmax(values.reshape(values.shape[0], -1).amax(dim=1)))


@dataclass(frozen=True)
class ExperimentLive(SampleRun):
    """A sample digit moved or turned, through a digit model.

    Attributes:
        loaded: The model.
        sample: The sample's label.
        change: What was done to the picture.
        picture: What the model saw (``uint8``).
        result: Every layer's output for it.
    """

    loaded: LoadedModel
    sample: str
    change: Perturbation
    picture: np.ndarray
    result: CaptureResult

    @property
    def probability(self) -> float:
        """The predicted class's probability."""
        return self.result.top(1)[0][1]


def experiment_live(loaded: LoadedModel, sample: str, shift: int, rotate: int) -> ExperimentLive:
    """The sample shifted right by ``shift`` pixels and turned by ``rotate`` degrees.

    Raises:
        ValueError: An unknown sample, or a shift or angle out of range.
    """
    if abs(shift) > MAX_SHIFT or abs(rotate) > MAX_ROTATE:
        raise ValueError(f"shift ±{MAX_SHIFT} px and rotate ±{MAX_ROTATE}° at most")
    samples = digit_samples()
    if sample not in samples:
        raise ValueError(f"unknown sample {sample!r}")
    change = Perturbation(shift=(shift, 0), rotate=float(rotate))
    display = loaded.prepare(samples[sample]).display

    def make() -> tuple[np.ndarray, CaptureResult]:
        picture = perturb(display, change)
        return picture, plain_capture(loaded, picture)

    picture, result = shared(("lesson experiment", loaded.cache_key, sample, shift, rotate), make)
    return ExperimentLive(loaded, sample, change, picture, result)


__all__ = [
    "DIGIT_MODELS",
    "MAX_ROTATE",
    "MAX_SHIFT",
    "MAX_STRIDE",
    "TEACHING_INPUTS",
    "ActivationLive",
    "ConvLive",
    "ExperimentLive",
    "LayerRow",
    "ModelLive",
    "PoolLive",
    "SampleRun",
    "activation_live",
    "convolve_live",
    "experiment_live",
    "feature_map",
    "layer_rows",
    "layer_table",
    "model_live",
    "parameter_count",
    "pool_live",
    "sample_capture",
    "strongest_channel",
    "teaching_input",
]
