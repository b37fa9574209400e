"""Convolution lab: every concept of a CNN computed live on your own input, with its numbers."""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from explorer.figures.colour import ColourScale, colour_scale
from explorer.figures.describe import describe_map, number_text
from explorer.figures.style import SELECTED_COLOUR, shape_text
from explorer.inputs.preprocess import MAX_PHOTO_UPLOAD_MB, ImageError, NothingDrawn
from explorer.inputs.samples import digit_samples
from explorer.inputs.strokes import DrawingError, parse_drawing, render_drawing
from explorer.lab import figures as lf
from explorer.lab import maths
from explorer.views import lab as lab_view
from explorer.views.lab import (
    ACTIVATION_LABELS,
    ConvSettings,
    ValueTable,
    drawn_input,
    named_input,
    uploaded_input,
)
from pages.canvas import drawing_canvas
from pages.common import index_slider
from pages.links import finish_view_link, start_view_link
from pages.motion import reduced_motion

VIEWS = ["2-D convolution", "Activation & pooling", "Pipeline", "1-D convolution"]
INPUTS = ["7×7 square", "5×5 binary", "Sample digit", "Draw a digit", "Photo", "Upload an image"]
CUSTOM = "custom (edit below)"
DEFAULT_KERNEL = "box blur (1/9)"  # the 7×7 square's kernel
LINKED_TEXT_CHARS = 300  # a 1-D signal or kernel typed, or from a link: a few dozen numbers

CHANNELS = {
    "gray": "grayscale",
    "red": "red channel",
    "green": "green channel",
    "blue": "blue channel",
    "rgb": "RGB, depth 3",
}
BOUNDARY_HELP = (
    "What the padding holds, for a row a b c d:  \n"
    "**zero** 0 0 | a b c d | 0 0 · **reflect** b a | a b c d | d c (scipy's default) · "
    "**mirror** c b | a b c d | c b (torch's 'reflect') · **nearest** a a | a b c d | d d · "
    "**wrap** c d | a b c d | a b"
)
PLAY_SECONDS = 0.8
# What suits each input when it is picked: (kernel, padding).
INPUT_DEFAULTS = {
    "7×7 square": ("box blur (1/9)", "valid"),
    "5×5 binary": ("X (teaching)", "valid"),
}
N = functools.partial(number_text, decimals=maths.DECIMALS)


def on_input_change() -> None:
    """Pick the kernel and padding that the chosen teaching example is known for."""
    kernel, padding = INPUT_DEFAULTS.get(
        st.session_state["lab_input"], ("edge: outline (8-centre)", "same")
    )
    st.session_state["lab_kernel"] = kernel
    st.session_state["lab_padding"] = padding


def read_input() -> np.ndarray | None:
    """The sidebar's input as float pixels in 0…1: ``(H, W)``, or ``(3, H, W)`` for RGB."""
    name = st.selectbox(
        "Input", INPUTS, key="lab_input", bind="query-params", on_change=on_input_change
    )
    if name == "Sample digit":
        samples = digit_samples()
        label = st.selectbox(
            "Sample digit (real MNIST)", list(samples), key="lab_digit", bind="query-params"
        )
        return named_input(name, str(label))
    if name == "Draw a digit":
        return read_drawing()
    if name in ("Photo", "Upload an image"):
        return read_photo(name)
    return named_input(name)


def read_drawing() -> np.ndarray | None:
    """The lab's canvas, laid out 28×28 like MNIST; None (with a message) until it reads."""
    value = drawing_canvas("lab_canvas", size=224, brush=18, live=False)
    if value is None:
        st.info("Draw a digit (white on black); it is laid out 28×28 like MNIST.")
        return None
    try:
        return drawn_input(render_drawing(parse_drawing(value)))
    except NothingDrawn:  # an ImageError: caught first
        st.info("Nothing drawn yet: draw a digit in the black box.")
    except (DrawingError, ImageError) as exc:
        st.error(f"That drawing cannot be read: {exc}")
    return None


def read_photo(name: str) -> np.ndarray | None:
    """The shipped photo or an upload, in the channel chosen; None (with a message) if none."""
    channel = st.radio(
        "Channel",
        list(CHANNELS),
        format_func=CHANNELS.get,
        key="lab_channel",
        bind="query-params",
        horizontal=True,
        help="RGB, depth 3: the kernel gets the input's depth (3 × kh × kw, the same 2-D "
        "kernel on every channel) and the products of all three channels are summed into "
        "**one** output map.",
    )
    if name == "Photo":
        return named_input(name, channel=str(channel))
    upload = st.file_uploader(
        "An image (PNG, JPEG, WebP, …); the longer side is shrunk to 300 px",
        type=None,
        key="lab_upload",
        max_upload_size=MAX_PHOTO_UPLOAD_MB,
    )
    if upload is None:
        st.info("Upload an image, or pick the photo.")
        return None
    try:
        return uploaded_input(upload.getvalue(), str(channel))
    except ImageError as exc:
        st.error(f"That image cannot be read: {exc}")
        return None


def read_kernel() -> np.ndarray:
    """The chosen preset or custom kernel, as edited in the kernel table."""
    names = [*maths.KERNELS, CUSTOM]
    # The widget's own default: one set in session state instead would win over a link to
    # the first option, which Streamlit drops from the URL as the widget's default.
    preset = st.selectbox(
        "Kernel",
        names,
        index=names.index(DEFAULT_KERNEL),
        key="lab_kernel",
        bind="query-params",
    )
    if preset == CUSTOM:
        size = st.segmented_control(
            "Kernel size",
            [3, 5, 7],
            default=3,
            key="lab_kernel_size",
            bind="query-params",
            format_func=lambda k: f"{k}×{k}",
        )
        start = maths.identity_kernel(size or 3)
    else:
        start = np.array(maths.KERNELS[preset])
    slug = hashlib.sha1(f"{preset}-{start.shape}".encode()).hexdigest()[:8]
    columns = {
        str(c): st.column_config.NumberColumn(str(c), format="%.4g", width=48, required=True)
        for c in range(start.shape[1])
    }
    edited = st.data_editor(
        pd.DataFrame(start, columns=[str(c) for c in range(start.shape[1])]),
        key=f"lab_kernel_editor_{slug}",
        column_config=columns,
        hide_index=True,
        width="content",
    )
    kernel: np.ndarray = np.nan_to_num(edited.to_numpy(dtype=np.float64), nan=0.0)
    st.caption("Click a cell to edit the kernel. " + shape_text(kernel.shape) + " kernel.")
    return kernel


def read_settings() -> ConvSettings:
    """Bias, stride, padding and boundary from the sidebar."""
    bias = st.number_input(
        "Bias", -10.0, 10.0, 0.0, 0.1, format="%.4f", key="lab_bias", bind="query-params"
    )
    stride = st.slider("Stride", 1, 4, 1, key="lab_stride", bind="query-params")
    padding_mode = st.selectbox(
        "Padding",
        ["valid", "same", "full", "number"],
        key="lab_padding",
        bind="query-params",
        help="valid: none · same: the output keeps ⌈W / S⌉ pixels (TensorFlow / PyTorch: the "
        "odd pixel goes right / bottom) · full: F − 1 each side · number: that many each side",
    )
    padding: maths.PaddingSetting = str(padding_mode)
    if padding_mode == "number":
        padding = int(
            st.number_input(
                "Padding (pixels each side)", 0, 10, 1, key="lab_pad_pixels", bind="query-params"
            )
        )
    boundary = st.selectbox(
        "Boundary fill",
        maths.BOUNDARIES,
        key="lab_boundary",
        bind="query-params",
        help=BOUNDARY_HELP,
        disabled=padding in ("valid", 0),
    )
    return ConvSettings(float(bias), int(stride), padding, str(boundary))


# --- the views -------------------------------------------------------------------------------


def map_height(values: np.ndarray) -> int:
    """Taller figures for photo-sized maps, so their detail is visible."""
    return 460 if max(values.shape[-2:]) > lf.ROBUST_FROM else 340


def show_output_size(result: maths.Conv2dResult) -> None:
    """The output's size, with the formula filled in for rows and columns."""
    rows, cols = result.formulas()
    h, w = result.output.shape
    st.markdown(f"**Output size** → **{h} × {w}**  \nrows: {rows}  \ncolumns: {cols}")


def step_position(rows: int, cols: int, playing: bool) -> tuple[int, int]:
    """Row and column sliders (clamped to the current output); advanced one step when playing."""
    row = min(int(st.session_state.get("lab_row", 0)), rows - 1)
    col = min(int(st.session_state.get("lab_col", 0)), cols - 1)
    if playing and st.session_state.get("lab_played") is not None:
        index = (row * cols + col + 1) % (rows * cols)
        row, col = divmod(index, cols)
    st.session_state["lab_played"] = True if playing else None
    st.session_state["lab_row"], st.session_state["lab_col"] = row, col
    left, right = st.columns(2)
    with left:
        row = index_slider("Output row", rows, "lab_row", bind=True)
    with right:
        col = index_slider("Output column", cols, "lab_col", bind=True)
    return row, col


def step_through(result: maths.Conv2dResult, kind: lf.Kind, playing: bool) -> None:
    """Pick an output position: its patch on the input, the kernel, the products, the sum."""
    rows, cols = result.output.shape
    row, col = step_position(rows, cols, playing)
    step = result.step(row, col)
    kh, kw = result.kernel.shape[1:]
    patch_box = lf.Outline(step.top, step.left, step.top + kh, step.left + kw)
    depth = len(result.padded)
    pictures = st.columns(2)
    padded_title = f"input, {lf.pad_text(result.pad)}"
    height = 460 if max(result.padded.shape[1:]) > lf.MAX_WRITTEN else 380
    pictures[0].plotly_chart(
        lf.padded_input_figure(
            result.padded[0],
            result.pad,
            patch_box,
            padded_title + (" · channel 0" if depth > 1 else ""),
            kind,
            height,
        ),
        key="lab_step_input",
    )
    pictures[1].plotly_chart(
        lf.output_figure(result.output, (row, col), "output (feature map)", height=height),
        key="lab_step_output",
    )
    pictures[1].caption(describe_map(result.output, "output"))  # the map's text alternative
    for channel in range(depth):
        named = f", channel {channel}" if depth > 1 else ""
        a, b, c = st.columns(3)
        a.plotly_chart(
            lf.grid_figure(step.patch[channel], f"patch{named}", kind, numbers=True, height=250),
            key=f"lab_step_patch_{channel}",
        )
        b.plotly_chart(
            lf.kernel_figure(step.kernel[channel], f"kernel{named}", 250),
            key=f"lab_step_kernel_{channel}",
        )
        c.plotly_chart(
            lf.grid_figure(
                step.products[channel], f"products{named}", "signed", numbers=True, height=250
            ),
            key=f"lab_step_products_{channel}",
        )
    st.markdown(
        f"**output[{row}, {col}]** = Σ products + bias = {N(step.total)} + {N(step.bias)} "
        f"= **{N(step.value)}**"
    )
    equation = step.equation()
    if equation:
        st.caption(f"Σ products = {equation}")
    st.caption(
        f"The patch starts at input row {step.top}, column {step.left} "
        f"(negative or past the edge: the padding); the kernel moves {result.stride[0]} "
        "pixel(s) per output step."
    )


def show_flip(
    image: np.ndarray, kernel: np.ndarray, settings: ConvSettings, corr: np.ndarray
) -> None:
    """Cross-correlation (what CNNs compute) next to true convolution (flipped kernel)."""
    flip = lab_view.flip_view(image, kernel, settings, corr)
    conv, difference = flip.convolution, flip.difference
    if flip.symmetric:
        st.success("This kernel looks the same turned by 180°: both give the same map.")
    else:
        r, c = flip.worst_at
        st.warning(
            f"The flipped kernel differs: the maps differ by up to {N(flip.worst)} "
            f"(at row {r}, column {c}). np.convolve and scipy.ndimage.convolve give the "
            "flipped map."
        )
    k_col, flip_col, conv_col, d = st.columns([1, 1, 2, 2])
    k_col.plotly_chart(lf.kernel_figure(kernel, "kernel (CNN)", 240), key="lab_flip_kernel")
    flip_col.plotly_chart(lf.kernel_figure(conv.kernel[0], "flipped", 240), key="lab_flip_flipped")
    conv_col.plotly_chart(
        lf.grid_figure(conv.output, "convolution (flipped)", "signed", scale=flip.scale),
        key="lab_flip_conv",
    )
    d.plotly_chart(
        lf.grid_figure(difference, "cross-correlation − convolution", "signed"), key="lab_flip_diff"
    )


def view_convolution(image: np.ndarray, kernel: np.ndarray, settings: ConvSettings) -> None:
    """2-D convolution: the output size, the map, one output step by step, the flipped kernel."""
    st.caption(
        "The kernel slides over the (padded) input by the stride; at each stop the element-wise "
        "products are summed, plus the bias, into one output value."
    )
    result = settings.correlate(image, kernel)
    kind = lab_view.input_kind(image)
    show_output_size(result)
    with st.expander("Formula and numbers"):
        st.markdown(lab_view.output_size_text())
        st.markdown(
            f"Output values ({shape_text(result.output.shape)}), "
            f"rounded to {maths.DECIMALS} decimals:"
        )
        st.dataframe(pd.DataFrame(np.round(result.output, maths.DECIMALS)), key="lab_output_table")
    if reduced_motion("lab_motion"):  # no animation: the sliders step, one position at a time
        playing = False
        st.caption(
            "Your browser asks for reduced motion, so ▶ Play is off: choose an output position "
            "with the sliders to step the kernel over the input."
        )
    else:
        play_column, about = st.columns([1, 4])
        playing = play_column.toggle(
            "▶ Play", key="lab_play", help="Slide the kernel over the input, one output at a time."
        )
        about.caption("Choose an output position, or press play to watch the kernel slide.")
    st.fragment(step_through, run_every=PLAY_SECONDS if playing else None)(result, kind, playing)
    st.divider()
    if st.toggle(
        "Compare with true convolution (flipped kernel)", key="lab_flip", bind="query-params"
    ):
        st.caption(
            "A CNN layer computes cross-correlation: the kernel is laid on the patch as it is. "
            "Convolution in maths, np.convolve and scipy.ndimage.convolve turn the kernel by 180° "
            "first. Training learns the kernel either way, but the numbers differ."
        )
        show_flip(image, kernel, settings, result.output)


def pool_unit(pooled: maths.Pool2dResult, scale: ColourScale, kind: lf.Kind) -> None:
    """One pooled value: its window on the activated map and, for max pooling, the winner."""
    rows, cols = pooled.output.shape
    left, right = st.columns(2)
    with left:
        row = index_slider("Pooled row", rows, "lab_pool_row", bind=True)
    with right:
        col = index_slider("Pooled column", cols, "lab_pool_col", bind=True)
    window = pooled.window(row, col)
    box = lf.Outline(window.top, window.left, window.top + pooled.size, window.left + pooled.size)
    a, b, c = st.columns([5, 3, 5])
    a.plotly_chart(
        lf.pool_input_figure(
            pooled.input, box, window.winner, "activated map", scale, kind, map_height(pooled.input)
        ),
        key="lab_pool_input",
    )
    b.plotly_chart(
        lf.grid_figure(
            window.values, "window", kind, scale=scale, numbers=True, height=260, show_scale=False
        ),
        key="lab_pool_window",
    )
    selected = lf.Outline(row, col, row + 1, col + 1, SELECTED_COLOUR, "solid", False)
    c.plotly_chart(
        lf.grid_figure(pooled.output, f"{pooled.mode} pooled", kind, scale=scale, boxes=[selected]),
        key="lab_pool_output",
    )
    c.caption(lab_view.pooled_description(pooled))  # the pooled map's text alternative
    st.markdown(lab_view.pooled_value_text(window, pooled.mode))


def show_activation(shown: lab_view.ActivationView) -> None:
    """The map before and after the activation, on one scale, so what it changes is visible."""
    conv, shared = shown.before, shown.scale
    left, right = st.columns(2)
    left.plotly_chart(
        lf.grid_figure(
            conv, "before: conv output", shown.kind, scale=shared, height=map_height(conv)
        ),
        key="lab_act_before",
    )
    right.plotly_chart(
        lf.grid_figure(shown.after, f"after: {shown.label}", shown.kind, scale=shared),
        key="lab_act_after",
    )
    before_text, after_text = shown.descriptions()
    left.caption(before_text)  # the maps' text alternatives
    right.caption(after_text)
    st.caption(
        f"Same colour scale on both ({shared.label}"
        + (", colours saturate beyond it" if shown.robust else "")
        + "). "
        f"{shown.negatives} of {conv.size} values were negative."
    )


def view_pooling(image: np.ndarray, kernel: np.ndarray, settings: ConvSettings) -> None:
    """The convolution's map through an activation, then pooled, one window at a time."""
    st.caption(
        "The feature map of the sidebar's convolution, through an activation (element-wise), "
        "then pooled: each window of the map becomes one number."
    )
    conv = settings.correlate(image, kernel).output
    a, b, c, d, e = st.columns(5)
    activation = a.selectbox(
        "Activation",
        maths.ACTIVATIONS,
        index=1,
        key="lab_activation",
        bind="query-params",
        format_func=ACTIVATION_LABELS.__getitem__,
    )
    slope = 0.1
    if activation == "leaky_relu":
        slope = float(
            a.number_input(
                "Negative slope", 0.0, 1.0, 0.1, 0.01, key="lab_leaky_slope", bind="query-params"
            )
        )
    mode = b.selectbox("Pooling", maths.POOL_MODES, key="lab_pool_mode", bind="query-params")
    size = c.slider("Window", 1, 4, 2, key="lab_pool_size", bind="query-params")
    stride = d.slider("Pool stride", 1, 4, 2, key="lab_pool_stride", bind="query-params")
    shown = lab_view.activation_view(conv, str(activation), slope)
    e.markdown(f"`{shown.formula}`")
    show_activation(shown)
    kind, shared = shown.kind, shown.scale
    try:
        pooled = maths.pool2d(shown.after, int(size), int(stride), str(mode))
    except ValueError as exc:
        st.warning(f"Cannot pool: {exc}")
        return
    rows, cols = pooled.formulas()
    st.markdown(
        f"**Pooled size** → **{shape_text(pooled.output.shape)}**  \n"
        f"rows: {rows}  \ncolumns: {cols}"
    )
    st.caption(
        "Pooling has no weights and works on each map separately; partial windows are dropped."
    )
    st.fragment(pool_unit)(pooled, shared, kind)


def view_pipeline() -> None:
    """The classic pipeline on the photo: conv → ReLU → max-pool, each map with its shape."""
    shown = lab_view.pipeline()
    image, conv, rectified, pooled = shown.image, shown.conv, shown.rectified, shown.pooled
    st.caption(
        f"The classic pipeline on a {'×'.join(map(str, image.shape))} grayscale photo: convolve "
        "with the 8-centre edge kernel (SAME padding) → ReLU → 2×2 max-pool, stride 2."
    )
    shapes = " → ".join(shape_text(a.shape) for a in (image, conv, rectified, pooled))
    st.markdown(f"**Shapes** {shapes}")
    with st.expander("Formula and numbers"):
        st.markdown(
            f"conv: {shown.conv_formula} (SAME: P = {shown.pad})  \n"
            "ReLU: element-wise, shape unchanged  \n"
            f"max-pool: {shown.pool_formula}"
        )
        st.dataframe(pd.DataFrame(maths.KERNELS[shown.kernel]), key="lab_pipeline_kernel")
        st.markdown(
            f"{shown.negatives} of {conv.size} conv outputs are negative; ReLU sets them to 0. "
            f"Largest edge response {N(float(conv.max()))}."
        )
    positive = colour_scale(rectified, False)
    described = shown.descriptions()  # the four maps' text alternatives
    top = st.columns(2)
    top[0].plotly_chart(
        lf.grid_figure(image, "1. input (grayscale)", "pixels", height=460), key="lab_pipe_input"
    )
    top[0].caption(described[0])
    top[1].plotly_chart(
        lf.grid_figure(conv, "2. conv 8-centre edge, SAME", "signed", height=460),
        key="lab_pipe_conv",
    )
    top[1].caption(described[1])
    bottom = st.columns(2)
    bottom[0].plotly_chart(
        lf.grid_figure(rectified, "3. ReLU", "nonnegative", scale=positive, height=460),
        key="lab_pipe_relu",
    )
    bottom[0].caption(described[2])
    bottom[1].plotly_chart(
        lf.grid_figure(
            pooled, "4. max-pool 2×2, stride 2", "nonnegative", scale=positive, height=460
        ),
        key="lab_pipe_pool",
    )
    bottom[1].caption(described[3])


def table_frame(table: ValueTable) -> pd.DataFrame:
    """A :class:`ValueTable` as the data frame ``st.dataframe`` shows."""
    return pd.DataFrame.from_dict(table.rows, orient="index", columns=table.columns)


def view_1d() -> None:
    """A 1-D signal through np.convolve's modes and scipy.ndimage's boundary modes."""
    st.caption(
        "A signal smoothed by a 1-D kernel: np.convolve's modes decide how much padding (and so "
        "how many outputs); scipy.ndimage's boundary modes decide what the padding holds."
    )
    a, b = st.columns(2)
    signal_text = a.text_input(
        "Signal",
        "0 0 0 0 0 1 1 1 1 1",
        max_chars=LINKED_TEXT_CHARS,
        key="lab_1d_signal",
        bind="query-params",
    )
    kernel_text = b.text_input(
        "Kernel (fractions allowed)",
        "1/3, 1/3, 1/3",
        max_chars=LINKED_TEXT_CHARS,
        key="lab_1d_kernel",
        bind="query-params",
    )
    try:
        view = lab_view.one_d_view(signal_text, kernel_text)
    except ValueError as exc:
        st.error(f"Cannot convolve: {exc}")
        return
    show_numpy_modes(view)
    st.markdown("##### scipy.ndimage.convolve: what the padding holds")
    if view.bounded is None or view.padded is None:
        st.info("scipy's boundary modes centre the kernel: give it an odd number of values.")
        return
    show_boundary_modes(view)


def show_numpy_modes(view: lab_view.OneDView) -> None:
    """np.convolve's three modes: the outputs over the signal, their counts, their values."""
    m, n = len(view.signal), len(view.kernel)
    signal_xy = (np.arange(m), view.signal)
    st.plotly_chart(
        lf.signal_figure(
            signal_xy,
            {
                f"np.convolve {mode}": (view.positions[mode], view.modes[mode])
                for mode in view.modes
            },
            f"<b>np.convolve</b> · signal {m} values (gray), kernel {n}",
        ),
        key="lab_1d_numpy",
    )
    st.caption(view.numpy_description())  # the chart's text alternative
    st.markdown(
        f"full: {m} + {n} − 1 = **{len(view.modes['full'])}** outputs "
        f"({n - 1} zeros each side) · same: **{len(view.modes['same'])}** · "
        f"valid: {m} − {n} + 1 = **{len(view.modes['valid'])}**"
    )
    st.dataframe(table_frame(view.numpy_table()), key="lab_1d_numpy_table")
    st.caption(
        "Columns: the position in the signal each output is centred on."
        if view.aligned
        else "Columns: output index (an even kernel has no centre)."
    )


def show_boundary_modes(view: lab_view.OneDView) -> None:
    """scipy.ndimage.convolve in every boundary mode, and what each pads the signal with."""
    bounded = view.bounded or {}
    positions = np.arange(len(view.signal))
    st.plotly_chart(
        lf.signal_figure(
            (positions, view.signal),
            {f"mode='{name}'": (positions, values) for name, values in bounded.items()},
            f"<b>scipy.ndimage.convolve</b> · {len(view.signal)} outputs in every mode",
        ),
        key="lab_1d_scipy",
    )
    st.caption(view.scipy_description())  # the chart's text alternative
    st.dataframe(table_frame(view.scipy_table()), key="lab_1d_scipy_table")
    with st.expander("What each mode pads with"):
        st.dataframe(table_frame(view.padded_table()), key="lab_1d_padded_table")
        st.caption(
            f"{view.half} value(s) added each side; the kernel then slides over the padded signal."
        )


# --- the page --------------------------------------------------------------------------------


st.title("Convolution lab")
st.caption(
    "Every idea of a CNN — convolution, kernel, stride, padding, activation, pooling, output "
    "size — computed live on your input, as pictures and as numbers."
)
view_link = start_view_link("lab")


with st.sidebar:
    st.subheader("Input")
    image = read_input()
    st.subheader("Convolution")
    kernel = read_kernel()
    settings = read_settings()

view = (
    st.segmented_control("View", VIEWS, default=VIEWS[0], key="lab_view", bind="query-params")
    or VIEWS[0]
)
if view in VIEWS[:2]:
    if image is None:
        st.info("Choose an input in the sidebar.")
    else:
        st.caption(f"Input {shape_text(image.shape)} · kernel {shape_text(kernel.shape)}")
        try:
            if view == VIEWS[0]:
                view_convolution(image, kernel, settings)
            else:
                view_pooling(image, kernel, settings)
        except ValueError as exc:
            st.warning(f"These settings do not fit: {exc}. Pad the input or pick a smaller kernel.")
elif view == VIEWS[2]:
    view_pipeline()
else:
    view_1d()
finish_view_link(
    view_link,
    lab_view.link_note(
        str(st.session_state.get("lab_input")), str(st.session_state.get("lab_kernel")), kernel
    ),
)
