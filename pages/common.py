"""Helpers shared by the pages: the cached models (one per server, shared by every session)."""

from __future__ import annotations

import base64
import gc
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from explorer.analysis.capture import CaptureResult
from explorer.figures.colour import png_data_uri
from explorer.figures.style import GRID_COLOUR, TEXT_COLOUR
from explorer.hosting.addresses import PREDICTION_LABEL
from explorer.hosting.scheduler import Job, JobCancelled, Status, Ticket, default_scheduler
from explorer.models.zoo import Family, LoadedModel, load_model

POLL_S = 0.25
"""How often a waiting page updates its place in line (and notices a closed tab)."""


def session_id() -> str:
    """This browser session's id (one heavy job at a time per id)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def run_job(job: Job, label: str, watch: Callable[[], None] | None = None) -> Any:
    """Submit ``job`` for this session to the heavy-work scheduler and wait for its answer.

    While it waits the page shows its place in line, then its progress. A closed tab cancels
    it, and so does Streamlit's Stop once the job's grace period passes; a rerun that submits
    the same job again finds it still running; a new job from this session replaces it.

    Args:
        job: The work.
        label: What it is, for the progress bar ("Training").
        watch: Called at every poll while it waits, below the progress bar (a live view).

    Raises:
        explorer.hosting.scheduler.OverBudget: The job would take longer than the budget.
        Exception: Whatever the job raised (e.g. ``AttributionError``).
    """
    session = session_id()
    with default_scheduler().submit(session, job) as ticket:
        if not ticket.done():
            _wait(ticket, label, session, watch)
        try:
            return ticket.result()
        except JobCancelled:
            st.info(f"{label}: stopped.")
            st.stop()


def _status_text(label: str, status: Status) -> str:
    if status.state == "queued":
        ahead = f" ({status.running} running)" if status.running else ""
        return f"{label}: number {status.place} in line{ahead}"
    return f"{label}: {status.progress:.0%}"


def _session_open(session: str) -> bool:
    return not Runtime.exists() or Runtime.instance().is_active_session(session)


def _wait(
    ticket: Ticket, label: str, session: str, watch: Callable[[], None] | None = None
) -> None:
    """Show the ticket's place in line, then its progress, until its answer is there."""
    box = st.empty()
    try:
        while not ticket.wait(POLL_S):
            if not _session_open(session):  # the tab was closed: nobody will see the answer
                default_scheduler().cancel_session(session)
                return
            status = ticket.status()
            box.progress(status.progress, text=_status_text(label, status))
            if watch is not None:
                watch()
    except StopException:
        # Streamlit's Stop, or a rerun that replaces this run (a widget touched while it
        # waits, delivered as a stop here): let go, not cancel. The run that follows may
        # submit the same job and find it still running; if none does, the scheduler
        # cancels it once nobody has waited for it for its grace period.
        ticket.release()
        raise
    box.empty()


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
    """One copy of each zoo model per server process (read-only after loading).

    The models are the one thing kept here; everything computed from them is kept by
    :mod:`explorer.views.cache`'s policy.
    """
    loaded = load_model(name, weights)
    freeze_heap()
    return loaded


TRAINED_KEY = "trained_model"
"""Session state: the model this session trained and chose to use (a ``LoadedModel``)."""
PICTURES_KEY = "pictures_model"
"""Session state: the model this session trained on its own pictures and chose to use."""


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
        PREDICTION_LABEL,
        loaded.categories[best],
        f"{prob:.1%} probability",
        delta_color="off",
        delta_arrow="off",
        help="The largest softmax probability. The digit nets were trained with label "
        "smoothing, so even a clear digit gets about 92–95 %, not 100 %."
        if loaded.spec.family == Family.DIGIT
        else "The largest softmax probability.",
    )


def index_slider(label: str, count: int, key: str, bind: bool = False) -> int:
    """A slider over ``0 … count − 1``; a kept value past a shrunken range is clamped.

    Args:
        label: The slider's label.
        count: How many positions (at least 1; one position shows a caption, no slider).
        key: Its widget key.
        bind: Keep the value in the URL (``?key=3``).
    """
    st.session_state[key] = min(int(st.session_state.get(key, 0)), count - 1)
    if count == 1:
        st.caption(f"{label}: 0 (the only one)")
        return 0
    return int(st.slider(label, 0, count - 1, key=key, bind="query-params" if bind else None))


def inline_image(image: np.ndarray | bytes) -> str:
    """An image for ``st.image`` as a data URI, sent inside the page.

    ``st.image`` keeps an array or bytes as a media file that the next rerun deletes; a
    browser still fetching the old file then gets a 404 (quick reruns: a drawing, uploads).
    """
    if isinstance(image, np.ndarray):
        return png_data_uri(image)
    mime = "image/jpeg" if image[:2] == b"\xff\xd8" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


@cache
def _style_sheet(light_background: str, dark_background: str) -> str:
    """The style sheet with its variables: the active theme's background, the figures' text.

    ``--cnn-background``: ``light-dark()`` picks by the ``color-scheme`` that Streamlit sets on
    the app for the theme the reader chose (System, Light or Dark), so it follows a change of
    theme without a rerun. ``--cnn-figure-text`` and ``--cnn-figure-grid``: the figures'
    text and grid lines (a figure is a white card in either theme).
    """
    css = Path(__file__).with_name("style.css").read_text(encoding="utf-8")
    variables = (
        f"--cnn-background: light-dark({light_background}, {dark_background}); "
        f"--cnn-figure-text: {TEXT_COLOUR}; --cnn-figure-grid: {GRID_COLOUR};"
    )
    return f"<style>:root {{ {variables} }}\n{css}</style>"


def inject_style() -> None:
    """The app's one style sheet (``pages/style.css``): narrow-screen and theme fixes.

    Called once a run by the entry script, so every page gets it.
    """
    light = st.get_option("theme.light.backgroundColor") or "#ffffff"
    dark = st.get_option("theme.dark.backgroundColor") or "#171614"  # Streamlit's dark default
    st.html(_style_sheet(str(light), str(dark)))
