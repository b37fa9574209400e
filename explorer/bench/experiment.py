"""The Experiment page's benchmark: a click that changes only the second pass, on VGG-16.

- ``experiment_click_ms_vgg16``: the page's work after a perturbation's amount changes
  (:func:`experiment_click_work`), through the same :mod:`explorer.views.experiment` calls as
  ``pages/experiment.py``: the second pass, what moved, both pictures and softmax outputs, the
  change figure, the first map layer in both passes and their difference, and the sweep's
  figure, each serialised as ``st.plotly_chart`` does. The first pass and the sweep are the
  page's cached ones: computed once, before the clock. Torch runs as the app server sets it
  (:func:`~explorer.models.device.configure_server_threads`: one thread a pass).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from explorer.analysis.experiment import Perturbation, SweepPoint
from explorer.bench.library import streamlit_spec
from explorer.bench.timing import Settings, interleaved_samples, median, synchroniser
from explorer.figures.colour import png_data_uri
from explorer.inputs.samples import samples_for
from explorer.models.device import configure_server_threads
from explorer.models.zoo import UNTRAINED, load_model
from explorer.views.experiment import (
    SWEEP_AXES,
    Pass,
    change_figure,
    comparison,
    pass_softmax,
    perturbed_pass,
    plain_capture,
    stage_figures,
    sweep_figure,
    sweep_points,
)

KEY = "experiment_click_ms_vgg16"
SWEPT = "rotate"
"""The page's default sweep."""


def experiment_click_work(first: Pass, change: Perturbation, points: list[SweepPoint]) -> int:
    """The Experiment page's work when only the second pass changes, without Streamlit.

    Returns:
        The bytes of JSON the figures make.
    """
    second = perturbed_pass(first, change)
    compared = comparison(first, second)
    specs = []
    for shown in (first, second):
        png_data_uri(shown.picture)  # the page's inline picture
        specs.append(streamlit_spec(pass_softmax(shown)))
    specs.append(streamlit_spec(change_figure(compared.changes)))
    grids = stage_figures(first.result, second.result, compared.maps[0])
    specs += [streamlit_spec(grid.figure) for grid in grids]
    specs.append(streamlit_spec(sweep_figure(points, SWEEP_AXES[SWEPT], first.loaded.categories)))
    return sum(map(len, specs))


@contextmanager
def server_threads() -> Iterator[int]:
    """Torch's threads as the app server sets them (yielded), restored afterwards."""
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    try:
        yield configure_server_threads()
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)


def experiment_click(device: torch.device, settings: Settings) -> dict[str, dict[str, Any]]:
    """Median milliseconds of a click that shifts the second pass's input (by 1 or 2 px).

    Returns:
        ``{"results": {key: value}, "notes": {key: detail}}``.
    """
    loaded = load_model("vgg16", UNTRAINED, device)
    sample, path = next(iter(samples_for(loaded.spec.family).items()))
    picture = loaded.prepare(path).display
    first = Pass(loaded, picture, plain_capture(loaded, picture), f"{sample}, as is")
    points = sweep_points(first, SWEPT)
    sync = synchroniser(device)
    shifts = itertools.cycle([Perturbation(shift=(1, 0)), Perturbation(shift=(2, 0))])
    sizes: list[int] = []

    def click() -> None:
        sizes.append(experiment_click_work(first, next(shifts), points))
        sync()

    with server_threads() as threads:
        samples = interleaved_samples({"click": click}, settings.vgg_repeats, settings.warmup)
    detail = {
        "model": "vgg16 (untrained)",
        "input": sample,
        "change": "shift right 1 or 2 px",
        "torch_threads": threads,
        "json_mb": round(sizes[-1] / 1e6, 2),
        "repeats": settings.vgg_repeats,
    }
    return {
        "results": {KEY: round(median(samples["click"]) * 1e3, 1)},
        "notes": {KEY: detail},
    }
