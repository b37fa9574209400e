"""Draw page: draw a digit (or pick a real one) and watch every layer of the network light up."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from explorer.analysis.capture import CaptureResult
from explorer.analysis.explain import ConvUnit, PoolUnit, explain_unit, receptive_field
from explorer.figures.charts import filters_figure
from explorer.figures.describe import describe_filters
from explorer.figures.maps import input_figure, numbers_figure
from explorer.figures.selection import unit_from_selection
from explorer.figures.tiling import Tiling
from explorer.hosting.addresses import DRAW_CANVAS_KEY
from explorer.inputs.preprocess import ImageError, NothingDrawn, PreparedInput
from explorer.inputs.samples import digit_samples
from explorer.inputs.strokes import Drawing, DrawingError, parse_drawing, render_drawing
from explorer.models.zoo import LoadedModel
from explorer.views.channel import card_layers
from explorer.views.draw import DIGIT_MODELS, live_maps, network_stages, softmax_figure
from explorer.views.links import (
    STROKES_PARAM,
    UNIT_PARAM,
    decode_linked_drawing,
    encode_strokes,
    strokes_value,
)
from pages.canvas import drawing_canvas
from pages.channel import show_channel_card
from pages.common import TRAINED_KEY, digit_model, inline_image, show_prediction
from pages.links import (
    finish_view_link,
    link_unit,
    new_selection,
    restore_unit,
    start_view_link,
)
from pages.why import show_why

FULL_RUN_FLAG = "draw_full_run"  # True only while the whole page runs, not a fragment alone
SHOWN_KEY = "draw_shown"  # the input, prediction and capture the panel shows now
UNIT_KEY = "draw_unit"  # the clicked unit: (layer, channel, row, column)


def read_input(source: str) -> tuple[Any, bool]:
    """The drawing (a Pillow image) or the chosen sample, and whether it is final.

    None when nothing is there yet. A drawing is not final while its stroke is still drawn.
    """
    if source == "Sample digit":
        samples = digit_samples()
        choice = st.selectbox(
            "Sample digit (real MNIST, never trained on)",
            list(samples),
            key="draw_sample",
            bind="query-params",
        )
        return (samples[choice] if choice else None), True
    linked = linked_drawing()
    value = drawing_canvas(DRAW_CANVAS_KEY, initial=strokes_value(linked) if linked else None)
    st.caption(
        "Draw with the mouse or a finger (a click paints a dot), or from the keyboard: Tab to "
        "the canvas, arrows move the pen, Space puts it down or lifts it. The prediction "
        "follows your pen."
    )
    try:
        drawing = parse_drawing(value)
    except DrawingError as exc:
        st.error(f"That drawing cannot be read: {exc}")
        return None, True
    if value is None:
        return (render_drawing(linked), True) if linked else (None, True)
    if drawing.final:
        link_drawing(drawing)
    return render_drawing(drawing), drawing.final


def linked_drawing() -> Drawing | None:
    """The drawing in the page's link (``?draw_strokes=…``); an unreadable one is dropped."""
    text = st.query_params.get(STROKES_PARAM)
    if text is None:
        return None
    try:
        return decode_linked_drawing(text)  # the canvas's size: drawing_canvas's default
    except DrawingError:  # the link box's notice names the parameter it ignored
        del st.query_params[STROKES_PARAM]
        return None


def link_drawing(drawing: Drawing) -> None:
    """Keep the finished drawing in the URL, so the page's link shows it."""
    text = encode_strokes(drawing)
    if text is None:
        st.query_params.pop(STROKES_PARAM, None)
    elif st.query_params.get(STROKES_PARAM) != text:
        st.query_params[STROKES_PARAM] = text


def show_unit(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput) -> None:
    """The arithmetic behind the clicked unit, and its receptive field on the input."""
    unit = st.session_state.get(UNIT_KEY)
    if not unit or unit[0] not in result:
        return
    name, channel, y, x = unit
    try:
        explained = explain_unit(loaded.model, result, name, channel, y, x)
    except ValueError:  # a layer it cannot recompute (a ReLU's): restore_unit checked the rest
        del st.session_state[UNIT_KEY]
        return
    box = receptive_field(loaded.model, name, y, x, tuple(prepared.display.shape[:2]))
    title, close = st.columns([5, 1])
    title.markdown(f"#### Unit {name}[{channel}, {y}, {x}] = {explained.captured:.4f}")
    if close.button("Close", key="draw_unit_close"):
        del st.session_state[UNIT_KEY]
        st.rerun()
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(
            input_figure(
                prepared.display,
                (box.top, box.left, box.bottom, box.right),
                title=f"receptive field {box.height}×{box.width}",
            ),
            key="draw_unit_rf",
        )
    with right:
        if isinstance(explained, ConvUnit):
            show_conv_unit(explained, channel)
        elif isinstance(explained, PoolUnit):
            show_pool_unit(explained, channel)


def show_conv_unit(explained: ConvUnit, channel: int) -> None:
    """A conv unit: each input channel's patch, the kernel, their products, and the sum."""
    st.markdown(
        f"Input channels {', '.join(map(str, explained.in_channels))} of "
        f"**{explained.source}** under the kernel, the kernel of filter {channel}, "
        "and their element-wise products:"
    )
    for i, ch in enumerate(explained.in_channels[:6]):
        a, b, c = st.columns(3)
        a.plotly_chart(numbers_figure(explained.patch[i], f"patch, channel {ch}"), key=f"u_p{i}")
        b.plotly_chart(
            numbers_figure(explained.kernel[i], f"kernel [{channel}, {ch}]"), key=f"u_k{i}"
        )
        c.plotly_chart(numbers_figure(explained.products[i], "products"), key=f"u_x{i}")
    if len(explained.in_channels) > 6:
        st.caption(
            f"… and {len(explained.in_channels) - 6} more input channels (all in the sum below)."
        )
    st.markdown(
        f"Σ products = {explained.products.sum():.4f}; + bias {explained.bias:.4f} "
        f"= **{explained.total:.4f}** (captured: {explained.captured:.4f})"
    )


def show_pool_unit(explained: PoolUnit, channel: int) -> None:
    """A pooling unit: its window on the input map and the value that won (or the mean)."""
    st.plotly_chart(
        numbers_figure(explained.window, f"window in {explained.source}, channel {channel}"),
        key="u_window",
    )
    if explained.winner is not None:
        wy, wx = explained.winner
        st.markdown(
            f"The brightest value wins: row {wy}, column {wx} of the window, "
            f"**{explained.value:.4f}** (captured: {explained.captured:.4f})"
        )
    else:
        st.markdown(
            f"Mean of the window = **{explained.value:.4f}** (captured: {explained.captured:.4f})"
        )


VIEWS = [
    "The network, stage by stage",
    "Learned filters",
    "What a channel looks for",
    "Why this class?",
]


def show_card_picker(loaded: LoadedModel, result: CaptureResult) -> None:
    """Pick a layer and a channel; its card: what it looks for, top digits, kernel, response."""
    layers = card_layers(result)
    layer_column, channel_column, _ = st.columns([2, 1, 3])
    layer = str(
        layer_column.selectbox(
            "Layer", layers, key=f"draw_card_layer_{loaded.name}", bind="query-params"
        )
    )
    count = int(result[layer].shape[0])
    channel = int(
        channel_column.number_input(
            "Channel", 0, count - 1, 0, key="draw_card_channel", bind="query-params"
        )
    )
    show_channel_card(loaded, result, layer, min(channel, count - 1), "draw")


def take_click(key: str, layer: str, event: object, tiling: Tiling) -> None:
    """Make a *new* click on chart ``key`` the clicked unit (older selections stay ignored)."""
    picked = unit_from_selection(event, tiling)
    if new_selection(key, picked) and picked is not None:
        st.session_state[UNIT_KEY] = (layer, *picked)
        st.rerun()  # draw the explanation under its own map, not under an earlier one


def show_pipeline(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, scale: str
) -> None:
    """Every stage, in execution order: what it computes on the left, its output on the right."""
    for stage in network_stages(loaded, result, prepared, scale):
        about, picture = st.columns([1, 3], gap="medium")
        with about:
            caption = stage.caption.replace("]", "\\]")
            st.markdown(f"{stage.heading}\n\n:small[:gray[{caption}]]")  # one element, not two
            if stage.formula:
                with st.popover("Formula and numbers"):
                    st.markdown(stage.formula)
        with picture:
            if stage.tiling is not None and stage.layer is not None:
                event = st.plotly_chart(
                    stage.figure, key=stage.key, on_select="rerun", selection_mode="points"
                )
                take_click(stage.key, stage.layer.name, event, stage.tiling)
            else:
                st.plotly_chart(stage.figure, key=stage.key)
            st.caption(stage.description)  # the picture's text alternative
        unit = st.session_state.get(UNIT_KEY)
        if stage.layer is not None and unit and unit[0] == stage.layer.name:
            with st.container(border=True):
                show_unit(loaded, result, prepared)


@st.fragment
def input_panel(model_name: str, source: str) -> None:
    """The input, the prediction and the first maps: alone, this reruns while you draw.

    A live value (a stroke still being drawn) reruns only this fragment; anything else
    (a finished stroke, undo, clear, a sample) reruns the whole page so every stage follows.
    """
    loaded = digit_model(model_name)
    controls, outputs = st.columns([1.3, 2], gap="large")  # the 280-px canvas fits at 1280 px
    with controls:
        raw, final = read_input(source)
        # under the canvas, so a finger drawing on a phone sees it (sticky there: style.css)
        prediction = st.container(key="draw_prediction")
    if final and not st.session_state.get(FULL_RUN_FLAG):
        st.rerun(scope="app")
    st.session_state[SHOWN_KEY] = None
    with outputs:
        st.caption(
            f"{loaded.spec.title} · weights {loaded.weights_label} · device {loaded.device_label}"
        )
        if raw is None:
            st.info("Draw a digit in the black box (white ink), or pick a sample digit.")
            return
        try:
            prepared = loaded.prepare(raw)
        except NothingDrawn:
            st.info("Nothing drawn yet: draw a digit in the black box, as large as you like.")
            return
        except ImageError as exc:
            st.error(f"That image cannot be read: {exc}")
            return
        result = loaded.capture(prepared)
        st.session_state[SHOWN_KEY] = (prepared, result)
        show_prediction(prediction, loaded, result)
        pictures = st.container(horizontal=True)  # side by side, wrapping when narrow
        pictures.image(
            inline_image(prepared.display),
            caption="what the network sees ({}×{})".format(*prepared.display.shape[:2]),
            width=120,
            alt="The {}×{} digit the model sees: cropped, scaled and centred".format(
                *prepared.display.shape[:2]
            ),
        )
        pictures.image(
            inline_image(np.asarray(raw) if isinstance(raw, Image.Image) else raw.read_bytes()),
            caption="your drawing" if isinstance(raw, Image.Image) else "the sample",
            width=120,
            alt="Your drawing, white ink on black"
            if isinstance(raw, Image.Image)
            else "The sample digit, as shipped",
        )
        st.plotly_chart(softmax_figure(loaded, result), key="draw_softmax")
        for caption, uri, description in live_maps(result):
            st.image(uri, caption=caption, alt=description)


st.title("Draw a digit")
st.caption(
    "Draw a digit and watch every convolution, ReLU and pooling output light up, "
    "all the way to the softmax."
)
view_link = start_view_link("draw")

model_column, source_column, _ = st.columns([3, 2, 2])  # the model names fit at 1280 px
models = dict(DIGIT_MODELS)
trained = st.session_state.get(TRAINED_KEY)
if trained is not None:
    models[TRAINED_KEY] = "Your trained model"
model_name = (
    model_column.segmented_control(
        "Model",
        list(models),
        format_func=models.__getitem__,
        default="lenet5",
        key="draw_model",
        bind="query-params",
    )
    or "lenet5"
)
source = (
    source_column.segmented_control(
        "Input", ["Draw", "Sample digit"], default="Draw", key="draw_source", bind="query-params"
    )
    or "Draw"
)
loaded = digit_model(model_name)
st.session_state[FULL_RUN_FLAG] = True
try:
    input_panel(model_name, source)
finally:
    st.session_state[FULL_RUN_FLAG] = False
shown = st.session_state.get(SHOWN_KEY)

if shown is not None:
    prepared, result = shown
    restore_unit(UNIT_KEY, UNIT_PARAM, result)  # before the stages: a linked unit shows
    st.divider()
    scale = st.radio(
        "Colour scale",
        ["layer", "map"],
        horizontal=True,
        key="draw_scale",
        bind="query-params",
        format_func={"layer": "one scale per layer", "map": "one scale per map"}.get,
        help="Diverging blue–white–red centred on 0 where values can be negative (conv); "
        "sequential where they cannot (ReLU, pooling).",
    )
    view = st.segmented_control(
        "View",
        [
            "The network, stage by stage",
            "Learned filters",
            "What a channel looks for",
            "Why this class?",
        ],
        default="The network, stage by stage",
        key="draw_view",
        bind="query-params",
    )

    if view == "Why this class?":
        show_why(loaded, result, prepared, "draw")
    elif view == "What a channel looks for":
        show_card_picker(loaded, result)
    elif view == "Learned filters":
        st.caption(
            "Each conv layer's kernels: a row per filter, a column per input channel "
            "(with one input channel, a grid of its filters)."
        )
        for layer in result.of_kind("conv"):
            weight = loaded.weight_of(layer)
            st.plotly_chart(
                filters_figure(weight, layer.name, tile_px=60), key=f"filters_{layer.name}"
            )
            st.caption(describe_filters(weight.detach().float().cpu().numpy(), layer.name))
    else:
        st.caption(
            "Click any pixel of a conv or pool map to see the numbers that made it; "
            "hover for exact values."
        )
        show_pipeline(loaded, result, prepared, scale)
    st.download_button(
        "Download every activation (.npz)",
        result.to_npz,
        f"{model_name}-activations.npz",
        key="draw_npz",
    )
if shown is not None:  # kept while no stage is shown (a cleared canvas)
    link_unit(UNIT_KEY, UNIT_PARAM)
finish_view_link(
    view_link,
    "Your trained model stays in this session: the link opens LeNet-5."
    if model_name == TRAINED_KEY
    else None,
)
