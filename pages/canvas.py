"""The Draw page's canvas: our own components-v2 component that sends strokes, not PNGs.

Its value is :mod:`explorer.inputs.strokes`'s drawing (a few hundred bytes a stroke); it sends on
pointer-up at once and, while a stroke is drawn, a live value every 200 ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from explorer.hosting.addresses import CANVAS_COMPONENT
from explorer.inputs.strokes import CANVAS_SIZE

CSS = """
.cnn-canvas { display: inline-flex; flex-direction: column; gap: 6px; }
.cnn-canvas canvas { touch-action: none; cursor: crosshair; border-radius: 4px; }
.cnn-canvas .tools { display: flex; gap: 8px; align-items: center;
  font: 14px var(--st-font, sans-serif); color: var(--st-text-color, #31333f); }
.cnn-canvas button { font: inherit; padding: 2px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--st-border-color, #d5d7de); background: var(--st-background-color, #fff);
  color: inherit; }
.cnn-canvas input[type=range] { width: 90px; vertical-align: middle; }
"""

_canvas = st.components.v2.component(
    CANVAS_COMPONENT,
    html="",
    css=CSS,
    js=Path(__file__).with_name("canvas.js").read_text(encoding="utf-8"),
)


def drawing_canvas(key: str, size: int = CANVAS_SIZE, brush: int = 22, live: bool = True) -> Any:
    """Show a ``size``-pixel square canvas; its latest drawing value as sent (None at first).

    With ``live``, it also sends while a stroke is drawn (put it in an ``st.fragment`` then).
    The value is unchecked: :func:`explorer.inputs.strokes.parse_drawing` validates it.
    """
    result = _canvas(
        key=key,
        data={"size": size, "brush": brush, "live": live},
        default={"drawing": None},
        on_drawing_change=lambda: None,
        width="content",
    )
    return result.get("drawing") if hasattr(result, "get") else None
