"""Streamlit's websocket messages, as a browser writes and reads them: only the fields needed.

The protocol, read from Streamlit 1.67's sources (``web/server/starlette/starlette_websocket``,
``runtime/app_session``, the bundled frontend):

- The handshake offers the subprotocol ``streamlit``; no ``Origin`` header is allowed.
- The browser's first message is a ``rerun_script`` with an empty ``page_script_hash`` and
  the URL's path as ``page_name`` (``"classify"``; ``""`` for the default page); the server
  resolves it. Every later rerun carries the ``page_script_hash`` of the last ``navigation``
  message, ``page_name`` empty. A widget drawn inside an ``st.fragment`` sends its change with
  that fragment's id (``Delta.fragment_id``), so only the fragment reruns and ends with
  ``FINISHED_FRAGMENT_RUN_SUCCESSFULLY`` — unless the page asks for a full run
  (``st.rerun(scope="app")``): then that run ends ``FINISHED_EARLY_FOR_RERUN`` and a full run
  follows in the same request.
- A browser sends all of its widget states with every rerun; the server keeps a widget's last
  value when it is missing, so a session here sends only the widgets it has changed.
- The browser lists the hashes of messages it has cached (``cached_message_hashes``) and the
  server then sends big unchanged elements as references (``ref_hash``); these sessions list
  none, so every element arrives in full (a little more work for the server than a browser).
- Messages are protobufs. To keep :mod:`explorer` free of Streamlit (and the client light)
  they are written and read here with the wire format (:mod:`explorer.hosting.protobuf`),
  only the fields needed; ``tests/test_loadtest.py`` checks each field number against
  Streamlit's own descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from explorer.hosting.addresses import PREDICTION_LABEL
from explorer.hosting.protobuf import (
    ProtocolError,
    as_message,
    as_text,
    bytes_field,
    int_field,
    iter_fields,
    string_field,
)

CONTEXT = {"timezone": "UTC", "locale": "en-US", "color_scheme": "light"}  # as a browser's

# Script-finished statuses (ForwardMsg.ScriptFinishedStatus).
FINISHED_SUCCESSFULLY = 0
FINISHED_WITH_COMPILE_ERROR = 1
FINISHED_EARLY_FOR_RERUN = 2
FINISHED_FRAGMENT_RUN_SUCCESSFULLY = 3
ALERT_ERROR = 1  # Alert.Format.ERROR

# Protobuf field numbers of streamlit/proto/*.proto, only those read or written here.
FIELDS: dict[str, int] = {
    "BackMsg.rerun_script": 11,
    "ClientState.query_string": 1,
    "ClientState.widget_states": 2,
    "ClientState.page_script_hash": 3,
    "ClientState.page_name": 4,
    "ClientState.fragment_id": 5,
    "ClientState.context_info": 8,
    "ContextInfo.timezone": 1,
    "ContextInfo.timezone_offset": 2,
    "ContextInfo.locale": 3,
    "ContextInfo.url": 4,
    "ContextInfo.color_scheme": 6,
    "WidgetStates.widgets": 1,
    "WidgetState.id": 1,
    "WidgetState.string_value": 6,
    "WidgetState.json_value": 10,
    "ForwardMsg.delta": 5,
    "ForwardMsg.script_finished": 6,
    "ForwardMsg.ref_hash": 11,
    "ForwardMsg.page_not_found": 15,
    "ForwardMsg.navigation": 23,
    "Delta.new_element": 3,
    "Delta.fragment_id": 8,
    "Element.exception": 8,
    "Element.selectbox": 25,
    "Element.alert": 30,
    "Element.metric": 42,
    "Element.bidi_component": 59,
    "Exception.type": 1,
    "Exception.message": 2,
    "Exception.is_warning": 5,
    "Alert.body": 1,
    "Alert.format": 2,
    "Metric.label": 1,
    "Metric.body": 2,
    "Selectbox.id": 1,
    "Selectbox.options": 4,
    "BidiComponent.id": 1,
    "BidiComponent.component_name": 2,
    "Navigation.app_pages": 2,
    "Navigation.page_script_hash": 4,
    "AppPage.page_script_hash": 1,
    "AppPage.url_pathname": 6,
    "PageNotFound.page_name": 1,
}
_F = FIELDS
_ELEMENT_KINDS = {
    _F["Element.exception"]: "exception",
    _F["Element.selectbox"]: "selectbox",
    _F["Element.alert"]: "alert",
    _F["Element.metric"]: "metric",
    _F["Element.bidi_component"]: "bidi_component",
}


@dataclass(frozen=True)
class WidgetValue:
    """One widget's value as a browser sends it: its id, the value field and the value."""

    id: str
    kind: str  # "json_value" or "string_value"
    value: str


def encode_rerun(
    widgets: Sequence[WidgetValue],
    *,
    page_script_hash: str = "",
    page_name: str = "",
    fragment_id: str = "",
    url: str = "",
) -> bytes:
    """A ``BackMsg`` asking for a rerun, with the fields the browser fills in.

    Raises:
        ValueError: a widget value of a kind this client does not send.
    """
    states = b""
    for widget in widgets:
        if widget.kind not in ("json_value", "string_value"):
            raise ValueError(f"unsupported widget value {widget.kind!r}")
        state = string_field(_F["WidgetState.id"], widget.id)
        state += bytes_field(_F[f"WidgetState.{widget.kind}"], widget.value.encode("utf-8"))
        states += bytes_field(_F["WidgetStates.widgets"], state)
    context = (
        string_field(_F["ContextInfo.timezone"], CONTEXT["timezone"])
        + int_field(_F["ContextInfo.timezone_offset"], 0)
        + string_field(_F["ContextInfo.locale"], CONTEXT["locale"])
        + string_field(_F["ContextInfo.url"], url)
        + string_field(_F["ContextInfo.color_scheme"], CONTEXT["color_scheme"])
    )
    client_state = (
        bytes_field(_F["ClientState.widget_states"], states)  # sent even when empty
        + string_field(_F["ClientState.page_script_hash"], page_script_hash)
        + string_field(_F["ClientState.page_name"], page_name)
        + string_field(_F["ClientState.fragment_id"], fragment_id)
        + bytes_field(_F["ClientState.context_info"], context)
    )
    return bytes_field(_F["BackMsg.rerun_script"], client_state)


@dataclass(frozen=True)
class Element:
    """The few fields read from one element: a metric, a widget, an exception or an alert.

    ``label`` is a metric's label or a component's name; ``body`` a metric's value, an
    exception's ``type: message`` or an alert's text.
    """

    kind: str
    fragment_id: str = ""
    id: str = ""
    label: str = ""
    body: str = ""
    options: tuple[str, ...] = ()
    is_error: bool = False


@dataclass(frozen=True)
class ServerMessage:
    """What one ``ForwardMsg`` means to a session; ``kind`` is ``"other"`` for the rest."""

    kind: str
    status: int = -1  # script_finished
    element: Element | None = None  # delta
    page_script_hash: str = ""  # navigation
    pages: Mapping[str, str] = field(default_factory=dict)  # navigation: hash → url_path
    text: str = ""  # page_not_found's page name, ref_hash's hash


def _element(buf: memoryview, fragment_id: str) -> Element | None:
    for number, value in iter_fields(buf):
        kind = _ELEMENT_KINDS.get(number)
        if kind is None:
            continue  # every other element: skipped unread
        views: dict[int, list[memoryview]] = {}
        numbers: dict[int, int] = {}
        for sub, sub_value in iter_fields(as_message(value)):
            if isinstance(sub_value, memoryview):
                views.setdefault(sub, []).append(sub_value)
            else:
                numbers[sub] = sub_value

        def text(name: str, views: dict[int, list[memoryview]] = views) -> str:
            found = views.get(_F[name])
            return as_text(found[0]) if found else ""  # only the fields read are decoded

        if kind == "exception":
            body = f"{text('Exception.type')}: {text('Exception.message')}"
            warning = bool(numbers.get(_F["Exception.is_warning"]))  # e.g. a deprecation
            return Element(kind, fragment_id, body=body, is_error=not warning)
        if kind == "alert":
            is_error = numbers.get(_F["Alert.format"]) == ALERT_ERROR
            return Element(kind, fragment_id, body=text("Alert.body"), is_error=is_error)
        if kind == "metric":
            return Element(kind, fragment_id, label=text("Metric.label"), body=text("Metric.body"))
        if kind == "selectbox":
            options = tuple(as_text(v) for v in views.get(_F["Selectbox.options"], []))
            return Element(kind, fragment_id, id=text("Selectbox.id"), options=options)
        name = text("BidiComponent.component_name")
        return Element(kind, fragment_id, id=text("BidiComponent.id"), label=name)
    return None


def _navigation(buf: memoryview) -> ServerMessage:
    current, pages = "", {}
    for number, value in iter_fields(buf):
        if number == _F["Navigation.page_script_hash"]:
            current = as_text(value)
        elif number == _F["Navigation.app_pages"]:
            page_hash = path = ""
            for sub, sub_value in iter_fields(as_message(value)):
                if sub == _F["AppPage.page_script_hash"]:
                    page_hash = as_text(sub_value)
                elif sub == _F["AppPage.url_pathname"]:
                    path = as_text(sub_value)
            pages[page_hash] = path
    return ServerMessage("navigation", page_script_hash=current, pages=pages)


def _script_finished(value: int | memoryview) -> ServerMessage:
    if not isinstance(value, int):
        raise ProtocolError("script_finished is not a number")
    return ServerMessage("script_finished", status=value)


def _delta(value: int | memoryview) -> ServerMessage:
    new_element: memoryview | None = None
    fragment_id = ""
    for sub, sub_value in iter_fields(as_message(value)):
        if sub == _F["Delta.new_element"]:
            new_element = as_message(sub_value)
        elif sub == _F["Delta.fragment_id"]:
            fragment_id = as_text(sub_value)
    element = _element(new_element, fragment_id) if new_element is not None else None
    return ServerMessage("delta", element=element)


def _page_not_found(value: int | memoryview) -> ServerMessage:
    name = "".join(
        as_text(v) for n, v in iter_fields(as_message(value)) if n == _F["PageNotFound.page_name"]
    )
    return ServerMessage("page_not_found", text=name)


_FORWARD_MSG_DECODERS: dict[int, Callable[[int | memoryview], ServerMessage]] = {
    _F["ForwardMsg.script_finished"]: _script_finished,
    _F["ForwardMsg.delta"]: _delta,
    _F["ForwardMsg.navigation"]: lambda value: _navigation(as_message(value)),
    _F["ForwardMsg.page_not_found"]: _page_not_found,
    _F["ForwardMsg.ref_hash"]: lambda value: ServerMessage("ref_hash", text=as_text(value)),
}
"""The ``ForwardMsg`` fields a session reads, each with what makes its message."""


def decode_forward_msg(data: bytes) -> ServerMessage:
    """Read what a session needs from one ``ForwardMsg``, skipping everything else unread.

    Raises:
        ProtocolError: the bytes are not a ForwardMsg.
    """
    for number, value in iter_fields(memoryview(data)):
        decode = _FORWARD_MSG_DECODERS.get(number)
        if decode is not None:
            return decode(value)
    return ServerMessage("other")


@dataclass
class Run:
    """What a session saw between sending a rerun and the ``script_finished`` that ended it."""

    status: int = -1
    ms: float = 0.0
    problems: list[str] = field(default_factory=list)
    prediction: str | None = None
    page_script_hash: str = ""
    pages: dict[str, str] = field(default_factory=dict)
    widgets: list[Element] = field(default_factory=list)
    page_not_found: str | None = None

    @property
    def finished(self) -> bool:
        """True once the request's last run has ended (an early end for a rerun is not it)."""
        return self.status not in (-1, FINISHED_EARLY_FOR_RERUN)

    def absorb(self, message: ServerMessage) -> None:
        """Take in one message of the run."""
        if message.kind == "script_finished":
            self._finish(message.status)
        elif message.kind == "delta" and message.element is not None:
            self._take_element(message.element)
        elif message.kind == "navigation":
            self.page_script_hash = message.page_script_hash
            self.pages = dict(message.pages)
        elif message.kind == "page_not_found":
            # Sent by the server's very first run: until st.navigation is first called,
            # Streamlit runs the pages/ folder as a legacy multipage app, which has no such
            # page; the app's own navigation then finds it. What counts is the page the run
            # lands on (checked on the first load), so this is not an error here.
            self.page_not_found = message.text
        elif message.kind == "ref_hash":
            self.problems.append("the server sent a cached reference this client never asked for")

    def _finish(self, status: int) -> None:
        """A ``script_finished``: the run's status, a problem unless it is a good one."""
        self.status = status
        if status == FINISHED_WITH_COMPILE_ERROR:
            self.problems.append("the script failed to compile")
        elif status not in (
            FINISHED_SUCCESSFULLY,
            FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
            FINISHED_EARLY_FOR_RERUN,
        ):
            self.problems.append(f"unknown script_finished status {status}")

    def _take_element(self, element: Element) -> None:
        """An element drawn: an error is a problem; the prediction and widgets are kept."""
        if element.is_error:
            self.problems.append(f"{element.kind}: {element.body}")
        elif element.kind == "metric" and element.label == PREDICTION_LABEL:
            self.prediction = element.body
        elif element.kind in ("selectbox", "bidi_component"):
            self.widgets.append(element)
