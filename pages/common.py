"""Helpers shared by the pages: the cached models (one per server, shared by every session)."""

from __future__ import annotations

import base64
import gc
import threading

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer.analysis.capture import CaptureResult
from explorer.figures.colour import png_data_uri
from explorer.models.device import configure_server_threads, heavy_work_slots
from explorer.models.zoo import LoadedModel, load_model

configure_server_threads()
HEAVY_WORK = threading.BoundedSemaphore(heavy_work_slots())
"""Held while a big model runs (Image page captures, own weights): one student's upload
queues behind the class's instead of oversubscribing the cores and the memory."""


def freeze_heap() -> None:
    """Move every object alive now (torch, plotly, the models) out of the GC's reach.

    Python's collector then never walks them again: after each rerun only the objects the
    run made are scanned, instead of the whole heap (hundreds of milliseconds a rerun with
    Streamlit's post-run ``gc.collect(2)``, tens with the automatic collections).
    """
    gc.collect()
    gc.freeze()


@st.cache_resource(show_spinner="Loading the model…")
def cached_model(name: str, weights: str | None = None) -> LoadedModel:
    """One copy of each zoo model per server process (read-only after loading)."""
    loaded = load_model(name, weights)
    freeze_heap()
    return loaded


TRAINED_KEY = "trained_model"
"""Session state: the model this session trained and chose to use (a ``LoadedModel``)."""


def digit_model(name: str) -> LoadedModel:
    """A digit model by its menu key: the zoo's, or the one this session trained."""
    trained = st.session_state.get(TRAINED_KEY)
    if name == TRAINED_KEY and isinstance(trained, LoadedModel):
        return trained
    return cached_model(name if name != TRAINED_KEY else "lenet5")


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


def inline_image(image: np.ndarray | bytes) -> str:
    """An image for ``st.image`` as a data URI, sent inside the page.

    ``st.image`` keeps an array or bytes as a media file that the next rerun deletes; a
    browser still fetching the old file then gets a 404 (quick reruns: a drawing, uploads).
    """
    if isinstance(image, np.ndarray):
        return png_data_uri(image)
    mime = "image/jpeg" if image[:2] == b"\xff\xd8" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
