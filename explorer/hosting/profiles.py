"""What one pass of a model costs here: multiply-adds counted, one pass timed, cached."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from explorer.analysis.architecture import architecture_table
from explorer.analysis.capture import CaptureResult
from explorer.hosting.cost import DEFAULT_SECONDS_PER_GMAC, RATE_ENV, Cost, positive_float_env
from explorer.hosting.jobqueue import QUICK_S, default_scheduler
from explorer.hosting.jobs import Job, Progress
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel


@dataclass(frozen=True)
class ModelProfile:
    """What one pass of a model costs on this machine, for one input shape.

    Attributes:
        model: Its name, for messages.
        mult_adds: Multiply-adds of a whole pass (conv and linear layers).
        upto: Multiply-adds of a pass that stops after each captured layer (execution order;
            a layer's first occurrence).
        pass_seconds: Seconds a whole pass takes here.
    """

    model: str
    mult_adds: int
    upto: Mapping[str, int]
    pass_seconds: float

    def cost(
        self,
        what: str,
        passes: float,
        layer: str | None = None,
        advice: Callable[[int], str] | None = None,
    ) -> Cost:
        """``passes`` of the model (only as far as ``layer`` when given) as a :class:`Cost`."""
        part = self.upto.get(layer, self.mult_adds) if layer else self.mult_adds
        fraction = part / self.mult_adds if self.mult_adds else 1.0
        return Cost(what, passes, self.pass_seconds * fraction, part, self.model, advice)


def count_profile(
    name: str, model: torch.nn.Module, result: CaptureResult, seconds_per_gmac: float | None
) -> ModelProfile:
    """The model's multiply-adds from its architecture table, and one pass timed here.

    Args:
        name: The model's name, for messages.
        model: The model that produced ``result``.
        result: A capture of every layer (the table reads its shapes).
        seconds_per_gmac: A rate to use instead of timing a pass (None: time one).

    A model the table cannot read (a graph whose convs are operators) counts 0 multiply-adds
    and is costed by its timed pass alone; one whose pass fails here is costed at
    :data:`DEFAULT_SECONDS_PER_GMAC` (or :data:`QUICK_S` a pass; its job will say what failed).
    """
    height, width = result.input.shape[-2:]
    try:
        rows = architecture_table(model, result, (int(height), int(width)))
    except Exception:
        rows = []
    upto: dict[str, int] = {}
    total = 0
    for row in rows:
        total += row.mult_adds
        upto.setdefault(row.name, total)
    if seconds_per_gmac is not None and total:
        return ModelProfile(name, total, upto, total / 1e9 * seconds_per_gmac)
    seconds = _timed_pass(model, result.input)
    if seconds is None:
        seconds = total / 1e9 * DEFAULT_SECONDS_PER_GMAC if total else QUICK_S
    return ModelProfile(name, total, upto, seconds)


def _timed_pass(model: torch.nn.Module, x: torch.Tensor) -> float | None:
    device = next(itertools.chain(model.parameters(), model.buffers()), x).device
    batch = x.detach().clone()[None].to(device)
    try:
        with torch.no_grad():
            start = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start
    except Exception:
        return None


def _profile_key(loaded: LoadedModel, input_shape: tuple[int, ...]) -> tuple[object, ...]:
    rate = positive_float_env(RATE_ENV, 0.0) or None
    return ("profile", loaded.cache_key, tuple(input_shape), rate)


def model_profile(loaded: LoadedModel, result: CaptureResult) -> ModelProfile:
    """The model's :class:`ModelProfile`, made once per model and input shape (cached).

    Made by :func:`count_profile`: at ``$EXPLORER_SECONDS_PER_GMAC`` when set, else with one
    timed pass (the first time only).
    """
    key = _profile_key(loaded, tuple(result.input.shape))
    rate = key[-1]
    profile: ModelProfile = default_scheduler().cache.get_or_make(
        key,
        lambda: count_profile(
            loaded.spec.title, loaded.model, result, rate if isinstance(rate, float) else None
        ),
    )
    return profile


def known_profile(loaded: LoadedModel, input_shape: tuple[int, ...]) -> ModelProfile | None:
    """The model's profile for inputs of ``input_shape`` (no batch), if one was made."""
    found, profile = default_scheduler().cache.lookup(_profile_key(loaded, input_shape))
    return profile if found else None


def capture_job(loaded: LoadedModel, prepared: PreparedInput) -> Job:
    """A capture of every layer of one input, as a job (its first also profiles the model).

    One pass: the quick line (or the caller's thread, once the model is known to be light).
    Keyed by the model's :attr:`~explorer.models.zoo.LoadedModel.cache_key` and the input's
    sha256.
    """

    def run(_progress: Progress) -> CaptureResult:
        result = loaded.capture(prepared)
        model_profile(loaded, result)
        return result

    profile = known_profile(loaded, tuple(prepared.tensor.shape[1:]))
    key = ("capture", loaded.cache_key, prepared.sha256)
    if profile is None:
        return Job(key, run, lane="quick")
    return Job(key, run, profile.cost("a capture of every layer", 1.0))
