"""Draw page: draw a digit (or pick a real one) and watch every layer of the network light up."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from explorer import figures
from explorer.captions import describe_stage
from explorer.capture import CaptureResult, LayerOutput
from explorer.explain import ConvUnit, PoolUnit, explain_unit, receptive_field
from explorer.preprocess import ImageError, NothingDrawn, PreparedInput
from explorer.tiling import Tiling
from explorer.zoo import ASSETS_DIR, LoadedModel
from pages.common import cached_model, inline_image, show_prediction

CANVAS_KEY = "draw_canvas"
DIGIT_MODELS = {"lenet5": "LeNet-5", "harley": "Harley's net"}
MAP_KINDS = {"conv", "relu", "pool"}


def gallery() -> dict[str, Path]:
    """Sample digits shipped in assets/digits, by label."""
    files = sorted((ASSETS_DIR / "digits").glob("*.png"))
    return {f"{p.stem.split('_')[0]} (sample {int(p.stem.split('_')[1]) + 1})": p for p in files}


def read_input(source: str) -> bytes | Path | None:
    """The drawing (PNG bytes) or the chosen sample, or None when nothing is there yet."""
    if source == "Sample digit":
        samples = gallery()
        choice = st.selectbox(
            "Sample digit (real MNIST, never trained on)", list(samples), key="draw_sample"
        )
        return samples[choice] if choice else None
    brush = st.slider("Brush size", 8, 40, 22, key="draw_brush")
    canvas = st_canvas(
        stroke_width=brush,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=280,
        width=280,
        drawing_mode="freedraw",
        return_image_data=True,
        key=CANVAS_KEY,
    )
    st.caption("Draw with the mouse or a finger; undo, redo and clear are in the canvas toolbar.")
    return canvas.image_bytes


def layer_source(result: CaptureResult, layer: LayerOutput) -> LayerOutput | None:
    """The captured layer feeding ``layer`` (None for the model input)."""
    name = layer.inputs[0] if layer.inputs else "input"
    return None if name == "input" else result[name]


def show_unit(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput) -> None:
    """The arithmetic behind the clicked unit, and its receptive field on the input."""
    unit = st.session_state.get("draw_unit")
    if not unit or unit[0] not in result:
        return
    name, channel, y, x = unit
    try:
        explained = explain_unit(loaded.model, result, name, channel, y, x)
    except ValueError:  # a unit of another model or input that does not exist here
        del st.session_state["draw_unit"]
        return
    box = receptive_field(loaded.model, name, y, x, tuple(prepared.display.shape[:2]))
    title, close = st.columns([5, 1])
    title.markdown(f"#### Unit {name}[{channel}, {y}, {x}] = {explained.captured:.4f}")
    if close.button("Close", key="draw_unit_close"):
        del st.session_state["draw_unit"]
        st.rerun()
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(
            figures.input_figure(
                prepared.display,
                (box.top, box.left, box.bottom, box.right),
                title=f"receptive field {box.height}×{box.width}",
            ),
            key="draw_unit_rf",
        )
    with right:
        if isinstance(explained, ConvUnit):
            st.markdown(
                f"Input channels {', '.join(map(str, explained.in_channels))} of "
                f"**{explained.source}** under the kernel, the kernel of filter {channel}, "
                "and their element-wise products:"
            )
            for i, ch in enumerate(explained.in_channels[:6]):
                a, b, c = st.columns(3)
                a.plotly_chart(
                    figures.numbers_figure(explained.patch[i], f"patch, channel {ch}"),
                    key=f"u_p{i}",
                )
                b.plotly_chart(
                    figures.numbers_figure(explained.kernel[i], f"kernel [{channel}, {ch}]"),
                    key=f"u_k{i}",
                )
                c.plotly_chart(
                    figures.numbers_figure(explained.products[i], "products"), key=f"u_x{i}"
                )
            if len(explained.in_channels) > 6:
                st.caption(
                    f"… and {len(explained.in_channels) - 6} more input channels "
                    "(all in the sum below)."
                )
            st.markdown(
                f"Σ products = {explained.products.sum():.4f}; + bias {explained.bias:.4f} "
                f"= **{explained.total:.4f}** (captured: {explained.captured:.4f})"
            )
        elif isinstance(explained, PoolUnit):
            st.plotly_chart(
                figures.numbers_figure(
                    explained.window, f"window in {explained.source}, channel {channel}"
                ),
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
                    f"Mean of the window = **{explained.value:.4f}** "
                    f"(captured: {explained.captured:.4f})"
                )


def take_click(key: str, layer: str, event: object, tiling: Tiling) -> None:
    """Make a *new* click on chart ``key`` the clicked unit (older selections stay ignored)."""
    seen: dict[str, str] = st.session_state.setdefault("draw_seen_clicks", {})
    picked = figures.unit_from_selection(event, tiling)
    marker = repr(picked)
    if seen.get(key) == marker:
        return
    seen[key] = marker
    if picked is not None:
        st.session_state["draw_unit"] = (layer, *picked)
        st.rerun()  # draw the explanation under its own map, not under an earlier one


def show_pipeline(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, scale: str
) -> None:
    """Every stage, in execution order: what it computes on the left, its output on the right."""
    about, picture = st.columns([1, 3], gap="medium")
    size = "×".join(map(str, result.input.shape))
    about.markdown(f"**0. input** · {size}")
    about.caption(
        "The digit as the network receives it: cropped to the ink, the longer side scaled to "
        "20 px, centred by its centre of mass, normalised with MNIST's mean and std."
    )
    picture.plotly_chart(
        figures.input_figure(prepared.display, title=f"input · {size}", height=300),
        key="stage_input",
    )
    for index, layer in enumerate(result.layers):
        source = layer_source(result, layer)
        module = loaded.model.get_submodule(layer.module) if layer.module else None
        text = describe_stage(layer, source.shape if source else tuple(result.input.shape), module)
        about, picture = st.columns([1, 3], gap="medium")
        with about:
            shape = " × ".join(map(str, layer.shape))
            st.markdown(f"**{index + 1}. {layer.name}** · {layer.kind}  \n{shape}")
            st.caption(text.caption)
            if text.formula:
                with st.popover("Formula and numbers"):
                    st.markdown(text.formula)
        with picture:
            if layer.kind == "softmax":
                fig = figures.softmax_figure(loaded.categories, result.probs.cpu().numpy())
                st.plotly_chart(fig, key=f"stage_{index}")
            elif len(layer.shape) == 3:
                clickable = layer.kind in {"conv", "pool"}
                mapped = figures.feature_maps_figure(
                    layer, scale=scale, tile_px=110, clickable=clickable
                )
                event = st.plotly_chart(
                    mapped.figure, key=f"stage_{index}", on_select="rerun", selection_mode="points"
                )
                if clickable:
                    take_click(f"stage_{index}", layer.name, event, mapped.tiling)
            else:
                st.plotly_chart(figures.vector_figure(layer), key=f"stage_{index}")
        unit = st.session_state.get("draw_unit")
        if unit and unit[0] == layer.name:
            with st.container(border=True):
                show_unit(loaded, result, prepared)


st.title("Draw a digit")
st.caption(
    "Draw a digit and watch every convolution, ReLU and pooling output light up, "
    "all the way to the softmax."
)

controls, outputs = st.columns([1.3, 2], gap="large")  # the 280-px canvas fits at 1280 px
with controls:
    model_name = (
        st.segmented_control(
            "Model",
            list(DIGIT_MODELS),
            format_func=DIGIT_MODELS.get,
            default="lenet5",
            key="draw_model",
        )
        or "lenet5"
    )
    source = (
        st.segmented_control("Input", ["Draw", "Sample digit"], default="Draw", key="draw_source")
        or "Draw"
    )
    raw = read_input(source)
loaded = cached_model(model_name)

with outputs:
    st.caption(
        f"{loaded.spec.title} · weights {loaded.weights_label} · device {loaded.device_label}"
    )
    prepared: PreparedInput | None = None
    if raw is None:
        st.info("Draw a digit in the black box (white ink), or pick a sample digit.")
    else:
        try:
            prepared = loaded.prepare(raw)
        except NothingDrawn:
            st.info("Nothing drawn yet: draw a digit in the black box, as large as you like.")
        except ImageError as exc:
            st.error(f"That image cannot be read: {exc}")
    if prepared is not None:
        result = loaded.capture(prepared)
        metric, seen, drawn = st.columns(3)
        show_prediction(metric, loaded, result)
        seen.image(
            inline_image(prepared.display),
            caption="what the network sees ({}×{})".format(*prepared.display.shape[:2]),
            width=120,
        )
        drawn.image(
            inline_image(raw if isinstance(raw, bytes) else raw.read_bytes()),
            caption="your drawing" if isinstance(raw, bytes) else "the sample",
            width=120,
        )
        st.plotly_chart(
            figures.softmax_figure(loaded.categories, result.probs.cpu().numpy()),
            key="draw_softmax",
        )

if prepared is not None:
    st.divider()
    scale = st.radio(
        "Colour scale",
        ["layer", "map"],
        horizontal=True,
        key="draw_scale",
        format_func={"layer": "one scale per layer", "map": "one scale per map"}.get,
        help="Diverging blue–white–red centred on 0 where values can be negative (conv); "
        "sequential where they cannot (ReLU, pooling).",
    )
    view = st.segmented_control(
        "View",
        ["The network, stage by stage", "Learned filters"],
        default="The network, stage by stage",
        key="draw_view",
    )
    if view == "Learned filters":
        st.caption("Each conv layer's kernels: a row per filter, a column per input channel.")
        for layer in result.of_kind("conv"):
            weight = loaded.model.get_submodule(layer.module).weight
            st.plotly_chart(
                figures.filters_figure(weight, layer.name, tile_px=60), key=f"filters_{layer.name}"
            )
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
