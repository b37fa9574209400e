"""Helpers shared by the pages: the cached models (one per server, shared by every session)."""

from __future__ import annotations

import streamlit as st

from explorer.zoo import LoadedModel, load_model


@st.cache_resource(show_spinner="Loading the model…")
def cached_model(name: str, weights: str | None = None) -> LoadedModel:
    """One copy of each zoo model per server process (read-only after loading)."""
    return load_model(name, weights)
