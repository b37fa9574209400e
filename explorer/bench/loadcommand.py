"""``python -m explorer loadtest``: many browser-like sessions on a live or spawned server."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from explorer.bench.loadplan import MAX_DURATION_S, MAX_INTERVAL_S, MAX_SESSIONS, LoadPlan
from explorer.bench.loadreport import format_table
from explorer.bench.loadtest import run_load
from explorer.hosting.client import ClientError, stream_url


class LoadTestError(ClientError):
    """A load test that cannot run, with a one-line message for the user."""


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
        ClientError: the server did not start (a :class:`LoadTestError`), or the page could not
            be driven.
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
    except ClientError as exc:  # a bound out of range, or a --url not on this machine
        _error(str(exc))
        return 2
    try:
        if urls is None:
            report = run_spawned(plan, args.device)
        else:
            report = asyncio.run(run_load(plan, *urls, server_pid=None))
            report = {**report, "url": args.url, "spawned": False}
    except ClientError as exc:  # no server, or a page that could not be driven
        _error(str(exc))
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report), flush=True)
    if report["errors"]:
        first = report["error_messages"][0] if report["error_messages"] else ""
        _error(f"{report['errors']} of {report['reruns']} reruns failed; first: {first}")
        return 1
    return 0
