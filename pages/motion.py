"""Whether the browser asks for reduced motion (``prefers-reduced-motion: reduce``).

The server cannot see a media query, so a tiny components-v2 component reads it in the browser
and sends it as its state: only when it is ``reduce`` (the default, no preference, costs no
rerun), and again if the visitor changes the setting.
"""

from __future__ import annotations

import streamlit as st

JS = """
export default function ({ parentElement, setStateValue }) {
  if (parentElement.__motionWired) return;
  parentElement.__motionWired = true;
  const query = window.matchMedia("(prefers-reduced-motion: reduce)");
  if (query.matches) setStateValue("reduce", true);
  query.addEventListener("change", (event) => setStateValue("reduce", event.matches));
}
"""

_motion = st.components.v2.component("cnn_explorer_reduced_motion", html="", js=JS)


def reduced_motion(key: str) -> bool:
    """True when the visitor's browser asks for reduced motion (False until it has said)."""
    result = _motion(key=key, default={"reduce": False}, on_reduce_change=lambda: None)
    return bool(result.get("reduce")) if hasattr(result, "get") else False
