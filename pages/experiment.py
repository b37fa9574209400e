"""Experiment: perturb the input, knock out channels or swap the model, and see what moves.

The page lays out; :mod:`explorer.views.experiment` computes, every pass and the sweep a job
for the server's scheduler. The first pass and the sweep are kept in its cache for every
session (keyed by the model's cache key, the input's sha256 and their settings), so a click
that changes only the experiment runs only the second pass; the layer comparison and the
sweep are fragments, so choosing another layer or sweep, or clicking a sweep point, reruns
only that part.
"""

from __future__ import annotations

import streamlit as st

from explorer.analysis.experiment import ExperimentError, Knockout, Perturbation, SweepPoint
from explorer.inputs.samples import samples_for
from explorer.models.zoo import ZOO, LoadedModel
from explorer.views.experiment import (
    KNOCKOUT_MODES,
    MODES,
    SWEEP_AXES,
    Comparison,
    Pass,
    change_figure,
    comparison_job,
    conv_channels,
    first_pass_job,
    knockout_job,
    other_samples,
    pass_softmax,
    perturbed_job,
    picked_point,
    plain_pass,
    sample_input,
    second_models,
    stage_descriptions,
    stage_figures,
    stage_summaries,
    sweep_figure,
    sweep_job,
)
from pages.common import PICTURES_KEY, cached_model, inline_image, run_job
from pages.links import finish_view_link, start_view_link

PASS_LABEL = "Running the network"
SWEEP_LABEL = "Computing"


def unchanged_pass(loaded: LoadedModel, sample: str, what: str) -> tuple[Pass, str]:
    """A sample through a model, unchanged (shared by every session), and the input's sha256."""
    prepared = sample_input(loaded, sample)
    result = run_job(first_pass_job(loaded, prepared), PASS_LABEL)
    return plain_pass(loaded, prepared, result, what), prepared.sha256


def read_perturbation(side: int) -> Perturbation:
    """Shift, rotation, scale, contrast, brightness, blur, noise and an occluding square."""
    a, b, c, d = st.columns(4)
    dx = a.slider("Shift right (px)", -8, 8, 0, key="exp_dx", bind="query-params")
    dy = a.slider("Shift down (px)", -8, 8, 0, key="exp_dy", bind="query-params")
    rotate = b.slider("Rotate (°)", -90, 90, 0, 5, key="exp_rotate", bind="query-params")
    scale = b.slider("Scale", 0.5, 1.5, 1.0, 0.05, key="exp_scale", bind="query-params")
    contrast = c.slider("Contrast", 0.0, 2.0, 1.0, 0.1, key="exp_contrast", bind="query-params")
    brightness = c.slider(
        "Brightness", -0.5, 0.5, 0.0, 0.05, key="exp_brightness", bind="query-params"
    )
    blur = d.slider("Blur σ (px)", 0.0, 3.0, 0.0, 0.25, key="exp_blur", bind="query-params")
    noise = d.slider("Noise σ", 0.0, 0.5, 0.0, 0.05, key="exp_noise", bind="query-params")
    occlude = None
    if st.toggle("Occlude a square", key="exp_occlude", bind="query-params"):
        e, f, g = st.columns(3)
        size = e.slider(
            "Square side (px)", 1, side, side // 4, key="exp_occ_size", bind="query-params"
        )
        top = f.slider("Top (px)", 0, side - 1, side // 3, key="exp_occ_top", bind="query-params")
        left = g.slider(
            "Left (px)", 0, side - 1, side // 3, key="exp_occ_left", bind="query-params"
        )
        occlude = (top, left, size)
    return Perturbation(
        shift=(dx, dy), rotate=rotate, scale=scale, occlude=occlude, contrast=contrast,
        brightness=brightness, blur=blur, noise=noise,
    )  # fmt: skip


def read_knockout(loaded: LoadedModel) -> Knockout | None:
    """A conv layer, its channels, and how they are switched off."""
    convs = conv_channels(loaded.model)
    a, b, c = st.columns([1, 2, 1])
    layer = str(
        a.selectbox(
            "Conv layer", list(convs), key=f"exp_ko_layer_{loaded.name}", bind="query-params"
        )
    )
    channels = b.multiselect(
        "Channels to knock out",
        list(range(convs[layer])),
        key=f"exp_ko_ch_{layer}",
        bind="query-params",
    )
    mode = c.radio(
        "How",
        list(KNOCKOUT_MODES),
        key="exp_ko_mode",
        bind="query-params",
        format_func=KNOCKOUT_MODES.__getitem__,
    )
    return Knockout(layer, tuple(int(ch) for ch in channels), str(mode)) if channels else None


def second_pass(first: Pass, mode: str, sample: str) -> Pass:
    """The pass the experiment changes: another input, a knocked-out copy, or another model."""
    loaded = first.loaded
    if mode == "Two digits":
        other = str(
            st.selectbox(
                "Second input",
                other_samples(loaded, sample),
                key="exp_sample2",
                bind="query-params",
            )
        )
        return unchanged_pass(loaded, other, other)[0]
    if mode == "Two models":
        names = second_models(loaded)
        other = str(
            st.selectbox(
                "Second model",
                list(names),
                format_func=names.__getitem__,
                key="exp_model2",
                bind="query-params",
            )
        )
        return unchanged_pass(cached_model(other), sample, "as is")[0]
    if mode == "Knock out channels":
        knockout = read_knockout(loaded)
        if knockout is None:
            st.info("Pick channels to knock out: until then both passes are the same.")
            return first
        found: Pass = run_job(knockout_job(first, knockout), PASS_LABEL)
        return found
    change = read_perturbation(int(first.picture.shape[0]))
    perturbed: Pass = run_job(perturbed_job(first, change), PASS_LABEL)
    return perturbed


def show_passes(first: Pass, second: Pass) -> None:
    """Both inputs and both softmax outputs, side by side."""
    for index, (column, shown) in enumerate(zip(st.columns(2), (first, second), strict=True)):
        with column:
            st.markdown(f"**{shown.title}**")
            st.image(
                inline_image(shown.picture), width=140, alt=f"What the model sees: {shown.title}"
            )
            st.plotly_chart(pass_softmax(shown), key=f"exp_softmax_{index}")


def show_stages(first: Pass, second: Pass) -> None:
    """The change down the network, then one layer in both passes and their difference."""
    compared: Comparison = run_job(comparison_job(first, second), PASS_LABEL)
    if not compared.same_model:
        st.markdown(
            "**Each network's stages** (they differ: compared where names and shapes match)"
        )
        for column, each in zip(st.columns(2), (first, second), strict=True):
            column.dataframe(stage_summaries(each.result), hide_index=True, height=260)
    if not compared.changes:
        st.info("The two passes share no layer of the same shape: compare their softmax above.")
        return
    st.plotly_chart(change_figure(compared.changes), key="exp_changes")
    if compared.maps:
        show_layer(first, second, compared.maps)


@st.fragment
def show_layer(first: Pass, second: Pass, maps: list[str]) -> None:
    """One layer in both passes and their difference (choosing another reruns only this)."""
    layer = str(st.selectbox("Layer to compare", maps, key="exp_layer", bind="query-params"))
    st.caption("Top: the first pass (a); middle: the second (b); bottom: b − a, diverging "
               "around 0. The channels that moved most come first; hover a tile for its "
               "statistics.")  # fmt: skip
    grids = stage_figures(first.result, second.result, layer)
    words = stage_descriptions(first.result, second.result, layer)
    for i, (grid, description) in enumerate(zip(grids, words, strict=True)):
        st.plotly_chart(grid.figure, key=f"exp_stage_{i}")
        st.caption(description)  # the grid's text alternative


@st.fragment
def show_sweep(first: Pass, input_sha: str) -> None:
    """One perturbation over a range: the predicted class and its probability as a curve."""
    name = str(
        st.selectbox(
            "Sweep",
            list(SWEEP_AXES),
            format_func=SWEEP_AXES.__getitem__,
            key="exp_sweep",
            bind="query-params",
        )
    )
    points: list[SweepPoint] = run_job(sweep_job(first, input_sha, name), SWEEP_LABEL)
    event = st.plotly_chart(
        sweep_figure(points, SWEEP_AXES[name], first.loaded.categories),
        key="exp_sweep_chart",
        on_select="rerun",
        selection_mode="points",
    )
    picked = picked_point(event)
    if picked is not None:
        point = points[picked]
        label = first.loaded.categories[point.predicted]
        caption = f"{SWEEP_AXES[name]} {point.value:g}: {label} ({point.probability:.0%})"
        st.image(
            inline_image(point.picture), width=140, caption=caption, alt=f"The input at {caption}"
        )


st.title("Experiment")
st.caption(
    "Change something and watch what moves: shift or rotate the digit, hide part of it, switch "
    "filters off, or ask another network — two forward passes side by side, layer by layer."
)
view_link = start_view_link("experiment")

top = st.columns(2)  # the experiment's four options get a row of their own below
taught = st.session_state.get(PICTURES_KEY)  # a model taught on the Your pictures page
pictures = taught if isinstance(taught, LoadedModel) else None
extra = {PICTURES_KEY: pictures.spec.title} if pictures is not None else {}
model_name = str(
    top[0].selectbox(
        "Model",
        [*ZOO, *extra],
        format_func=lambda n: extra.get(n) or f"{ZOO[n].title} ({ZOO[n].year})",
        key="exp_model",
        bind="query-params",
    )
)
family = pictures.spec.family if pictures and model_name in extra else ZOO[model_name].family
samples = list(samples_for(family))
sample = str(top[1].selectbox("Input", samples, key=f"exp_sample_{family}", bind="query-params"))
mode = str(
    st.segmented_control("Experiment", MODES, default=MODES[0], key="exp_mode", bind="query-params")
    or MODES[0]
)
try:
    in_session = pictures if model_name in extra else None
    loaded_model = in_session or cached_model(model_name)
    base, base_sha = unchanged_pass(loaded_model, sample, "as is")
    changed = second_pass(base, mode, sample)
except ExperimentError as exc:
    st.warning(f"That experiment does not fit: {exc}")
else:
    show_passes(base, changed)
    show_stages(base, changed)
    st.divider()
    show_sweep(base, base_sha)
finish_view_link(view_link)
