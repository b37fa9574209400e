"""The "Why this class?" view, laid out for the Draw and Image pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explorer.analysis.attribution import (
    AUTO_LAYER,
    KNOBS,
    LAYER_LABEL,
    METHOD_SETTINGS,
    METHODS,
    AttributionError,
    Settings,
    cam_layers,
    start_value,
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
    input_side,
    method_labels,
    why_job,
)
from pages.common import run_job


def read_settings(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, key: str
) -> Settings:
    """Method, class and the method's own settings, from the widgets above the map."""
    method_column, class_column, layer_column = st.columns(3)
    labels = method_labels()
    method = method_column.selectbox(
        "Method",
        list(labels),
        format_func=labels.__getitem__,
        key=f"{key}_why_method",
        bind="query-params",
    )
    choices = class_choices(loaded, result)
    target = class_column.selectbox(
        "Class",
        list(choices),
        format_func=choices.__getitem__,
        key=f"{key}_why_class_{loaded.name}",
        bind="query-params",
    )
    chosen: dict[str, Any] = {}
    with layer_column:
        for name in METHOD_SETTINGS.get(str(method), ()):
            chosen[name] = read_setting(name, loaded, input_side(prepared), chosen, key)
    return Settings(str(method), int(target), **chosen)


def read_setting(
    name: str, loaded: LoadedModel, side: int, chosen: dict[str, Any], key: str
) -> Any:
    """One setting's widget (:data:`~explorer.analysis.attribution.KNOBS`), and its value."""
    if name == "layer":
        layers = [AUTO_LAYER, *cam_layers(loaded.model)]
        layer = st.selectbox(
            LAYER_LABEL, layers, key=f"{key}_why_layer_{loaded.name}", bind="query-params"
        )
        return None if layer == AUTO_LAYER else layer
    knob = KNOBS[name]
    if knob.choices:
        picked = st.radio(
            knob.label,
            knob.choices,
            horizontal=True,
            key=f"{key}_why_{name}",
            bind="query-params",
            help=knob.details,
        )
        return str(picked)
    low, high = knob.bounds(side)
    start = start_value(name, side, chosen)
    return st.slider(
        knob.label, low, high, start, knob.step, key=f"{key}_why_{name}", bind="query-params"
    )


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
            "Map opacity",
            0.0,
            1.0,
            DEFAULT_OPACITY,
            0.05,
            key=f"{key}_why_opacity",
            bind="query-params",
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
    picture.caption(view.description(opacity))  # the overlay's text alternative


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
