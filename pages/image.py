"""Image page: a photo through any zoo model, every layer browsable, filters and architecture."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from explorer.analysis.architecture import (
    architecture_csv,
    architecture_table,
    architecture_totals,
    human_count,
)
from explorer.analysis.capture import CaptureResult
from explorer.figures.charts import (
    filters_figure,
    rgb_filters_figure,
    top_classes_figure,
    weight_histogram_figure,
)
from explorer.figures.describe import describe_filters
from explorer.hosting.addresses import layer_widget_key
from explorer.hosting.scheduler import capture_job
from explorer.inputs.preprocess import MAX_PHOTO_UPLOAD_MB, ImageError, PreparedInput
from explorer.inputs.samples import samples_for
from explorer.models.zoo import ZOO, Family, LoadedModel, ModelError, load_model
from explorer.views import image as image_view
from explorer.views.links import IMAGE_UNIT_PARAM, Unit
from pages.channel import show_channel_card
from pages.common import PICTURES_KEY, TRAINED_KEY, cached_model, inline_image, run_job
from pages.links import (
    finish_view_link,
    link_unit,
    new_selection,
    restore_unit,
    start_view_link,
)
from pages.own import OWN, choose_own_model
from pages.why import show_why

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
VIEWS = ["Layers", "Filters", "Architecture", "Why this class?"]
UNIT_KEY = "image_clicked_unit"  # the clicked unit: (layer, channel, row, column)


@st.cache_resource(show_spinner="Loading your weights…", max_entries=2)
def cached_own_model(name: str, digest: str, _data: bytes, filename: str) -> LoadedModel:
    """A zoo architecture with the user's state dict (keyed by its sha256, not its bytes)."""
    buffer = io.BytesIO(_data)
    buffer.name = filename  # shown as the weights' label
    return load_model(name, buffer)  # read in the sandbox, which bounds its own workers


def shared_capture(loaded: LoadedModel, prepared: PreparedInput) -> CaptureResult:
    """Every layer of one input, shared by every session that shows the same model + input.

    A job of the heavy-work scheduler (its quick line: one pass), kept in its cache by the
    model's cache key and the input's sha256, so choosing another layer never runs the network
    again.
    """
    result: CaptureResult = run_job(capture_job(loaded, prepared), "Running the network")
    return result


def read_input(family: str) -> bytes | Path | None:
    """The chosen image: a shipped sample's path, or the uploaded or photographed bytes."""
    source = st.segmented_control(
        "Image",
        ["Sample", "Upload", "Camera"],
        default="Sample",
        key="image_source",
        bind="query-params",
    )
    if source == "Upload":
        upload = st.file_uploader(
            "An image file",
            type=UPLOAD_TYPES,
            key="image_upload",
            max_upload_size=MAX_PHOTO_UPLOAD_MB,
        )
        return upload.getvalue() if upload is not None else None
    if source == "Camera":
        shot = st.camera_input("Take a photo", key="image_camera")
        return shot.getvalue() if shot is not None else None
    shipped = samples_for(family)
    label = "Sample digit (real MNIST)" if family == Family.DIGIT else "Sample photo"
    choice = st.selectbox(label, list(shipped), key=f"image_sample_{family}", bind="query-params")
    return shipped[choice] if choice else None


def choose_model() -> LoadedModel | None:
    """The model picked (pretrained, or the user's weights); None, with a message, if none."""
    trained = st.session_state.get(TRAINED_KEY)
    extra = {OWN: "Your model (.pt2 or .onnx)"}
    if trained is not None:
        extra[TRAINED_KEY] = trained.spec.title
    pictures = st.session_state.get(PICTURES_KEY)  # a model taught on the Your pictures page
    if isinstance(pictures, LoadedModel):
        extra[PICTURES_KEY] = pictures.spec.title
    names = [*ZOO, *extra]
    name = st.selectbox(
        "Model",
        names,
        index=names.index("resnet18"),
        format_func=lambda n: extra.get(n) or f"{ZOO[n].title} ({ZOO[n].year})",
        key="image_model",
        bind="query-params",
    )
    if name == OWN:
        return choose_own_model()
    if name == TRAINED_KEY and isinstance(trained, LoadedModel):
        return trained
    if name == PICTURES_KEY and isinstance(pictures, LoadedModel):
        return pictures
    own = st.file_uploader(
        "Own weights (optional): a .pth/.pt state dict for this architecture",
        type=["pth", "pt"],
        key="image_weights",
    )
    if own is None:
        return cached_model(name)
    data = own.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    try:
        return cached_own_model(name, digest, data, own.name)
    except ModelError as exc:
        st.error(f"Those weights do not fit {ZOO[name].title}: {exc}")
        return None


def show_model(loaded: LoadedModel) -> None:
    """Weights, device, input size and parameter count in one line, and any notice."""
    size = "×".join(str(s) for s in loaded.spec.input_size)
    st.caption(
        f"**{loaded.spec.title}** · weights **{loaded.weights_label}** · device "
        f"{loaded.device_label} · input {size} · {human_count(loaded.parameter_count)} "
        f"parameters ({loaded.parameter_count:,})"
    )
    if loaded.notice:
        st.warning(loaded.notice, icon="⚠️")
    elif loaded.is_untrained:
        st.warning(
            f"{loaded.spec.title}: UNTRAINED (random) weights: the predictions mean nothing.",
            icon="⚠️",
        )


def show_top5(loaded: LoadedModel, result: CaptureResult) -> None:
    """Top-5 classes as bars and as a table."""
    probs = result.probs.detach().float().cpu().numpy()
    top = result.top(5)
    st.plotly_chart(top_classes_figure(loaded.categories, probs, 5), key="image_top5_chart")
    st.dataframe(
        {
            "rank": list(range(1, len(top) + 1)),
            "class": [loaded.categories[i] for i, _ in top],
            "probability": [round(p, 4) for _, p in top],
        },
        hide_index=True,
        key="image_top5",
        column_config={
            "probability": st.column_config.ProgressColumn(
                "probability", min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )


def show_stats(stats: image_view.LayerStats) -> None:
    """Shape, min, max, mean and the fraction of zeros of a layer."""
    for cell, metric in zip(st.columns(len(stats.metrics)), stats.metrics, strict=True):
        cell.metric(metric.label, metric.value, help=metric.help)


def labelled_choice(label: str, labels: Mapping[str, str], default: str, key: str) -> str | None:
    """A segmented control over ``labels``' keys, each shown by its label."""
    return st.segmented_control(
        label,
        list(labels),
        default=default,
        key=key,
        format_func=labels.__getitem__,
        bind="query-params",
    )


def read_grid_order(name: str, pages: int) -> tuple[str | None, str | None, int]:
    """How the channel grid of layer ``name`` is sorted and coloured, and its page."""
    sort_col, scale_col, page_col = st.columns([2, 2, 1])
    with sort_col:
        sort = labelled_choice(
            "Order channels by", image_view.SORT_LABELS, image_view.DEFAULT_SORT, "image_sort"
        )
    with scale_col:
        scale = labelled_choice(
            "Colour scale", image_view.SCALE_LABELS, image_view.DEFAULT_SCALE, "image_scale"
        )
    page = 1
    if pages > 1:
        page = int(
            page_col.number_input(
                "Page", 1, pages, 1, key=f"image_page_{name}", bind="query-params"
            )
        )
    return sort, scale, page


def take_unit_click(shown: image_view.LayerPage, figure_key: str, channel: int) -> None:
    """A *new* click on the large map makes its unit the clicked one; un-selecting closes it.

    Only a change counts: a selection still held from before must not undo a Close or a link.
    """
    picked = shown.clicked_unit(st.session_state.get(figure_key))
    if not new_selection(figure_key, picked):
        return
    if picked is not None:
        st.session_state[UNIT_KEY] = (shown.layer.name, channel, *picked)
    else:  # a double click clears the selection
        st.session_state.pop(UNIT_KEY, None)


def close_unit() -> None:
    """Close the clicked unit (the Close button's callback: before the rerun draws the map)."""
    st.session_state.pop(UNIT_KEY, None)


def unit_on_map(result: CaptureResult, shown: image_view.LayerPage, channel: int) -> Unit | None:
    """The clicked unit on channel ``channel``'s large map: a new click, or the kept or linked one.

    Kept in the URL (``?image_unit=``); a unit of another layer or channel is dropped.
    """
    take_unit_click(shown, f"image_channel_fig_{shown.layer.name}_{channel}", channel)
    unit = restore_unit(UNIT_KEY, IMAGE_UNIT_PARAM, result, on=(shown.layer.name, channel))
    link_unit(UNIT_KEY, IMAGE_UNIT_PARAM)
    return unit


def read_channel(key: str, count: int, first: int) -> tuple[int, float]:
    """The channel shown large (of ``count``, ``first`` until one is chosen) and its opacity."""
    # The page's first tile as the default, not in session state: that would beat a link
    # to channel 0, which Streamlit drops from the URL as the number input's default.
    channel = int(st.number_input("Channel", 0, count - 1, first, key=key, bind="query-params"))
    opacity = st.slider(
        "Map opacity over the input",
        0.0,
        1.0,
        image_view.DEFAULT_OPACITY,
        0.05,
        key="image_opacity",
        bind="query-params",
    )
    return channel, opacity


def show_map_layer(
    loaded: LoadedModel,
    result: CaptureResult,
    prepared: PreparedInput,
    shown: image_view.LayerPage,
) -> None:
    """A page of the layer's channels, one channel large over the input, and a clicked unit."""
    name = shown.layer.name
    paging = shown.paging
    assert paging is not None  # a map layer
    channels = image_view.channel_page(shown, *read_grid_order(name, paging.pages))

    st.caption(channels.caption)
    event = st.plotly_chart(
        channels.grid.figure, key=f"image_grid_{name}", on_select="rerun", selection_mode="points"
    )
    st.caption(channels.description)  # the grid's text alternative
    picked = channels.clicked_channel(event)
    channel_key = f"image_channel_{name}"
    if picked is not None and st.session_state.get(f"{channel_key}_clicked") != picked:
        st.session_state[f"{channel_key}_clicked"] = picked
        st.session_state[channel_key] = picked
    left, right = st.columns([1, 3])
    with left:
        channel, opacity = read_channel(channel_key, paging.count, channels.first_channel)
        # The unit clicked on this channel's map: its selection state, read before the chart
        # is drawn again, so the receptive field box appears in the same run.
        unit = unit_on_map(result, shown, channel)
        view = image_view.channel_view(
            loaded.model,
            shown,
            channel,
            prepared.display,
            opacity,
            unit=None if unit is None else unit[2:],
        )
        st.markdown(view.stats_text)
    with right:
        st.plotly_chart(
            view.figure,
            key=f"image_channel_fig_{name}_{channel}",
            on_select="rerun",
            selection_mode="points",
        )
        st.caption(view.description)  # the map's text alternative
    if view.unit_text is not None:
        left.markdown(view.unit_text)
        left.button("Close", key="image_unit_close", on_click=close_unit)
    else:
        left.caption(image_view.UNIT_HINT)
    # On request: an expander's content (the top inputs' forward passes) runs even closed.
    if st.toggle(
        f"What does channel {channel} of {name} look for?", key="image_card", bind="query-params"
    ):
        show_channel_card(loaded, result, name, channel, "image")


@st.fragment
def layer_browser(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput) -> None:
    """Choose a layer and look at it; only this part reruns when the layer changes."""
    st.caption(image_view.layers_summary(result))
    labels = image_view.layer_choices(result)
    name = st.selectbox(
        "Layer",
        list(labels),
        format_func=labels.__getitem__,
        key=layer_widget_key(loaded.name),
        bind="query-params",
    )
    shown = image_view.layer_page(loaded.categories, result, name)
    show_stats(shown.stats)
    if shown.is_map:
        show_map_layer(loaded, result, prepared, shown)
    else:
        restore_unit(UNIT_KEY, IMAGE_UNIT_PARAM, result, on=(name, None))  # no units here
        link_unit(UNIT_KEY, IMAGE_UNIT_PARAM)
        st.plotly_chart(shown.vector_figure, key=f"image_vector_{name}")


def show_filters(loaded: LoadedModel, result: CaptureResult) -> None:
    """The first conv layer in colour, any conv layer's kernels and its weight histogram."""
    convs = [layer for layer in result.of_kind("conv") if layer.module is not None]
    if not convs:
        st.info(
            "This model's conv layers are operators of a torch.export graph, not modules: "
            "their kernels are not shown here (an ONNX export of the same model shows them)."
            if result.of_kind("conv")
            else "This model has no conv layers."
        )
        return
    first = loaded.weight_of(convs[0])
    if first.shape[1] == 3:
        st.caption(
            "The first layer's filters as colour images: all share one scale (black = most "
            "negative weight, white = most positive), so they compare."
        )
        st.plotly_chart(rgb_filters_figure(first, convs[0].name), key="image_rgb_filters")
    names = list(dict.fromkeys(layer.name for layer in convs))
    name = st.selectbox(
        "Conv layer", names, key=f"image_filter_layer_{loaded.name}", bind="query-params"
    )
    conv = result[name]
    weight = loaded.weight_of(conv)
    st.caption(
        "A row per filter, a column per input channel (the first 32 × 16); diverging colours "
        "centred on 0. Hover for each weight."
    )
    st.plotly_chart(
        filters_figure(weight, name, max_filters=32, max_inputs=16, tile_px=28),
        key="image_filters",
    )
    st.caption(describe_filters(weight.detach().float().cpu().numpy(), name))
    st.plotly_chart(
        weight_histogram_figure(weight.detach().float().cpu().numpy(), name),
        key="image_weight_hist",
    )


def show_architecture(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput) -> None:
    """Every layer with kernel, stride, padding, shape, parameters, receptive field, MACs."""
    rows = architecture_table(loaded.model, result, tuple(prepared.display.shape[:2]))
    totals = architecture_totals(loaded.model, rows)
    cells = st.columns(3)
    cells[0].metric("layers", totals.layers)
    cells[1].metric("parameters", f"{totals.parameters:,}")
    cells[2].metric(
        "multiply-adds",
        human_count(totals.mult_adds),
        help="Of the conv and linear layers, for one image.",
    )
    if totals.unlisted_parameters:
        st.caption(f"{totals.unlisted_parameters:,} parameters belong to no listed layer.")
    st.dataframe(
        [row.__dict__ for row in rows],
        hide_index=True,
        key="image_architecture",
        column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
            "mult_adds": st.column_config.NumberColumn("multiply-adds", format="localized"),
        },
    )
    st.download_button(
        "Download the table (.csv)",
        architecture_csv(rows),
        f"{loaded.name}-architecture.csv",
        mime="text/csv",
        key="image_architecture_csv",
    )


def link_note() -> str | None:
    """What this view's link cannot carry, said under it."""
    if st.session_state.get("image_source") in ("Upload", "Camera"):
        return "Your picture stays on this computer: the link opens with no picture chosen."
    session_models = (OWN, TRAINED_KEY, PICTURES_KEY)
    if st.session_state.get("image_model") in session_models or st.session_state.get(
        "image_weights"
    ):
        return "Your model or weights stay in this session: the link opens without them."
    return None


st.title("Look inside an image classifier")

st.caption(
    "Pick a photo and a famous network; see the top-5 classes, then every layer's channels, "
    "the learned filters and the architecture, with the numbers."
)
view_link = start_view_link("image")

controls, output = st.columns([1, 2])
with controls:
    loaded = choose_model()
    raw = read_input(loaded.spec.family if loaded is not None else Family.PHOTO)

prepared: PreparedInput | None = None
result: CaptureResult | None = None
with output:
    if loaded is not None:
        show_model(loaded)
    if raw is None:
        st.info("Choose a sample, upload an image or take a photo to begin.")
    elif loaded is not None:
        try:
            prepared = loaded.prepare(raw)
        except ImageError as exc:
            st.error(f"That image cannot be used: {exc}")
        if prepared is not None:
            result = shared_capture(loaded, prepared)
            seen, chart = st.columns([1, 2])
            seen.image(
                inline_image(prepared.display),
                caption="what the network sees ({}×{})".format(*prepared.display.shape[:2]),
                alt="Your picture as the model sees it: {}×{}, resized and centre-cropped".format(
                    *prepared.display.shape[:2]
                ),
            )
            with chart:
                show_top5(loaded, result)

if loaded is not None and prepared is not None and result is not None:
    st.divider()
    view = st.segmented_control(
        "View", VIEWS, default="Layers", key="image_view", bind="query-params"
    )
    if view == "Filters":
        show_filters(loaded, result)
    elif view == "Architecture":
        show_architecture(loaded, result, prepared)
    elif view == "Why this class?":
        show_why(loaded, result, prepared, "image")  # in the heavy-work scheduler's line
    else:
        layer_browser(loaded, result, prepared)
finish_view_link(view_link, link_note())
