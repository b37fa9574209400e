"""Helpers shared by the pages: the cached models (one per server, shared by every session)."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.capture import CaptureResult
from explorer.zoo import LoadedModel, load_model


@st.cache_resource(show_spinner="Loading the model…")
def cached_model(name: str, weights: str | None = None) -> LoadedModel:
    """One copy of each zoo model per server process (read-only after loading)."""
    return load_model(name, weights)


def show_prediction(container: DeltaGenerator, loaded: LoadedModel, result: CaptureResult) -> None:
    """The top class as a **Prediction** metric, its probability beneath it."""
    best, prob = result.top(1)[0]
    container.metric(
        "Prediction",
        loaded.categories[best],
        f"{prob:.1%} probability",
        delta_color="off",
        delta_arrow="off",
        help="The largest softmax probability. The digit nets were trained with label "
        "smoothing, so even a clear digit gets about 92–95 %, not 100 %."
        if loaded.spec.family == "digit"
        else "The largest softmax probability.",
    )
