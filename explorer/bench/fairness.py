"""``heavy_fairness_draw_p95_ms``: students drawing while classmates keep the heavy line busy.

On one served app (:mod:`explorer.hosting.server`), :data:`HEAVY_SESSIONS` sessions drive the
Image page over Streamlit's websocket to "Why this class?" with VGG-16 and occlusion: one asks
for the smallest window and stride (1 px: 50,176 windows, hours of work before the scheduler,
refused by it), the others for the default window and stride (49 windows, ≈ 20 s of one core)
and another class every :data:`HEAVY_CLICK_S` (each class is new work, each click replaces the
session's job: they stand in for the issue's two Experiment-page students, whose page is not
under the scheduler yet). Meanwhile :data:`DRAW_SESSIONS` sessions draw on the Draw page
(:func:`explorer.bench.loadtest.run_load`, a stroke each every 2 s): the key is their p95 rerun
latency (None with any error). A classmate who opens the Image page meanwhile and picks
another photo is timed to its top-5 (in the notes).

The load generator's drivers set a selectbox or the canvas; these sessions also set a
segmented control and sliders, whose values travel as arrays: a second ``rerun_script`` field
appended to :func:`~explorer.hosting.messages.encode_rerun`'s message carries them (protobuf
merges repeated embedded messages). Their field numbers are checked against Streamlit's by
``tests/test_loadtest.py``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import struct
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from explorer.bench.loadplan import LoadPlan
from explorer.bench.loadtest import run_load
from explorer.hosting.client import ClientError, open_stream, stream_url
from explorer.hosting.messages import (
    FIELDS,
    FINISHED_EARLY_FOR_RERUN,
    WidgetValue,
    decode_forward_msg,
    encode_rerun,
)
from explorer.hosting.protobuf import bytes_field, iter_fields
from explorer.hosting.server import streamlit_server
from explorer.hosting.session import FIRST_LOAD_TIMEOUT_S

DRAW_SESSIONS = 20
HEAVY_SESSIONS = 3
HEAVY_CLICK_S = 5.0
STEP_TIMEOUT_S = 240.0  # VGG-16 built and captured while other sessions do the same
ARRAY_FIELDS = {
    "Element.button_group": 55,
    "Element.slider": 21,
    "ButtonGroup.id": 1,
    "Slider.id": 1,
    "WidgetState.double_array_value": 7,
    "WidgetState.string_array_value": 9,
    "StringArray.data": 1,
    "DoubleArray.data": 1,
}
"""Streamlit's protobuf field numbers this driver reads or writes beyond the load generator's."""
_IDS = {
    FIELDS["Element.selectbox"]: FIELDS["Selectbox.id"],
    ARRAY_FIELDS["Element.button_group"]: ARRAY_FIELDS["ButtonGroup.id"],
    ARRAY_FIELDS["Element.slider"]: ARRAY_FIELDS["Slider.id"],
}


def array_state(widget_id: str, values: list[str] | list[float]) -> bytes:
    """A ``WidgetState`` holding a segmented control's labels or a slider's numbers."""
    if all(isinstance(v, str) for v in values):
        item = ARRAY_FIELDS["StringArray.data"]
        data = b"".join(bytes_field(item, str(v).encode()) for v in values)
        value = bytes_field(ARRAY_FIELDS["WidgetState.string_array_value"], data)
    else:
        packed = b"".join(struct.pack("<d", float(v)) for v in values)
        value = bytes_field(
            ARRAY_FIELDS["WidgetState.double_array_value"],
            bytes_field(ARRAY_FIELDS["DoubleArray.data"], packed),
        )
    return bytes_field(FIELDS["WidgetState.id"], widget_id.encode()) + value


def with_arrays(message: bytes, states: list[bytes]) -> bytes:
    """``message`` (a rerun) with more widget states, merged in by a second ``rerun_script``."""
    if not states:
        return message
    widgets = b"".join(bytes_field(FIELDS["WidgetStates.widgets"], state) for state in states)
    client = bytes_field(FIELDS["ClientState.widget_states"], widgets)
    return message + bytes_field(FIELDS["BackMsg.rerun_script"], client)


def widgets_in(data: bytes) -> list[tuple[str, str, tuple[str, ...]]]:
    """The widgets and alerts one ``ForwardMsg`` draws.

    Returns:
        ``(kind, id, options)`` for a selectbox, segmented control or slider (its element
        field number as ``kind``), ``("alert", text, ())`` for an alert.
    """
    found: list[tuple[str, str, tuple[str, ...]]] = []
    for number, value in iter_fields(memoryview(data)):
        if number != FIELDS["ForwardMsg.delta"] or isinstance(value, int):
            continue
        for sub, element in iter_fields(value):
            if sub != FIELDS["Delta.new_element"] or isinstance(element, int):
                continue
            for kind, body in iter_fields(element):
                if isinstance(body, int) or (kind not in _IDS and kind != FIELDS["Element.alert"]):
                    continue
                fields = [(n, bytes(v)) for n, v in iter_fields(body) if not isinstance(v, int)]
                if kind == FIELDS["Element.alert"]:
                    texts = [v for n, v in fields if n == FIELDS["Alert.body"]]
                    found.append(("alert", texts[0].decode() if texts else "", ()))
                    continue
                ids = [v.decode() for n, v in fields if n == _IDS[kind]]
                options = tuple(v.decode() for n, v in fields if n == FIELDS["Selectbox.options"])
                found.append((str(kind), ids[0] if ids else "", options))
    return found


@dataclass
class _Client:
    """One browser-like session that sets widgets by key and waits for its reruns."""

    ws_url: str
    page_url: str
    path: str
    ids: dict[str, str] = field(default_factory=dict)
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    page_hash: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    connection: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Get the page, connect, load it."""
        cookies = http.cookiejar.CookieJar()
        url = f"{self.page_url}/{self.path}"
        self.connection = await open_stream(
            self.ws_url, self.page_url, self.path, cookies, FIRST_LOAD_TIMEOUT_S
        )
        self.reader = asyncio.create_task(self._read())
        self.finished.clear()
        await self.connection.send(encode_rerun([], page_name=self.path, url=url))
        await asyncio.wait_for(self.finished.wait(), STEP_TIMEOUT_S)

    async def send(self, changes: dict[str, Any]) -> None:
        """Set widgets (by key) and ask for a rerun, as a browser does on a change."""
        self.values.update(changes)
        missing = [key for key in self.values if key not in self.ids]
        if missing or self.connection is None:
            raise ClientError(f"the {self.path} page shows no {', '.join(missing)}")
        strings = [
            WidgetValue(self.ids[k], "string_value", v)
            for k, v in self.values.items()
            if isinstance(v, str)
        ]
        arrays = [
            array_state(self.ids[k], v) for k, v in self.values.items() if isinstance(v, list)
        ]
        url = f"{self.page_url}/{self.path}"
        message = encode_rerun(strings, page_script_hash=self.page_hash, url=url)
        self.finished.clear()
        await self.connection.send(with_arrays(message, arrays))

    async def set_and_wait(self, changes: dict[str, Any]) -> None:
        """:meth:`send`, then wait for the rerun to end."""
        await self.send(changes)
        await asyncio.wait_for(self.finished.wait(), STEP_TIMEOUT_S)

    async def until(self, key: str) -> None:
        """Wait until the page has drawn the widget ``key``."""
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while key not in self.ids:
                await asyncio.sleep(0.05)

    async def _read(self) -> None:
        assert self.connection is not None
        with suppress(WebSocketException, OSError):
            async for data in self.connection:
                if isinstance(data, str):
                    continue
                message = decode_forward_msg(data)
                if message.kind == "navigation":
                    self.page_hash = message.page_script_hash
                elif message.kind == "script_finished" and (
                    message.status != FINISHED_EARLY_FOR_RERUN
                ):
                    self.finished.set()
                for kind, text, options in widgets_in(data):
                    if kind == "alert":
                        self.alerts.append(text)
                    elif text:
                        self.ids[text.rsplit("-", 1)[-1]] = text
                        if options:
                            self.options[text.rsplit("-", 1)[-1]] = options

    async def close(self) -> None:
        """Close the websocket (the server ends the session, and cancels its job)."""
        if self.connection is not None:
            with suppress(OSError, TimeoutError, WebSocketException):
                await asyncio.wait_for(self.connection.close(), 10)
        if self.reader is not None:
            self.reader.cancel()


@dataclass
class HeavyStats:
    """What the heavy sessions did."""

    clicks: int = 0
    refusals: int = 0
    ready: int = 0


async def _heavy(client: _Client, stats: HeavyStats, stop: asyncio.Event, smallest: bool) -> None:
    """VGG-16, "Why this class?", occlusion: the smallest window, or a new class every click.

    ``smallest``: ask once for a 1-px window and stride and stay there (refused by the
    scheduler; before it, hours of work). Otherwise ask for the default window and stride
    (32 px: 49 windows) for another class every :data:`HEAVY_CLICK_S`.
    """
    await client.open()
    vgg = next(o for o in client.options["image_model"] if o.startswith("VGG-16"))
    await client.set_and_wait({"image_model": vgg})
    await client.set_and_wait({"image_view": ["Why this class?"]})
    await client.send({"image_why_method": "Occlusion"})  # its sliders appear as it starts
    await client.until("image_why_stride")
    side = [1.0] if smallest else [32.0]
    await client.send({"image_why_window": side, "image_why_stride": side})
    with suppress(TimeoutError):  # refused at once; before the scheduler, it ran for hours
        await asyncio.wait_for(client.finished.wait(), HEAVY_CLICK_S)
    stats.refusals += sum("Not computed" in alert for alert in client.alerts)
    stats.ready += 1
    classes = client.options["image_why_class_vgg16"]
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEAVY_CLICK_S)
        if not smallest and not stop.is_set():
            stats.clicks += 1
            await client.send({"image_why_class_vgg16": classes[stats.clicks % len(classes)]})


async def _classmate(ws_url: str, page_url: str) -> float:
    """Seconds from picking another photo on the Image page (ResNet-18) to its top-5."""
    client = _Client(ws_url, page_url, "classify")
    try:
        await client.open()
        photos = client.options["image_sample_photo"]
        start = time.perf_counter()
        await client.set_and_wait({"image_sample_photo": photos[-1]})
        return time.perf_counter() - start
    finally:
        await client.close()


async def _fairness(ws_url: str, page_url: str, pid: int, duration: float) -> dict[str, Any]:
    stats, stop = HeavyStats(), asyncio.Event()
    clients = [_Client(ws_url, page_url, "classify") for _ in range(HEAVY_SESSIONS)]
    heavy = [
        asyncio.create_task(_heavy(c, stats, stop, smallest=i == 0)) for i, c in enumerate(clients)
    ]
    try:
        while stats.ready < HEAVY_SESSIONS:
            await asyncio.sleep(0.5)
            failed = [task for task in heavy if task.done()]
            if failed:
                failed[0].result()  # raises what stopped it
        draw = asyncio.create_task(
            run_load(LoadPlan("draw", DRAW_SESSIONS, duration, 2.0), ws_url, page_url, pid)
        )
        await asyncio.sleep(duration / 2)
        classmate_s = await _classmate(ws_url, page_url)
        report = await draw
    finally:
        stop.set()
        await asyncio.gather(*heavy, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in clients))
    return {"draw": report, "heavy": stats, "classmate_top5_s": classmate_s}


def heavy_fairness(device: torch.device, quick: bool) -> dict[str, Any]:
    """The key and its notes: 20 students' p95 while 3 classmates keep the heavy line busy.

    Returns:
        ``{"results": {key: value}, "notes": {key: detail}}``; the value is None, and the
        note says why, when a rerun failed or the heavy sessions could not be driven.
    """
    key = "heavy_fairness_draw_p95_ms"
    duration = 10.0 if quick else 60.0
    try:
        with (
            tempfile.TemporaryDirectory(prefix="explorer-fairness-") as folder,
            streamlit_server(device, Path(folder) / "streamlit.log") as server,
        ):
            ws_url, page_url = stream_url(server.url)
            found = asyncio.run(_fairness(ws_url, page_url, server.process.pid, duration))
    except (ClientError, RuntimeError, OSError, TimeoutError, KeyError, StopIteration) as exc:
        return {"results": {key: None}, "notes": {key: f"not measured: {exc!r}"}}
    draw, heavy = found["draw"], found["heavy"]
    if draw["errors"]:
        first = draw["error_messages"][0] if draw["error_messages"] else ""
        return {"results": {key: None}, "notes": {key: f"{draw['errors']} errors: {first}"}}
    summary = {k: draw[k] for k in ("sessions", "reruns", "errors", "p50_ms", "p95_ms", "max_ms")}
    notes = {
        **summary,
        "heavy_sessions": HEAVY_SESSIONS,
        "heavy_clicks": heavy.clicks,
        "heavy_refusals_1px": heavy.refusals,
        "classmate_top5_s": round(found["classmate_top5_s"], 2),
        "server_cores_busy": _cores_busy(draw),
    }
    return {"results": {key: draw["p95_ms"]}, "notes": {key: notes}}


def _cores_busy(report: dict[str, Any]) -> float | None:
    """The server's CPU seconds per second of the window: how many cores it kept busy."""
    per_rerun = report["server_cpu_ms_per_rerun"]
    if per_rerun is None or not report["window_s"]:
        return None
    busy: float = round(float(per_rerun) * report["reruns"] / 1e3 / report["window_s"], 2)
    return busy
