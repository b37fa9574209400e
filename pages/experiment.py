"""Experiment: perturb the input, knock out channels or swap the model, and see what moves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
from torch import nn

from explorer.analysis.capture import CaptureResult, capture
from explorer.analysis.experiment import (
    SWEEPABLE,
    ExperimentError,
    Knockout,
    Perturbation,
    compare,
    knocked_out,
    perturb,
    sweep,
    to_input,
)
from explorer.figures.charts import softmax_figure
from explorer.inputs.samples import samples_for
from explorer.models.zoo import ZOO, LoadedModel
from explorer.views.experiment import (
    change_figure,
    picked_point,
    stage_figures,
    stage_summaries,
    sweep_figure,
)
from pages.common import cached_model, inline_image

MODES = ["Perturb the input", "Knock out channels", "Two digits", "Two models"]


@dataclass(frozen=True)
class Pass:
    """One forward pass as the page shows it."""

    loaded: LoadedModel
    picture: np.ndarray
    result: CaptureResult
    title: str


def read_perturbation(side: int) -> Perturbation:
    """Shift, rotation, scale, contrast, brightness, blur, noise and an occluding square."""
    a, b, c, d = st.columns(4)
    dx = a.slider("Shift right (px)", -8, 8, 0, key="exp_dx")
    dy = a.slider("Shift down (px)", -8, 8, 0, key="exp_dy")
    rotate = b.slider("Rotate (°)", -90, 90, 0, 5, key="exp_rotate")
    scale = b.slider("Scale", 0.5, 1.5, 1.0, 0.05, key="exp_scale")
    contrast = c.slider("Contrast", 0.0, 2.0, 1.0, 0.1, key="exp_contrast")
    brightness = c.slider("Brightness", -0.5, 0.5, 0.0, 0.05, key="exp_brightness")
    blur = d.slider("Blur σ (px)", 0.0, 3.0, 0.0, 0.25, key="exp_blur")
    noise = d.slider("Noise σ", 0.0, 0.5, 0.0, 0.05, key="exp_noise")
    occlude = None
    if st.toggle("Occlude a square", key="exp_occlude"):
        e, f, g = st.columns(3)
        size = e.slider("Square side (px)", 1, side, side // 4, key="exp_occ_size")
        top = f.slider("Top (px)", 0, side - 1, side // 3, key="exp_occ_top")
        left = g.slider("Left (px)", 0, side - 1, side // 3, key="exp_occ_left")
        occlude = (top, left, size)
    return Perturbation(
        shift=(dx, dy), rotate=rotate, scale=scale, occlude=occlude, contrast=contrast,
        brightness=brightness, blur=blur, noise=noise,
    )  # fmt: skip


def read_knockout(loaded: LoadedModel) -> Knockout | None:
    """A conv layer, its channels, and how they are switched off."""
    convs = {
        name: module.out_channels
        for name, module in loaded.model.named_modules()
        if isinstance(module, nn.Conv2d)
    }
    a, b, c = st.columns([1, 2, 1])
    layer = str(a.selectbox("Conv layer", list(convs), key=f"exp_ko_layer_{loaded.name}"))
    channels = b.multiselect(
        "Channels to knock out", list(range(convs[layer])), key=f"exp_ko_ch_{layer}"
    )
    labels = {"zero": "output → 0", "mean": "output → its mean", "filter": "filter weights → 0"}
    mode = c.radio("How", list(labels), key="exp_ko_mode", format_func=labels.__getitem__)
    return Knockout(layer, tuple(int(ch) for ch in channels), str(mode)) if channels else None


def first_pass(loaded: LoadedModel, sample: str) -> Pass:
    """The unchanged input through the chosen model."""
    prepared = loaded.prepare(samples_for(loaded.spec.family)[sample])
    x = to_input(prepared.display, *loaded.normalisation)
    return Pass(loaded, prepared.display, capture(loaded.model, x), f"{loaded.spec.title}, as is")


def second_pass(first: Pass, mode: str, sample: str) -> Pass:
    """The pass the experiment changes: another input, a knocked-out copy, or another model."""
    loaded, picture = first.loaded, first.picture
    if mode == "Two digits":
        others = [s for s in samples_for(loaded.spec.family) if s != sample]
        other = str(st.selectbox("Second input", others, key="exp_sample2"))
        second = first_pass(loaded, other)
        return Pass(loaded, second.picture, second.result, f"{loaded.spec.title}, {other}")
    if mode == "Two models":
        names = {
            name: spec.title
            for name, spec in ZOO.items()
            if spec.family == loaded.spec.family and name != loaded.name
        }
        other = str(
            st.selectbox(
                "Second model", list(names), format_func=names.__getitem__, key="exp_model2"
            )
        )
        return first_pass(cached_model(other), sample)
    if mode == "Knock out channels":
        knockout = read_knockout(loaded)
        if knockout is None:
            st.info("Pick channels to knock out: until then both passes are the same.")
            return first
        model = knocked_out(loaded.model, knockout)
        x = to_input(picture, *loaded.normalisation)
        channels = ", ".join(map(str, knockout.channels))
        title = f"{knockout.layer} channels {channels} knocked out ({knockout.mode})"
        return Pass(loaded, picture, capture(model, x), title)
    changed = perturb(picture, read_perturbation(int(picture.shape[0])))
    x = to_input(changed, *loaded.normalisation)
    return Pass(loaded, changed, capture(loaded.model, x), "perturbed")


def show_passes(first: Pass, second: Pass) -> None:
    """Both inputs and both softmax outputs, side by side."""
    for index, (column, shown) in enumerate(zip(st.columns(2), (first, second), strict=True)):
        with column:
            st.markdown(f"**{shown.title}**")
            st.image(inline_image(shown.picture), width=140)
            probs = shown.result.probs.detach().float().cpu().numpy()
            st.plotly_chart(
                softmax_figure(shown.loaded.categories, probs),
                key=f"exp_softmax_{index}",
            )


def show_stages(first: Pass, second: Pass) -> None:
    """The change down the network, then one layer in both passes and their difference."""
    changes = compare(first.result, second.result)
    if second.loaded is not first.loaded:
        st.markdown(
            "**Each network's stages** (they differ: compared where names and shapes match)"
        )
        for column, each in zip(st.columns(2), (first, second), strict=True):
            column.dataframe(stage_summaries(each.result), hide_index=True, height=260)
    if not changes:
        st.info("The two passes share no layer of the same shape: compare their softmax above.")
        return
    st.plotly_chart(change_figure(changes), key="exp_changes")
    maps = [c.name for c in changes if len(first.result[c.name].shape) == 3]
    if not maps:
        return
    layer = str(st.selectbox("Layer to compare", maps, key="exp_layer"))
    st.caption("Top: the first pass; middle: the second, on the same kind of scale; bottom: "
               "second − first, diverging around 0.")  # fmt: skip
    for i, shown in enumerate(stage_figures(first.result, second.result, layer)):
        st.plotly_chart(shown.figure, key=f"exp_stage_{i}")


def show_sweep(first: Pass) -> None:
    """One perturbation over a range: the predicted class and its probability as a curve."""
    names = {k: v[0] for k, v in SWEEPABLE.items()}
    name = str(st.selectbox("Sweep", list(names), format_func=names.__getitem__, key="exp_sweep"))
    original = int(first.result.probs.argmax())
    points = sweep(first.loaded.model, first.picture, Perturbation(), name, SWEEPABLE[name][1],
                   *first.loaded.normalisation, original=original)  # fmt: skip
    event = st.plotly_chart(
        sweep_figure(points, names[name], first.loaded.categories),
        key="exp_sweep_chart",
        on_select="rerun",
        selection_mode="points",
    )
    picked = picked_point(event)
    if picked is not None:
        point = points[picked]
        label = first.loaded.categories[point.predicted]
        caption = f"{names[name]} {point.value:g}: {label} ({point.probability:.0%})"
        st.image(inline_image(point.picture), width=140, caption=caption)


st.title("Experiment")
st.caption(
    "Change something and watch what moves: shift or rotate the digit, hide part of it, switch "
    "filters off, or ask another network — two forward passes side by side, layer by layer."
)
top = st.columns([2, 2, 3])
model_name = str(
    top[0].selectbox(
        "Model",
        list(ZOO),
        format_func=lambda n: f"{ZOO[n].title} ({ZOO[n].year})",
        key="exp_model",
    )
)
samples = list(samples_for(ZOO[model_name].family))
sample = str(top[1].selectbox("Input", samples, key=f"exp_sample_{ZOO[model_name].family}"))
mode = str(
    top[2].segmented_control("Experiment", MODES, default=MODES[0], key="exp_mode") or MODES[0]
)
try:
    base = first_pass(cached_model(model_name), sample)
    changed = second_pass(base, mode, sample)
except ExperimentError as exc:
    st.warning(f"That experiment does not fit: {exc}")
else:
    show_passes(base, changed)
    show_stages(base, changed)
    st.divider()
    show_sweep(base)
