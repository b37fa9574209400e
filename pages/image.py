"""Image page: a photo through any zoo model, every layer browsable, filters and architecture."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import streamlit as st

from explorer import figures, layer_view
from explorer.architecture import (
    architecture_csv,
    architecture_table,
    architecture_totals,
    human_count,
)
from explorer.capture import CaptureResult, LayerOutput
from explorer.explain import receptive_field
from explorer.preprocess import ImageError, PreparedInput
from explorer.zoo import ASSETS_DIR, ZOO, LoadedModel, ModelError, load_model
from pages.common import cached_model, inline_image

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
VIEWS = ["Layers", "Filters", "Architecture"]


def samples(family: str) -> dict[str, Path]:
    """Shipped samples by a readable name: photos, or real MNIST digits for the digit nets."""
    if family == "digit":
        files = sorted((ASSETS_DIR / "digits").glob("*.png"))
        return {
            f"digit {p.stem.split('_')[0]} (MNIST sample {p.stem.split('_')[1]})": p for p in files
        }
    files = sorted((ASSETS_DIR / "photos").glob("*.jpg"))
    return {p.stem.replace("_", " "): p for p in files}


@st.cache_resource(show_spinner="Loading your weights…", max_entries=2)
def cached_own_model(name: str, digest: str, _data: bytes, filename: str) -> LoadedModel:
    """A zoo architecture with the user's state dict (keyed by its sha256, not its bytes)."""
    buffer = io.BytesIO(_data)
    buffer.name = filename  # shown as the weights' label
    return load_model(name, buffer)


@st.cache_resource(max_entries=6, show_spinner="Running the network…")
def cached_capture(
    model_key: str, input_sha: str, _loaded: LoadedModel, _prepared: PreparedInput
) -> CaptureResult:
    """Every layer of one input, shared by every session that shows the same model + input.

    Keyed by strings (model, weights and the input's sha256), so choosing another layer
    never runs the network again.
    """
    return _loaded.capture(_prepared)


def read_input(family: str) -> bytes | Path | None:
    """The chosen image: a shipped sample's path, or the uploaded or photographed bytes."""
    source = st.segmented_control(
        "Image", ["Sample", "Upload", "Camera"], default="Sample", key="image_source"
    )
    if source == "Upload":
        upload = st.file_uploader("An image file", type=UPLOAD_TYPES, key="image_upload")
        return upload.getvalue() if upload is not None else None
    if source == "Camera":
        shot = st.camera_input("Take a photo", key="image_camera")
        return shot.getvalue() if shot is not None else None
    shipped = samples(family)
    label = "Sample digit (real MNIST)" if family == "digit" else "Sample photo"
    choice = st.selectbox(label, list(shipped), key=f"image_sample_{family}")
    return shipped[choice] if choice else None


def choose_model() -> tuple[LoadedModel | None, str]:
    """The model picked (pretrained, or the user's weights) and its cache key."""
    names = list(ZOO)
    name = st.selectbox(
        "Model",
        names,
        index=names.index("resnet18"),
        format_func=lambda n: f"{ZOO[n].title} ({ZOO[n].year})",
        key="image_model",
    )
    own = st.file_uploader(
        "Own weights (optional): a .pth/.pt state dict for this architecture",
        type=["pth", "pt"],
        key="image_weights",
    )
    if own is None:
        return cached_model(name), f"{name}:pretrained"
    data = own.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    try:
        return cached_own_model(name, digest, data, own.name), f"{name}:{digest}"
    except ModelError as exc:
        st.error(f"Those weights do not fit {ZOO[name].title}: {exc}")
        return None, ""


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
    st.plotly_chart(figures.top_classes_figure(loaded.categories, probs, 5), key="image_top5_chart")
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


def show_stats(layer: LayerOutput) -> None:
    """Shape, min, max, mean and the fraction of zeros of a layer."""
    stats = layer.stats()
    cells = st.columns(5)
    cells[0].metric("shape", "×".join(str(s) for s in layer.shape))
    cells[1].metric("min", f"{stats['min']:.4g}")
    cells[2].metric("max", f"{stats['max']:.4g}")
    cells[3].metric("mean", f"{stats['mean']:.4g}")
    cells[4].metric(
        "zeros",
        f"{stats['zero_fraction']:.1%}",
        help="Fraction of values exactly 0: after a ReLU, the units that did not fire.",
    )


def show_map_layer(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, layer: LayerOutput
) -> None:
    """A page of the layer's channels, one channel large over the input, and a clicked unit."""
    values = layer.numpy()
    count, h, w = values.shape
    sort_col, scale_col, page_col = st.columns([2, 2, 1])
    sort = sort_col.segmented_control(
        "Order channels by",
        layer_view.SORTS,
        default="index",
        key="image_sort",
        format_func={"index": "number", "mean": "mean ↓", "max": "max ↓"}.get,
    )
    scale = scale_col.segmented_control(
        "Colour scale",
        ["layer", "map"],
        default="layer",
        key="image_scale",
        format_func={"layer": "one per layer", "map": "one per map"}.get,
    )
    order = layer_view.channel_order(values, sort or "index")
    per_page = layer_view.page_size(h, w)
    pages = -(-count // per_page)
    page = 1
    if pages > 1:
        page = int(page_col.number_input("Page", 1, pages, 1, key=f"image_page_{layer.name}"))
    shown = order[(page - 1) * per_page : page * per_page]
    grid = layer_view.channel_grid_figure(values, layer.name, layer.kind, shown, scale or "layer")
    st.caption(
        f"Channels {', '.join(str(c) for c in shown[:3])}… ({len(shown)} of {count}, page "
        f"{page} of {pages}): one tile per channel. Hover a tile for its mean and max; "
        "click one to see it large."
    )
    event = st.plotly_chart(
        grid.figure, key=f"image_grid_{layer.name}", on_select="rerun", selection_mode="points"
    )
    picked = layer_view.channel_from_selection(event, grid)
    channel_key = f"image_channel_{layer.name}"
    if picked is not None and st.session_state.get(f"{channel_key}_clicked") != picked:
        st.session_state[f"{channel_key}_clicked"] = picked
        st.session_state[channel_key] = picked
    st.session_state.setdefault(channel_key, int(shown[0]))
    left, right = st.columns([1, 3])
    with left:
        channel = int(st.number_input("Channel", 0, count - 1, key=channel_key))
        opacity = st.slider("Map opacity over the input", 0.0, 1.0, 0.65, 0.05, key="image_opacity")
        ch_stats = values[channel]
        st.markdown(
            f"channel **{channel}**: min {ch_stats.min():.4g} · max {ch_stats.max():.4g} · "
            f"mean {ch_stats.mean():.4g}"
        )
    # The unit clicked on this channel's map: its selection state, read before the chart is
    # drawn again, so the receptive field box appears in the same run.
    figure_key = f"image_channel_fig_{layer.name}_{channel}"
    unit = layer_view.unit_from_channel_selection(st.session_state.get(figure_key), (h, w))
    box = rf = None
    if unit is not None:
        rf = receptive_field(loaded.model, layer.name, *unit, tuple(prepared.display.shape[:2]))
        box = (rf.top, rf.left, rf.bottom, rf.right)
    with right:
        figure = layer_view.channel_figure(
            values[channel], layer.name, channel, layer.kind, prepared.display, opacity, box
        )
        st.plotly_chart(figure, key=figure_key, on_select="rerun", selection_mode="points")
    if unit is not None and rf is not None:
        y, x = unit
        clipped = rf.clipped(*prepared.display.shape[:2])
        left.markdown(
            f"**Unit {layer.name}[{channel}, {y}, {x}] = {values[channel, y, x]:.6g}**  \n"
            f"Its receptive field: {rf.height}×{rf.width} input pixels, rows "
            f"{clipped.top}–{clipped.bottom - 1}, columns {clipped.left}–{clipped.right - 1} "
            "(the orange box)."
        )
    else:
        left.caption("Click a unit of the large map to outline its receptive field.")


@st.fragment
def layer_browser(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput) -> None:
    """Choose a layer and look at it; only this part reruns when the layer changes."""
    kinds = [layer.kind for layer in result.layers]
    summary = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
    st.caption(f"{len(result.layers)} layers in execution order: {summary}.")
    name = st.selectbox(
        "Layer",
        result.names,
        format_func=lambda n: layer_view.layer_label(result, n),
        key=f"image_layer_{loaded.name}",
    )
    layer = result[name]
    show_stats(layer)
    if len(layer.shape) == 3:
        show_map_layer(loaded, result, prepared, layer)
    else:
        categories = loaded.categories if layer.shape[-1] == len(loaded.categories) else None
        st.plotly_chart(figures.vector_figure(layer, categories), key=f"image_vector_{layer.name}")


def show_filters(loaded: LoadedModel, result: CaptureResult) -> None:
    """The first conv layer in colour, any conv layer's kernels and its weight histogram."""
    convs = [layer for layer in result.of_kind("conv") if layer.module is not None]
    if not convs:
        st.info("This model has no conv layers.")
        return
    first = loaded.model.get_submodule(convs[0].module or "").weight
    if first.shape[1] == 3:
        st.caption(
            "The first layer's filters as colour images: all share one scale (black = most "
            "negative weight, white = most positive), so they compare."
        )
        st.plotly_chart(figures.rgb_filters_figure(first, convs[0].name), key="image_rgb_filters")
    names = list(dict.fromkeys(layer.name for layer in convs))
    name = st.selectbox("Conv layer", names, key=f"image_filter_layer_{loaded.name}")
    conv = result[name]
    weight = loaded.model.get_submodule(conv.module or "").weight
    st.caption(
        "A row per filter, a column per input channel (the first 32 × 16); diverging colours "
        "centred on 0. Hover for each weight."
    )
    st.plotly_chart(
        figures.filters_figure(weight, name, max_filters=32, max_inputs=16, tile_px=28),
        key="image_filters",
    )
    st.plotly_chart(
        layer_view.weight_histogram_figure(weight.detach().float().cpu().numpy(), name),
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


st.title("Look inside an image classifier")
st.caption(
    "Pick a photo and a famous network; see the top-5 classes, then every layer's channels, "
    "the learned filters and the architecture, with the numbers."
)
controls, output = st.columns([1, 2])
with controls:
    loaded, model_key = choose_model()
    raw = read_input(loaded.spec.family if loaded is not None else "photo")

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
            result = cached_capture(model_key, prepared.sha256, loaded, prepared)
            seen, chart = st.columns([1, 2])
            seen.image(
                inline_image(prepared.display),
                caption="what the network sees ({}×{})".format(*prepared.display.shape[:2]),
            )
            with chart:
                show_top5(loaded, result)

if loaded is not None and prepared is not None and result is not None:
    st.divider()
    view = st.segmented_control("View", VIEWS, default="Layers", key="image_view")
    if view == "Filters":
        show_filters(loaded, result)
    elif view == "Architecture":
        show_architecture(loaded, result, prepared)
    else:
        layer_browser(loaded, result, prepared)
