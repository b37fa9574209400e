"""The load generator's run: many browser-like sessions on a live server, one window timed.

Every session (:class:`explorer.hosting.session.Session`) loads the page, then on a fixed
schedule changes the one widget a user would (a drawing on the Draw page's canvas, the layer
of the Image page's layer browser) and times every rerun. The server cannot tell these
sessions from browsers, so what is measured is the real app: script runs, widget state,
fragments, serialisation and the websocket, on the server's own CPU time (``/proc``).

Why plain asyncio + ``websockets`` and not Locust: Locust is not installed and brings gevent,
whose monkey-patching fights asyncio, and its websocket support is a plug-in to write anyway.
Here one event loop holds every session (200 cost a few MB); the generator shares the CPUs
with the server, so it stays cheap: it never builds page trees or decodes whole messages.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from explorer.bench.loadplan import LoadPlan, schedule_offsets
from explorer.bench.loadreport import build_report
from explorer.hosting.procfs import process_cpu_seconds
from explorer.hosting.session import Session, warm_up

START_LEAD_S = 0.1  # the window opens this long after the sessions are told its start


async def run_load(
    plan: LoadPlan, ws_url: str, page_url: str, server_pid: int | None
) -> dict[str, Any]:
    """Warm the server, load the page in every session, then drive them for the window.

    Returns:
        The report (see :func:`explorer.bench.loadreport.build_report`).

    Raises:
        ClientError: the warm-up session could not load or drive the page, or a driver found
            too little to drive.
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
