"""The channel card, laid out for the Draw and Image pages' layer browsers."""

from __future__ import annotations

import streamlit as st

from explorer.analysis.capture import CaptureResult
from explorer.analysis.visualize import VisualizeError
from explorer.figures.channels import channel_figure
from explorer.figures.charts import filters_figure
from explorer.models.zoo import LoadedModel
from explorer.views.channel import (
    card_layers,
    channel_filter,
    default_steps,
    top_pictures,
    visualization,
)
from pages.common import inline_image

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
        show_visualization(loaded, layer, channel, key)
    with tops:
        pictures, what = top_pictures(loaded, layer, channel)
        st.markdown(f"**Top inputs** among {what}")
        cells = st.columns(3)
        for i, shown in enumerate(pictures):
            cells[i % 3].image(inline_image(shown.picture), caption=shown.caption)
        st.caption("The orange box: the receptive field of the unit that peaked.")
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


def show_visualization(loaded: LoadedModel, layer: str, channel: int, key: str) -> None:
    """The optimised input (on request: it takes a few seconds on a big model)."""
    st.markdown("**What it looks for**")
    left, right = st.columns(2)
    steps = int(left.select_slider("Steps", STEPS, default_steps(loaded), key=f"{key}_card_steps"))
    rate = float(right.select_slider("Learning rate", RATES, 0.05, key=f"{key}_card_lr"))
    asked = st.session_state.get(f"{key}_card_asked") == (loaded.name, layer, channel)
    if not asked and loaded.spec.family != "digit":
        if st.button(f"Visualise ({steps} steps)", key=f"{key}_card_go"):
            st.session_state[f"{key}_card_asked"] = (loaded.name, layer, channel)
            st.rerun()
        st.caption("Gradient ascent on the input, through random jitter, scale and rotation.")
        return
    bar = st.progress(0.0, text="Optimising the input…")

    def progress(done: float) -> None:  # also where Streamlit stops a run that is not wanted
        bar.progress(done, text=f"Optimising the input: {done:.0%}")

    try:
        found = visualization(loaded, layer, channel, steps, progress, rate)
    except VisualizeError as exc:
        st.warning(f"Cannot visualise this channel: {exc}")
        return
    finally:
        bar.empty()
    picture = found.picture
    if max(picture.shape[:2]) < 100:  # a digit: enlarge it without blurring its pixels
        picture = picture.repeat(6, axis=0).repeat(6, axis=1)
    st.image(inline_image(picture), width="stretch")
    st.caption(
        f"Mean activation {found.start_activation:.3g} on the start image → "
        f"**{found.activation:.3g}** after {steps} steps."
    )
