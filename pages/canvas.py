"""The Draw page's canvas: our own components-v2 component that sends strokes, not PNGs.

Its value is :mod:`explorer.inputs.strokes`'s drawing (a few hundred bytes a stroke); it sends on
pointer-up at once and, while a stroke is drawn, a live value every 200 ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from explorer.hosting.addresses import CANVAS_COMPONENT
from explorer.inputs.strokes import CANVAS_SIZE, MAX_LENGTH, MAX_POINTS, MAX_STROKES

CSS = """
.cnn-canvas { display: inline-flex; flex-direction: column; gap: 6px; max-width: 100%; }
.cnn-canvas canvas { touch-action: none; cursor: crosshair; border-radius: 4px;
  box-shadow: 0 0 0 1px light-dark(transparent, #808080); }  /* its edge on a dark page */
.cnn-canvas .tools { display: flex; gap: 8px; align-items: center;
  font: 14px var(--st-font, sans-serif); color: var(--st-text-color, #31333f); }
.cnn-canvas button { font: inherit; padding: 2px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--st-border-color, #d5d7de); background: var(--st-background-color, #fff);
  color: inherit; }
.cnn-canvas input[type=range] { width: 90px; vertical-align: middle; }
.cnn-canvas .pad { position: relative; line-height: 0; }
.cnn-canvas canvas:focus-visible { outline: 3px solid var(--st-primary-color, #a8293a);
  outline-offset: 2px; }
/* The keyboard's pen: a ring that shows on the black canvas, filled while the pen is down. */
.cnn-canvas .cursor { position: absolute; pointer-events: none; box-sizing: border-box;
  border: 2px solid #ffbf00; border-radius: 50%; }
.cnn-canvas .cursor.down { background: rgba(255, 191, 0, 0.35); }
"""

_canvas = st.components.v2.component(
    CANVAS_COMPONENT,
    html="",
    css=CSS,
    js=Path(__file__).with_name("canvas.js").read_text(encoding="utf-8"),
)


def drawing_canvas(
    key: str,
    size: int = CANVAS_SIZE,
    brush: int = 22,
    live: bool = True,
    initial: list[dict[str, Any]] | None = None,
) -> Any:
    """Show a ``size``-pixel square canvas; its latest drawing value as sent (None at first).

    With ``live``, it also sends while a stroke is drawn (put it in an ``st.fragment`` then).
    The value is unchecked: :func:`explorer.inputs.strokes.parse_drawing` validates it.
    ``initial`` strokes (``{"width", "points"}``, as the value holds them) are painted when
    the canvas first shows, and later strokes add to them (a drawing restored from a link).
    """
    result = _canvas(
        key=key,
        data={
            "size": size,
            "brush": brush,
            "live": live,
            "initial": initial or [],
            # the drawing's caps: the keyboard's pen stops at them (canvas.js)
            "limits": {"points": MAX_POINTS, "strokes": MAX_STROKES, "length": MAX_LENGTH},
        },
        default={"drawing": None},
        on_drawing_change=lambda: None,
        width="content",
    )
    return result.get("drawing") if hasattr(result, "get") else None
