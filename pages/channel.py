"""The channel card, laid out for the Draw and Image pages' layer browsers."""

from __future__ import annotations

import streamlit as st

from explorer.analysis.capture import CaptureResult
from explorer.analysis.visualize import Visualization, VisualizeError
from explorer.figures.channels import channel_figure
from explorer.figures.charts import filters_figure
from explorer.hosting.scheduler import Job, OverBudget
from explorer.models.zoo import Family, LoadedModel
from explorer.views.channel import (
    TopPicture,
    card_layers,
    channel_filter,
    default_steps,
    top_pictures_job,
    visualization_job,
)
from explorer.views.imageindex import IndexedTops, indexed_tops_job
from pages.common import inline_image, run_job

STEPS = [32, 64, 96, 128, 192, 256]
RATES = [0.01, 0.02, 0.05, 0.1, 0.2]


def show_channel_card(
    loaded: LoadedModel, result: CaptureResult, layer: str, channel: int, key: str
) -> None:
    """What the channel looks for, its top inputs, its filter and its response, side by side."""
    if layer not in card_layers(result):
        st.info(f"{layer} is not a module of this model: its channels have no card.")
        return
    looks, tops = st.columns([2, 3], gap="medium")
    kernel, response = st.columns([2, 3], gap="medium")
    with looks:
        show_visualization(loaded, result, layer, channel, key)
    with tops:
        show_top_inputs(loaded, result, layer, channel)
    with kernel:
        weight = channel_filter(loaded, layer, channel)
        if weight is None:
            st.caption("Not a conv layer: no kernel of its own.")
        else:
            st.plotly_chart(
                filters_figure(weight, f"{layer}[{channel}]", max_inputs=16, tile_px=60),
                key=f"{key}_card_filter",
            )
    with response:
        values = result[layer].numpy()[channel]
        st.plotly_chart(
            channel_figure(values, layer, channel, result[layer].kind, height=320),
            key=f"{key}_card_response",
        )
        st.caption("Its response to the current input.")


def show_top_inputs(loaded: LoadedModel, result: CaptureResult, layer: str, channel: int) -> None:
    """The inputs that excite the channel most: from the server's image index, or ranked."""
    indexed = indexed_tops_job(loaded, result, layer, channel)
    if isinstance(indexed, Job):
        try:
            tops: IndexedTops = run_job(indexed, "Reading the indexed images")
        except OverBudget as exc:
            st.warning(f"No top inputs: {exc}")
            return
        if tops.pictures:
            show_pictures(list(tops.pictures), tops.what)
            if tops.note:
                st.caption(tops.note)
            return
        indexed = f"{tops.note or ''} No image of the index to show: the sample photos.".strip()
    if indexed is not None:  # the model's index does not apply here: say why
        st.caption(indexed)
    try:
        found: tuple[list[TopPicture], str] = run_job(
            top_pictures_job(loaded, result, layer, channel), "Ranking the inputs"
        )
    except (OverBudget, VisualizeError) as exc:
        st.warning(f"No top inputs: {exc}")
        return
    show_pictures(*found)


def show_pictures(pictures: list[TopPicture], what: str) -> None:
    """Top inputs, three a row, each with its peak unit's receptive field boxed."""
    st.markdown(f"**Top inputs** among {what}")
    cells = st.columns(3)
    for i, shown in enumerate(pictures):
        cells[i % 3].image(
            inline_image(shown.picture),
            caption=shown.caption,
            alt=f"A top input, its peak unit's receptive field boxed in orange: {shown.caption}",
        )
    st.caption("The orange box: the receptive field of the unit that peaked.")


def show_visualization(
    loaded: LoadedModel, result: CaptureResult, layer: str, channel: int, key: str
) -> None:
    """The optimised input (on request: it takes a few seconds on a big model)."""
    st.markdown("**What it looks for**")
    left, right = st.columns(2)
    steps = int(
        left.select_slider(
            "Steps", STEPS, default_steps(loaded), key=f"{key}_card_steps", bind="query-params"
        )
    )
    rate = float(
        right.select_slider("Learning rate", RATES, 0.05, key=f"{key}_card_lr", bind="query-params")
    )
    asked = st.session_state.get(f"{key}_card_asked") == (loaded.name, layer, channel)
    if not asked and loaded.spec.family != Family.DIGIT:
        if st.button(f"Visualise ({steps} steps)", key=f"{key}_card_go"):
            st.session_state[f"{key}_card_asked"] = (loaded.name, layer, channel)
            st.rerun()
        st.caption("Gradient ascent on the input, through random jitter, scale and rotation.")
        return
    try:
        job = visualization_job(loaded, result, layer, channel, steps, rate)
        found: Visualization = run_job(job, "Optimising the input")
    except OverBudget as exc:
        st.warning(f"Not visualised: {exc}", icon="⏱️")
        return
    except VisualizeError as exc:
        st.warning(f"Cannot visualise this channel: {exc}")
        return
    picture = found.picture
    if max(picture.shape[:2]) < 100:  # a digit: enlarge it without blurring its pixels
        picture = picture.repeat(6, axis=0).repeat(6, axis=1)
    st.image(
        inline_image(picture),
        width="stretch",
        alt="The picture gradient ascent made to excite this channel most",
    )
    st.caption(
        f"Mean activation {found.start_activation:.3g} on the start image → "
        f"**{found.activation:.3g}** after {steps} steps."
    )
