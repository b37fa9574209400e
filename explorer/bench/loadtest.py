"""Load generator: ``python -m explorer loadtest``: many browser-like sessions on a live server.

Each session is one websocket to ``/_stcore/stream`` that speaks Streamlit's own protocol, as
the browser's frontend does: it loads a page, then on a fixed schedule changes the one widget a
user would (a drawing on the Draw page's canvas, the layer of the Image page's layer browser),
and times every rerun from the ``BackMsg`` it sends to the ``script_finished`` that ends it. The
server cannot tell these sessions from browsers, so what is measured is the real app: script
runs, widget state, fragments, serialisation and the websocket, on the server's own CPU time.

Why plain asyncio + ``websockets`` and not Locust: Locust is not installed and brings gevent,
whose monkey-patching fights asyncio, and its websocket support is a plug-in to write anyway.
Here one event loop holds every session (200 cost a few MB); the generator shares the CPUs
with the server, so it stays cheap: it never builds page trees or decodes whole messages.

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
- Messages are protobufs. To keep :mod:`explorer` free of Streamlit (and the generator light)
  they are written and read here with the protobuf wire format, only the fields this needs;
  ``tests/test_loadtest.py`` checks each field number against Streamlit's own descriptors.

Behind a balancer: like a browser, a session first gets the page over HTTP, keeps the cookies
it sets in its own jar and sends them with the websocket, so a balancer with cookie affinity
(``deploy/nginx``) keeps it on one replica; nginx names that replica in the handshake's
:data:`REPLICA_HEADER`, and the report counts sessions per replica.

Errors: an exception element or an ``st.error`` in a rerun, a script that fails to compile,
a wrong or missing prediction (Draw page), a disconnect, or no end of the rerun within
:data:`RERUN_TIMEOUT_S`. A session that disconnects or times out stops.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import ipaddress
import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from explorer.inputs.strokes import DIGIT_STROKES, drawing_value

MAX_SESSIONS = 200
MAX_DURATION_S = 600.0
MAX_INTERVAL_S = 600.0
RERUN_TIMEOUT_S = 30.0
FIRST_LOAD_TIMEOUT_S = 60.0  # a first load waits behind every other session's first load
START_LEAD_S = 0.1  # the window opens this long after the sessions are told its start
LATE_TOLERANCE_S = 0.001  # a send this much past its slot is on time (clock granularity)
PAGES = {"draw": "", "classify": "classify"}  # --page: the app's url_path
CANVAS_COMPONENT = "cnn_explorer_canvas"
PREDICTION_LABEL = "Prediction"
LAYER_WIDGET_KEY = "image_layer_resnet18"
PEN_WIDTH = 22
MAX_ERROR_MESSAGES = 10
CONTEXT = {"timezone": "UTC", "locale": "en-US", "color_scheme": "light"}  # as a browser's
REPLICA_HEADER = "X-Upstream"
"""The response header in which the balancer (deploy/nginx) names the replica that answered."""

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


class LoadTestError(Exception):
    """A load test that cannot run, with a one-line message for the user."""


class ProtocolError(LoadTestError):
    """The server sent something this client does not understand."""


# --- the protobuf wire format -------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: its tag, its length, its bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _str_field(number: int, text: str) -> bytes:
    return bytes_field(number, text.encode("utf-8")) if text else b""  # proto3: "" is absent


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("a protobuf varint longer than 10 bytes")


def iter_fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """Each field of a protobuf message: (number, an int for a varint or a view of its bytes).

    Raises:
        ProtocolError: the bytes are not a protobuf message.
    """
    pos, end = 0, len(buf)
    try:
        while pos < end:
            key, pos = _read_varint(buf, pos)
            number, wire = key >> 3, key & 7
            value: int | memoryview
            if wire == 0:
                value, pos = _read_varint(buf, pos)
            elif wire == 2:
                size, pos = _read_varint(buf, pos)
                value = buf[pos : pos + size]
                pos += size
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                value = buf[pos : pos + size]
                pos += size
            else:
                raise ProtocolError(f"protobuf wire type {wire} is not supported")
            if pos > end:
                raise ProtocolError("a truncated protobuf message")
            yield number, value
    except IndexError:
        raise ProtocolError("a truncated protobuf message") from None


def _text(value: int | memoryview) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, memoryview) else ""


def _view(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ProtocolError("a protobuf message field holds a number")
    return value


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
        state = _str_field(_F["WidgetState.id"], widget.id)
        state += bytes_field(_F[f"WidgetState.{widget.kind}"], widget.value.encode("utf-8"))
        states += bytes_field(_F["WidgetStates.widgets"], state)
    context = (
        _str_field(_F["ContextInfo.timezone"], CONTEXT["timezone"])
        + _int_field(_F["ContextInfo.timezone_offset"], 0)
        + _str_field(_F["ContextInfo.locale"], CONTEXT["locale"])
        + _str_field(_F["ContextInfo.url"], url)
        + _str_field(_F["ContextInfo.color_scheme"], CONTEXT["color_scheme"])
    )
    client_state = (
        bytes_field(_F["ClientState.widget_states"], states)  # sent even when empty
        + _str_field(_F["ClientState.page_script_hash"], page_script_hash)
        + _str_field(_F["ClientState.page_name"], page_name)
        + _str_field(_F["ClientState.fragment_id"], fragment_id)
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
        for sub, sub_value in iter_fields(_view(value)):
            if isinstance(sub_value, memoryview):
                views.setdefault(sub, []).append(sub_value)
            else:
                numbers[sub] = sub_value

        def text(name: str, views: dict[int, list[memoryview]] = views) -> str:
            found = views.get(_F[name])
            return _text(found[0]) if found else ""  # only the fields read are decoded

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
            options = tuple(_text(v) for v in views.get(_F["Selectbox.options"], []))
            return Element(kind, fragment_id, id=text("Selectbox.id"), options=options)
        name = text("BidiComponent.component_name")
        return Element(kind, fragment_id, id=text("BidiComponent.id"), label=name)
    return None


def _navigation(buf: memoryview) -> ServerMessage:
    current, pages = "", {}
    for number, value in iter_fields(buf):
        if number == _F["Navigation.page_script_hash"]:
            current = _text(value)
        elif number == _F["Navigation.app_pages"]:
            page_hash = path = ""
            for sub, sub_value in iter_fields(_view(value)):
                if sub == _F["AppPage.page_script_hash"]:
                    page_hash = _text(sub_value)
                elif sub == _F["AppPage.url_pathname"]:
                    path = _text(sub_value)
            pages[page_hash] = path
    return ServerMessage("navigation", page_script_hash=current, pages=pages)


def _script_finished(value: int | memoryview) -> ServerMessage:
    if not isinstance(value, int):
        raise ProtocolError("script_finished is not a number")
    return ServerMessage("script_finished", status=value)


def _delta(value: int | memoryview) -> ServerMessage:
    new_element: memoryview | None = None
    fragment_id = ""
    for sub, sub_value in iter_fields(_view(value)):
        if sub == _F["Delta.new_element"]:
            new_element = _view(sub_value)
        elif sub == _F["Delta.fragment_id"]:
            fragment_id = _text(sub_value)
    element = _element(new_element, fragment_id) if new_element is not None else None
    return ServerMessage("delta", element=element)


def _page_not_found(value: int | memoryview) -> ServerMessage:
    name = "".join(
        _text(v) for n, v in iter_fields(_view(value)) if n == _F["PageNotFound.page_name"]
    )
    return ServerMessage("page_not_found", text=name)


_FORWARD_MSG_DECODERS: dict[int, Callable[[int | memoryview], ServerMessage]] = {
    _F["ForwardMsg.script_finished"]: _script_finished,
    _F["ForwardMsg.delta"]: _delta,
    _F["ForwardMsg.navigation"]: lambda value: _navigation(_view(value)),
    _F["ForwardMsg.page_not_found"]: _page_not_found,
    _F["ForwardMsg.ref_hash"]: lambda value: ServerMessage("ref_hash", text=_text(value)),
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


# --- one rerun ------------------------------------------------------------------------------


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


# --- the pages --------------------------------------------------------------------------------


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


def layer_of(option: str) -> str:
    """The layer name in a layer-browser option (``"12 · layer1.0.relu · relu · 64×56×56"``)."""
    parts = [part.strip() for part in option.split(" · ")]
    return parts[1] if len(parts) > 1 else parts[0]


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
            LoadTestError: the selectbox lists fewer than two of the layers.
        """
        options = {layer_of(option): option for option in widget.options}
        cycle = [layer for layer in self.layers if layer in options]
        if len(cycle) < 2:
            raise LoadTestError(f"the layer browser lists too few of {', '.join(self.layers)}")
        if self.current is None:
            shown = layer_of(widget.options[0])  # the selectbox's default is its first option
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
    from explorer.bench.library import SWITCH_LAYERS

    return LayerDriver(session, SWITCH_LAYERS)


# --- sessions -------------------------------------------------------------------------------


def stream_url(url: str) -> tuple[str, str]:
    """The websocket URL of a Streamlit server on this machine, and its page URL base.

    Raises:
        LoadTestError: not an http(s)/ws(s) URL, or not a loopback address.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise LoadTestError(f"--url must be an http:// URL, not {url!r}")
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        port = parts.port
    except ValueError:
        loopback, port = False, None
    if not loopback:
        raise LoadTestError(
            f"--url must be on this machine (127.0.0.1, localhost or ::1), not {host or url!r}"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    secure = parts.scheme in ("https", "wss")
    base = parts.path.rstrip("/").removesuffix("/_stcore/stream")
    return (
        f"{'wss' if secure else 'ws'}://{netloc}{base}/_stcore/stream",
        f"{'https' if secure else 'http'}://{netloc}{base}",
    )


def schedule_offsets(sessions: int, interval: float) -> list[float]:
    """Each session's first send after the window opens: spread evenly over one interval."""
    return [interval * i / sessions for i in range(sessions)]


@dataclass
class SessionStats:
    """One session's counts and timings."""

    index: int
    reruns: int = 0
    errors: int = 0
    wrong_predictions: int = 0
    late_sends: int = 0
    max_late_ms: float = 0.0
    first_load_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    inputs: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    stopped: str | None = None
    replica: str | None = None  # the balancer's REPLICA_HEADER on the websocket handshake


def fetch_page(url: str, cookies: http.cookiejar.CookieJar, timeout: float) -> None:
    """GET ``url`` as a browser first does, keeping the cookies it sets in ``cookies``.

    Raises:
        OSError: no answer, or an HTTP error status (``urllib.error.HTTPError``).
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # loopback only, as the websocket (proxy=None)
        urllib.request.HTTPCookieProcessor(cookies),
    )
    with opener.open(url, timeout=timeout) as response:
        response.read()


def cookie_header(cookies: http.cookiejar.CookieJar, url: str) -> str | None:
    """The ``Cookie`` header a browser would send to ``url`` from ``cookies``, or None."""
    request = urllib.request.Request(url)
    cookies.add_cookie_header(request)
    return request.get_header("Cookie")


def served_by(upstream: str | None) -> str | None:
    """The replica that answered, from nginx's ``$upstream_addr`` (the last one tried)."""
    if not upstream:
        return None
    return upstream.split(",")[-1].strip() or None


class Session:
    """One browser-like session: a cookie jar, a websocket, the page's widget and its stats.

    Sessions given the same ``cookies`` are one browser's tabs (one replica behind a balancer).
    """

    def __init__(
        self,
        index: int,
        ws_url: str,
        page_url: str,
        page: str,
        cookies: http.cookiejar.CookieJar | None = None,
    ) -> None:
        self.ws_url, self.page_url, self.page = ws_url, page_url, page
        self.cookies = http.cookiejar.CookieJar() if cookies is None else cookies
        self.driver = make_driver(page, max(index, 0))
        self.stats = SessionStats(index)
        self.connection: ClientConnection | None = None
        self.page_script_hash = ""
        self.widget: Element | None = None
        self.sent: dict[str, WidgetValue] = {}

    def _problem(self, message: str) -> None:
        self.stats.problems.append(message)

    async def _request(self, payload: bytes, timeout: float) -> Run:
        connection = self.connection
        assert connection is not None
        run = Run()
        start = time.perf_counter()
        await connection.send(payload)
        async with asyncio.timeout(timeout):
            while not run.finished:
                data = await connection.recv()
                if isinstance(data, str):
                    raise ProtocolError("the server sent a text frame")
                run.absorb(decode_forward_msg(data))
        run.ms = (time.perf_counter() - start) * 1e3
        if run.page_script_hash:
            self.page_script_hash = run.page_script_hash
        widget = self.driver.find(run.widgets)
        if widget is not None:
            self.widget = widget
        return run

    async def load(self, at: float | None = None) -> bool:
        """Get the page, connect and load it (at ``at`` on the perf_counter clock).

        Returns:
            False when the session could not load the page (it is stopped, with the reason).
        """
        if at is not None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
        path = PAGES[self.page]
        try:
            await asyncio.to_thread(
                fetch_page, f"{self.page_url}/{path}", self.cookies, FIRST_LOAD_TIMEOUT_S
            )
            cookie = cookie_header(self.cookies, f"{self.page_url}/_stcore/stream")
            self.connection = await connect(
                self.ws_url,
                subprotocols=[Subprotocol("streamlit")],
                additional_headers={"Cookie": cookie} if cookie else None,
                compression=None,  # the server's default: no permessage-deflate
                max_size=None,  # a page's figures can exceed websockets' 1 MiB default
                proxy=None,
                open_timeout=FIRST_LOAD_TIMEOUT_S,
            )
            if self.connection.response is not None:
                upstream = self.connection.response.headers.get(REPLICA_HEADER)
                self.stats.replica = served_by(upstream)
            payload = encode_rerun([], page_name=path, url=f"{self.page_url}/{path}")
            run = await self._request(payload, FIRST_LOAD_TIMEOUT_S)
        except (OSError, TimeoutError, WebSocketException, ProtocolError) as exc:
            self._stop(f"first load: {_describe(exc)}")
            return False
        self.stats.first_load_ms = run.ms
        landed = run.pages.get(run.page_script_hash)
        if landed != PAGES[self.page]:
            run.problems.append(f"landed on page {landed!r}, not {PAGES[self.page]!r}")
        elif self.widget is None:
            what = "canvas" if self.page == "draw" else "layer browser"
            run.problems.append(f"the {self.page} page shows no {what} to drive")
        if run.problems:
            self._stop(f"first load: {run.problems[0]}")
            return False
        return True

    def _stop(self, reason: str) -> None:
        self.stats.errors += 1
        self.stats.stopped = reason
        self._problem(reason)

    async def step(self) -> Run | None:
        """Send the next input and wait for its rerun; None when the session had to stop."""
        assert self.widget is not None
        name, value = self.driver.next_input(self.widget)
        self.sent[value.id] = value
        payload = encode_rerun(
            list(self.sent.values()),
            page_script_hash=self.page_script_hash,
            fragment_id=self.widget.fragment_id,  # as the browser: the widget's own fragment
            url=f"{self.page_url}/{PAGES[self.page]}",
        )
        self.stats.reruns += 1
        self.stats.inputs[name] += 1
        try:
            run = await self._request(payload, RERUN_TIMEOUT_S)
        except TimeoutError:
            self._stop(f"no end of a rerun within {RERUN_TIMEOUT_S:g} s")
            return None
        except (OSError, WebSocketException, ProtocolError) as exc:
            self._stop(_describe(exc))
            return None
        self.stats.latencies_ms.append(run.ms)
        wrong = self.driver.check(name, run)
        if wrong is not None:
            self.stats.wrong_predictions += 1
            run.problems.append(wrong)
        if run.problems:
            self.stats.errors += 1
            self._problem(run.problems[0])
        else:
            self.stats.ok[name] += 1
        return run

    async def drive(self, start: float, interval: float, end: float) -> None:
        """Send an input at ``start + k·interval`` while that is before ``end``, closed loop.

        A send whose slot passed while the previous rerun still ran goes at once, counted late.
        """
        if self.widget is None:
            return
        k = 0
        while (due := start + k * interval) < end:
            slip = time.perf_counter() - due
            if slip > LATE_TOLERANCE_S:
                self.stats.late_sends += 1
                self.stats.max_late_ms = max(self.stats.max_late_ms, slip * 1e3)
            elif slip < 0:
                await asyncio.sleep(-slip)
            if await self.step() is None:
                return
            k += 1

    async def close(self) -> None:
        """Close the websocket (the server ends the session)."""
        if self.connection is not None:
            with suppress(OSError, TimeoutError, WebSocketException):
                await asyncio.wait_for(self.connection.close(), 10)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- measuring -------------------------------------------------------------------------------


def cpu_seconds_from_stat(stat: str, ticks_per_second: int) -> float:
    """Utime + stime of a ``/proc/<pid>/stat`` line, in seconds (children not included)."""
    after_name = stat.rsplit(")", 1)[1].split()  # the name may hold spaces and ')'
    utime, stime = int(after_name[11]), int(after_name[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / ticks_per_second


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used so far, or None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return cpu_seconds_from_stat(stat, os.sysconf("SC_CLK_TCK"))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile, interpolated linearly as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class LoadPlan:
    """What to run: the page, how many sessions, how long and how often."""

    page: str
    sessions: int
    duration_s: float
    interval_s: float


async def warm_up(ws_url: str, page_url: str, page: str) -> None:
    """One session loads the page and makes one input, so no measured rerun pays first use.

    Raises:
        LoadTestError: the session could not load or drive the page.
    """
    session = Session(-1, ws_url, page_url, page)
    try:
        if not await session.load():
            raise LoadTestError(f"cannot load the {page} page ({ws_url}): {session.stats.stopped}")
        await session.step()
        if session.stats.problems:
            raise LoadTestError(f"warm-up on the {page} page: {session.stats.problems[0]}")
    finally:
        await session.close()


async def run_load(
    plan: LoadPlan, ws_url: str, page_url: str, server_pid: int | None
) -> dict[str, Any]:
    """Warm the server, load the page in every session, then drive them for the window.

    Returns:
        The report (see :func:`build_report`).

    Raises:
        LoadTestError: the warm-up session could not load or drive the page.
    """
    await warm_up(ws_url, page_url, plan.page)
    offsets = schedule_offsets(plan.sessions, plan.interval_s)
    sessions = [Session(i, ws_url, page_url, plan.page) for i in range(plan.sessions)]
    try:
        setup = time.perf_counter()
        await asyncio.gather(*(s.load(setup + o) for s, o in zip(sessions, offsets, strict=True)))
        start = time.perf_counter() + START_LEAD_S
        cpu_before = process_cpu_seconds(server_pid) if server_pid else None
        own_before = time.process_time()
        end = start + plan.duration_s
        await asyncio.gather(
            *(
                s.drive(start + o, plan.interval_s, end)
                for s, o in zip(sessions, offsets, strict=True)
            )
        )
        await asyncio.sleep(max(0.0, end - time.perf_counter()))  # the window is whole
        window = time.perf_counter() - start
        cpu_after = process_cpu_seconds(server_pid) if server_pid else None
        own_cpu = time.process_time() - own_before
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    server_cpu = (
        cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    )
    return build_report(plan, [s.stats for s in sessions], window, server_cpu, own_cpu)


def build_report(
    plan: LoadPlan,
    stats: Sequence[SessionStats],
    window_s: float,
    server_cpu_s: float | None,
    client_cpu_s: float,
) -> dict[str, Any]:
    """The run's numbers: totals, latency percentiles, CPU per rerun and each session's.

    ``reruns`` counts the inputs sent in the window; ``errors`` those that failed (plus first
    loads that failed); latencies are of the reruns that ended, page loads apart. A session's
    ``inputs`` counts each input sent, ``ok`` those whose rerun had no error (on the Draw page:
    the digit drawn was the one predicted). ``replicas`` counts the sessions each replica
    served, where a balancer named it (None otherwise).
    """
    latencies = [ms for s in stats for ms in s.latencies_ms]
    first_loads = [s.first_load_ms for s in stats if s.first_load_ms is not None]
    reruns = sum(s.reruns for s in stats)
    problems = [f"session {s.index}: {p}" for s in stats for p in s.problems]
    per_rerun = (server_cpu_s * 1e3 / reruns) if server_cpu_s is not None and reruns else None
    replicas = Counter(s.replica for s in stats if s.replica is not None)
    return {
        "page": plan.page,
        "sessions": plan.sessions,
        "interval_s": plan.interval_s,
        "duration_s": plan.duration_s,
        "window_s": round(window_s, 3),
        "reruns": reruns,
        "reruns_per_s": round(reruns / window_s, 2) if window_s > 0 else None,
        "errors": sum(s.errors for s in stats),
        "wrong_predictions": sum(s.wrong_predictions for s in stats)
        if plan.page == "draw"
        else None,
        "late_sends": sum(s.late_sends for s in stats),
        "max_late_ms": _ms(max((s.max_late_ms for s in stats), default=0.0)),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "max_ms": _ms(max(latencies, default=None)),
        "first_load_p50_ms": _ms(percentile(first_loads, 50)),
        "server_cpu_ms_per_rerun": _ms(per_rerun),
        "client_cpu_ms_per_rerun": _ms(client_cpu_s * 1e3 / reruns) if reruns else None,
        "error_messages": problems[:MAX_ERROR_MESSAGES],
        "replicas": dict(sorted(replicas.items())) if replicas else None,
        "per_session": [
            {
                "session": s.index,
                "reruns": s.reruns,
                "errors": s.errors,
                "wrong_predictions": s.wrong_predictions if plan.page == "draw" else None,
                "late_sends": s.late_sends,
                "first_load_ms": _ms(s.first_load_ms),
                "p50_ms": _ms(percentile(s.latencies_ms, 50)),
                "inputs": dict(sorted(s.inputs.items())),
                "ok": dict(sorted(s.ok.items())),
                "stopped": s.stopped,
                "replica": s.replica,
            }
            for s in stats
        ],
    }


def format_table(report: Mapping[str, Any]) -> str:
    """A short readable summary of a report."""

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    wrong = report["wrong_predictions"]
    lines = [
        f"{report['page']} page: {report['sessions']} sessions, one input every "
        f"{report['interval_s']:g} s each, for {report['duration_s']:g} s "
        f"(measured {report['window_s']:.1f} s)",
        f"reruns      {report['reruns']} ({report['reruns_per_s']} /s), {report['errors']} errors"
        + (f", {wrong} wrong predictions" if wrong is not None else "")
        + f", {report['late_sends']} late sends",
        f"latency ms  p50 {ms(report['p50_ms'])}  p95 {ms(report['p95_ms'])}  "
        f"max {ms(report['max_ms'])}  (first load p50 {ms(report['first_load_p50_ms'])})",
        f"CPU ms      server {ms(report['server_cpu_ms_per_rerun'])} per rerun, "
        f"this client {ms(report['client_cpu_ms_per_rerun'])}",
        *(
            ["replicas    " + ", ".join(f"{k} ×{v}" for k, v in report["replicas"].items())]
            if report.get("replicas")
            else []
        ),
        "",
        f"{'session':>7} {'reruns':>6} {'errors':>6} {'late':>4} {'p50 ms':>8}  inputs",
    ]
    for row in report["per_session"]:
        inputs = " ".join(f"{name}×{count}" for name, count in row["inputs"].items())
        lines.append(
            f"{row['session']:>7} {row['reruns']:>6} {row['errors']:>6} {row['late_sends']:>4} "
            f"{ms(row['p50_ms']):>8}  {inputs}"
            + (f"  stopped: {row['stopped']}" if row["stopped"] else "")
        )
    lines += [f"  {message}" for message in report["error_messages"]]
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------------------


def check_plan(args: argparse.Namespace) -> LoadPlan:
    """The plan the arguments ask for, within bounds.

    Raises:
        LoadTestError: a count or a time out of bounds.
    """
    if not 1 <= args.sessions <= MAX_SESSIONS:
        raise LoadTestError(f"--sessions must be 1–{MAX_SESSIONS}, not {args.sessions}")
    if not (math.isfinite(args.duration) and 0 < args.duration <= MAX_DURATION_S):
        raise LoadTestError(f"--duration must be over 0 and at most {MAX_DURATION_S:g} s")
    if not (math.isfinite(args.interval) and 0 < args.interval <= MAX_INTERVAL_S):
        raise LoadTestError(f"--interval must be over 0 and at most {MAX_INTERVAL_S:g} s")
    return LoadPlan(args.page, args.sessions, float(args.duration), float(args.interval))


def _error(message: str) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def run_spawned(plan: LoadPlan, device: str) -> dict[str, Any]:
    """Start the app with the benchmark's launcher, run the load on it, stop it.

    Raises:
        LoadTestError: the server did not start, or the page could not be driven.
    """
    import torch

    from explorer.hosting.server import streamlit_server

    with tempfile.TemporaryDirectory(prefix="explorer-loadtest-") as folder, ExitStack() as stack:
        launcher = streamlit_server(torch.device(device), Path(folder) / "streamlit.log")
        try:
            server = stack.enter_context(launcher)
        except RuntimeError as exc:  # the launcher's "streamlit did not start: …"
            raise LoadTestError(str(exc)) from None
        ws_url, page_url = stream_url(server.url)
        report = asyncio.run(run_load(plan, ws_url, page_url, server.process.pid))
    return {**report, "url": server.url, "spawned": True}


def cmd_loadtest(args: argparse.Namespace) -> int:
    """``python -m explorer loadtest``: the table, or one JSON object with ``--json``.

    Returns 2 for arguments out of bounds, 1 when the load could not run or a rerun failed.
    """
    try:
        plan = check_plan(args)
        urls = stream_url(args.url) if args.url else None
    except LoadTestError as exc:
        _error(str(exc))
        return 2
    try:
        if urls is None:
            report = run_spawned(plan, args.device)
        else:
            report = asyncio.run(run_load(plan, *urls, server_pid=None))
            report = {**report, "url": args.url, "spawned": False}
    except LoadTestError as exc:
        _error(str(exc))
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report), flush=True)
    if report["errors"]:
        first = report["error_messages"][0] if report["error_messages"] else ""
        _error(f"{report['errors']} of {report['reruns']} reruns failed; first: {first}")
        return 1
    return 0
