"""What a browser-like session does on each page of the app: the widget it changes, and how.

The Draw page: a digit drawn on the canvas, two digits alternating. The Image page: its layer
browser switched round :data:`SWITCH_LAYERS`. The widget keys and labels are the pages' own, from
:mod:`.addresses`; a driver that no longer finds its widget stops
its session with a problem rather than time nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from explorer.figures.channels import layer_of_label
from explorer.hosting.addresses import CANVAS_COMPONENT, URL_PATHS, layer_widget_key
from explorer.hosting.client import ClientError
from explorer.hosting.messages import Element, Run, WidgetValue
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value

PAGES = {"draw": URL_PATHS["draw"], "classify": URL_PATHS["image"]}
"""The pages a session can drive (``--page``), each with the app's ``url_path``."""
LAYER_WIDGET_KEY = layer_widget_key("resnet18")
PEN_WIDTH = 22
SWITCH_LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1")
"""The ResNet-18 layers a session switches round (and the layer-switch benchmark times)."""


class PageDriver(Protocol):
    """What a session does on one page: find its widget, make the next input, check it."""

    def find(self, widgets: Sequence[Element]) -> Element | None:
        """The widget this driver changes, among those a run drew (None: not there)."""
        ...

    def next_input(self, widget: Element) -> tuple[str, WidgetValue]:
        """The next input: its name for the report and the widget value that makes it."""
        ...

    def check(self, name: str, run: Run) -> str | None:
        """What is wrong with the run's result for input ``name``, or None."""
        ...


class DrawDriver:
    """The Draw page: a digit drawn on the canvas, alternating two digits stroke by stroke."""

    def __init__(self, session: int) -> None:
        digits = sorted(DIGIT_STROKES)
        self.digits = (digits[session % len(digits)], digits[(session + 1) % len(digits)])
        self.sent = 0

    def find(self, widgets: Sequence[Element]) -> Element | None:
        """The canvas component."""
        found = [w for w in widgets if w.kind == "bidi_component" and w.label == CANVAS_COMPONENT]
        return found[-1] if found else None

    def next_input(self, widget: Element) -> tuple[str, WidgetValue]:
        """The whole digit as one finished drawing; ``seq`` grows so each value is new."""
        digit = self.digits[self.sent % 2]
        self.sent += 1
        drawing = drawing_value(DIGIT_STROKES[digit], width=PEN_WIDTH, seq=self.sent, final=True)
        value = json.dumps({"drawing": drawing}, separators=(",", ":"))
        return digit, WidgetValue(widget.id, "json_value", value)

    def check(self, name: str, run: Run) -> str | None:
        """A wrong or missing prediction."""
        if run.prediction == name:
            return None
        shown = "no prediction" if run.prediction is None else f"{run.prediction!r}"
        return f"drew {name}, the page showed {shown}"


class LayerDriver:
    """The Image page: the layer browser switched round a few layers, one step each input."""

    def __init__(self, session: int, layers: Sequence[str]) -> None:
        self.layers = tuple(layers)
        self.session = session
        self.current: str | None = None

    def find(self, widgets: Sequence[Element]) -> Element | None:
        """The layer selectbox (its id ends with its key)."""
        found = [
            w for w in widgets if w.kind == "selectbox" and w.id.endswith(f"-{LAYER_WIDGET_KEY}")
        ]
        return found[-1] if found else None

    def next_input(self, widget: Element) -> tuple[str, WidgetValue]:
        """The option of the layer after the one shown; a session's first: its own start.

        Sessions start at different layers of the cycle (session ``i`` at ``i + 1``), and
        never send the layer already shown, so every input changes the page.

        Raises:
            ClientError: the selectbox lists fewer than two of the layers.
        """
        options = {layer_of_label(option): option for option in widget.options}
        cycle = [layer for layer in self.layers if layer in options]
        if len(cycle) < 2:
            raise ClientError(f"the layer browser lists too few of {', '.join(self.layers)}")
        if self.current is None:
            shown = layer_of_label(widget.options[0])  # the selectbox's default is its first option
            self.current = shown
            step = (self.session + 1) % len(cycle)
            if cycle[step] == shown:
                step = (step + 1) % len(cycle)
            layer = cycle[step]
        elif self.current in cycle:
            layer = cycle[(cycle.index(self.current) + 1) % len(cycle)]
        else:
            layer = cycle[0]
        self.current = layer
        return layer, WidgetValue(widget.id, "string_value", options[layer])

    def check(self, name: str, run: Run) -> str | None:
        """Nothing to check beyond the errors every run is checked for."""
        return None


def make_driver(page: str, session: int) -> PageDriver:
    """The driver of ``page`` (a key of :data:`PAGES`) for session number ``session``."""
    if page == "draw":
        return DrawDriver(session)
    return LayerDriver(session, SWITCH_LAYERS)
