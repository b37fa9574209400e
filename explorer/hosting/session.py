"""One browser-like session on a served app: it loads a page, drives its widget, times reruns.

Each session is one websocket to ``/_stcore/stream`` that speaks Streamlit's own protocol
(:mod:`explorer.hosting.messages`), as the browser's frontend does: it loads a page, then
changes the one widget a user would (:mod:`explorer.hosting.drivers`), and times every rerun
from the ``BackMsg`` it sends to the ``script_finished`` that ends it. The server cannot tell
these sessions from browsers. Sessions given the same cookie jar are one browser's tabs: one
replica behind a balancer (:mod:`explorer.hosting.client`).

Errors: an exception element or an ``st.error`` in a rerun, a script that fails to compile,
a wrong or missing prediction (Draw page), a disconnect, or no end of the rerun within
:data:`RERUN_TIMEOUT_S`. A session that disconnects or times out stops.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from explorer.hosting.client import ClientError, open_stream, replica_of
from explorer.hosting.drivers import PAGES, make_driver
from explorer.hosting.messages import Element, Run, WidgetValue, decode_forward_msg, encode_rerun
from explorer.hosting.protobuf import ProtocolError

RERUN_TIMEOUT_S = 30.0
FIRST_LOAD_TIMEOUT_S = 60.0  # a first load waits behind every other session's first load
LATE_TOLERANCE_S = 0.001  # a send this much past its slot is on time (clock granularity)


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
            self.connection = await open_stream(
                self.ws_url, self.page_url, path, self.cookies, FIRST_LOAD_TIMEOUT_S
            )
            self.stats.replica = replica_of(self.connection)
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


async def warm_up(ws_url: str, page_url: str, page: str) -> None:
    """One session loads the page and makes one input, so no measured rerun pays first use.

    Raises:
        ClientError: the session could not load or drive the page.
    """
    session = Session(-1, ws_url, page_url, page)
    try:
        if not await session.load():
            raise ClientError(f"cannot load the {page} page ({ws_url}): {session.stats.stopped}")
        await session.step()
        if session.stats.problems:
            raise ClientError(f"warm-up on the {page} page: {session.stats.problems[0]}")
    finally:
        await session.close()
