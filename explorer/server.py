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

from explorer.figures import VALIDATE_ENV

REPO = Path(__file__).resolve().parents[1]
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


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MB, where /proc has it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run`` process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str


@contextmanager
def streamlit_server(device: torch.device, log: Path, timeout: float = 120.0) -> Iterator[Server]:
    """``streamlit run streamlit_app.py`` on a free port, healthy, until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE)]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    env = {**os.environ, "EXPLORER_OFFLINE": "1", "EXPLORER_DEVICE": str(device)}
    env.pop(VALIDATE_ENV, None)  # the app as users run it
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {log_tail(log)}")
                time.sleep(0.05)
            yield Server(process, url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
