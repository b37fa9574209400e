"""The real app, started as users start it: ``streamlit run`` on a free local port.

The benchmarks, the load generator and the browser tests all start the server here, so they
measure and test the same thing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.figures.style import VALIDATE_ENV

REPO = Path(__file__).resolve().parents[2]
APP_FILE = REPO / "streamlit_app.py"
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run`` process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str


def streamlit_command(port: int) -> list[str]:
    """``streamlit run streamlit_app.py`` on 127.0.0.1:``port``: headless, no file watcher."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE)]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    return command


def app_environment(**overrides: str) -> dict[str, str]:
    """This process's environment for the app as users run it (figure validation off)."""
    env = {**os.environ, **overrides}
    env.pop(VALIDATE_ENV, None)
    return env


def is_healthy(url: str) -> bool:
    """True when the Streamlit server (or a balancer) at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.read().strip() == b"ok")
    except OSError:
        return False


SCRIPT_HEALTH = "/_stcore/script-health-check"
"""Runs the app's script once: a deep link then works for the very first browser (see
.streamlit/config.toml)."""


def warm_up(url: str, timeout: float = 120.0) -> bool:
    """Run the app's script once through Streamlit's script health check; True when it ran."""
    try:
        with urllib.request.urlopen(f"{url}{SCRIPT_HEALTH}", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, deadline: float, what: str = "streamlit"
) -> None:
    """Wait until ``url`` is healthy, while ``process`` runs and the clock is before ``deadline``.

    Raises:
        RuntimeError: the process ended or the deadline passed first (with its log's tail).
    """
    while not is_healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log_tail(log)}")
        time.sleep(0.05)


def start_logged(
    command: list[str],
    log: Path,
    *,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    detach: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log`` and no input; returns at once.

    ``detach`` puts it in its own session, so it outlives the process that started it and
    a terminal's Ctrl-C does not reach it.
    """
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=detach,
        )


def start_streamlit(
    log: Path, port: int, env: dict[str, str], *, detach: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``streamlit run`` on ``port`` with its output in ``log``; returns at once."""
    return start_logged(streamlit_command(port), log, env=env, detach=detach)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not end within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def streamlit_server(device: torch.device, log: Path, timeout: float = 120.0) -> Iterator[Server]:
    """``streamlit run streamlit_app.py`` on a free port, healthy, until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = app_environment(EXPLORER_OFFLINE="1", EXPLORER_DEVICE=str(device))
    process = start_streamlit(log, port, env)
    try:
        wait_healthy(url, process, log, time.monotonic() + timeout)
        warm_up(url, timeout)
        yield Server(process, url)
    finally:
        stop_process(process)


def log_tail(path: Path, lines: int = 3) -> str:
    """The last ``lines`` lines of a log joined with `` | `` (``(no log)`` if unreadable)."""
    try:
        return " | ".join(path.read_text().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
