"""The served app's addresses: each page's URL path, and the widgets a client finds by key.

The pages build their navigation and widgets from these, and everything that drives the app
from outside (the load generator's sessions, the benchmarks' Chromium, the browser tests)
finds them by the same names, so renaming a widget cannot silently stop a driver.
"""

from __future__ import annotations

URL_PATHS = {
    "draw": "",
    "image": "classify",
    "lab": "convolution-lab",
    "train": "train",
    "pictures": "your-pictures",
    "experiment": "experiment",
    "home": "overview",
    "lessons": "lessons",
}
"""``pages/<name>.py`` → its ``url_path`` (the Draw page, the default, is at the root).

They differ from the file names on purpose: while a server's first run still treats
``pages/`` as a legacy pages folder, a URL equal to a file name would run that file alone."""

CANVAS_COMPONENT = "cnn_explorer_canvas"
"""The drawing canvas component's name (``pages/canvas.py``)."""
DRAW_CANVAS_KEY = "draw_canvas"
"""The Draw page's canvas widget key."""
VIEW_LINK_COMPONENT = "cnn_explorer_view_link"
"""The "Link to this view" box's component name (``pages/links.py``)."""
VIEW_LINK_URL = ".cnn-link input.url"
"""The selector of the box's field that holds the link (filled when the box is opened)."""
PREDICTION_LABEL = "Prediction"
"""The label of the metric that shows the top class."""


def layer_widget_key(model: str) -> str:
    """The Image page's layer menu key for ``model`` (one menu per model)."""
    return f"image_layer_{model}"


def key_selector(key: str) -> str:
    """The CSS class Streamlit gives the element of widget ``key``, as a selector."""
    return f".st-key-{key}"
