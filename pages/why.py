"""The "Why this class?" view, laid out for the Draw and Image pages."""

from __future__ import annotations

import streamlit as st

from explorer.analysis.attribution import (
    BASELINES,
    METHODS,
    AttributionError,
    Settings,
    cam_layers,
)
from explorer.analysis.capture import CaptureResult
from explorer.hosting.scheduler import OverBudget
from explorer.inputs.preprocess import PreparedInput
from explorer.models.zoo import LoadedModel
from explorer.views.attribution import (
    DEFAULT_OPACITY,
    DELETED_FRACTION,
    WhyView,
    class_choices,
    method_labels,
    why_job,
)
from pages.common import run_job

AUTO_LAYER = "last conv block (auto)"


def read_settings(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, key: str
) -> Settings:
    """Method, class and the method's own settings, from the widgets above the map."""
    method_column, class_column, layer_column = st.columns(3)
    labels = method_labels()
    method = method_column.selectbox(
        "Method", list(labels), format_func=labels.__getitem__, key=f"{key}_why_method"
    )
    choices = class_choices(loaded, result)
    target = class_column.selectbox(
        "Class",
        list(choices),
        format_func=choices.__getitem__,
        key=f"{key}_why_class_{loaded.name}",
    )
    settings = Settings(str(method), int(target))
    family = METHODS[str(method)].family
    with layer_column:
        if family == "cam":
            layers = [AUTO_LAYER, *cam_layers(loaded.model)]
            layer = st.selectbox("Layer", layers, key=f"{key}_why_layer_{loaded.name}")
            settings = Settings(
                str(method), int(target), layer=None if layer == AUTO_LAYER else layer
            )
        elif method == "integrated_gradients":
            steps = st.slider("Steps", 8, 128, 32, 8, key=f"{key}_why_steps")
            baseline = st.radio(
                "Baseline", BASELINES, horizontal=True, key=f"{key}_why_baseline",
                help="black: every pixel 0 before normalisation · zero: the all-zero tensor "
                "(the data set's mean colour for a normalised model)",
            )  # fmt: skip
            settings = Settings(str(method), int(target), steps=steps, baseline=str(baseline))
        elif method == "smoothgrad":
            samples = st.slider("Noisy copies", 4, 64, 16, 4, key=f"{key}_why_samples")
            noise = st.slider("Noise σ (fraction of the range)", 0.05, 0.5, 0.15, 0.05,
                              key=f"{key}_why_noise")  # fmt: skip
            settings = Settings(str(method), int(target), samples=samples, noise=noise)
        elif method == "occlusion":
            settings = occlusion_settings(settings, prepared, key)
    return settings


def occlusion_settings(settings: Settings, prepared: PreparedInput, key: str) -> Settings:
    """Occlusion's window and stride, in input pixels (bounded by the input's size).

    The stride starts at the window (no overlap): 49 passes at 224×224, which fit the heavy-work
    budget on every zoo model (VGG-16 with half-window strides, 173 passes, does not).
    """
    side = int(min(prepared.tensor.shape[-2:]))
    default_window = max(1, min(32, side // 4))
    window = st.slider("Window (px)", 1, side, default_window, key=f"{key}_why_window")
    stride = st.slider("Stride (px)", 1, side, window, key=f"{key}_why_stride")
    return Settings(settings.method, settings.target, window=window, stride=stride)


def show_why(loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, key: str) -> None:
    """The view: settings, the map over the input, its caption, formula and faithfulness."""
    st.caption(
        "Which part of the input made the network choose a class: pick a method and any "
        "class, not only the top one."
    )
    settings = read_settings(loaded, result, prepared, key)
    method = METHODS[settings.method]
    view = answer(loaded, result, prepared, settings)
    if view is None:
        return
    picture, about = st.columns([3, 2], gap="medium")
    with about:
        opacity = st.slider(
            "Map opacity", 0.0, 1.0, DEFAULT_OPACITY, 0.05, key=f"{key}_why_opacity"
        )
        st.markdown(f"**{method.label}** · {view.caption}")
        st.metric(
            f"p({view.label}) with the top {DELETED_FRACTION:.0%} hidden",
            f"{view.after:.1%}",
            f"{(view.after - view.before) * 100:+.1f} points from {view.before:.1%}",
            delta_color="off",
            help=view.deletion_text,
        )
        with st.popover("Formula and numbers"):
            st.markdown(method.formula)
            values = view.attribution.values
            st.markdown(
                f"Map {values.shape[0]}×{values.shape[1]}, min {values.min():.4g}, "
                f"max {values.max():.4g}, sum {values.sum():.4g}; colour scale {view.scale.label}."
            )
    picture.plotly_chart(view.figure(prepared.display, opacity), key=f"{key}_why_map")


def answer(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, settings: Settings
) -> WhyView | None:
    """The map from the heavy-work scheduler (in line, with progress), or None and why."""
    label = METHODS[settings.method].label
    try:
        found: WhyView = run_job(why_job(loaded, prepared, settings, result), label)
    except OverBudget as exc:
        st.warning(f"Not computed: {exc}", icon="⏱️")
        return None
    except AttributionError as exc:
        st.warning(f"Cannot compute this map: {exc}")
        return None
    return found
