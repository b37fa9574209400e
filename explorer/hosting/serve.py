"""``make run``: serve the app in the foreground, its script run once before the URL is shown.

Until the app's script has run once, Streamlit treats ``pages/`` as a legacy pages folder:
the first visitor of a deep link (``/train``) would get every module of ``pages/`` as a page.
So this starts ``streamlit run``, waits for its health check, runs the script once through
``/_stcore/script-health-check`` (as the launcher, Docker and the Kubernetes probes do) and
only then prints the URL; Streamlit's own URL message, printed before the warm-up, is hidden.
The server's log stays on this terminal; Ctrl-C stops it, and its exit status is this one's.

    python -m explorer.hosting.serve [--port 8501] [--address 0.0.0.0]
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from explorer.hosting.server import APP_FILE, REPO, is_healthy, warm_up

WILDCARDS = ("", "0.0.0.0", "::")
"""Addresses that mean every interface (Streamlit's default is every interface)."""
STOP_WAIT_S = 10.0
"""How long a stopped server may take to close its sessions before it is terminated."""


def serve_command(port: int, address: str | None = None) -> list[str]:
    """``streamlit run streamlit_app.py`` on ``port`` without Streamlit's early URL message.

    The rest of the configuration is the repo's ``.streamlit/config.toml`` (headless, no file
    watcher, the script health check on).
    """
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE)]
    command += ["--server.port", str(port), "--logger.hideWelcomeMessage", "true"]
    if address is not None:
        command += ["--server.address", address]
    return command


def probe_url(port: int, address: str | None = None) -> str:
    """Where this machine reaches the server: loopback when it serves every interface."""
    if address in (None, *WILDCARDS):
        return f"http://127.0.0.1:{port}"
    host = f"[{address}]" if address and ":" in address else address
    return f"http://{host}:{port}"


def network_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.254.254.254", 1))
            return str(sock.getsockname()[0])
        except OSError:
            return None


def ready_message(port: int, address: str | None, warmed: bool) -> str:
    """What ``make run`` prints once the app is ready: its URLs, as Streamlit words them."""
    if warmed:
        lines = ["  CNN Explorer is ready: its pages are up, deep links such as /train work."]
    else:
        lines = [
            "  CNN Explorer is up, but its script failed its first run (see the log above):",
            "  until it runs, a deep link such as /train may list every module of pages/.",
        ]
    lines.append("")
    if address in (None, *WILDCARDS):
        lines.append(f"  Local URL: http://localhost:{port}")
        found = network_address()
        if found is not None:
            lines.append(f"  Network URL: http://{found}:{port}")
    else:
        lines.append(f"  URL: {probe_url(port, address)}")
    return "\n".join(["", *lines, ""])


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool | None:
    """Wait for the server's health check, then run its script once.

    Returns:
        True when the script ran, False when it failed, None when the server ended (or
        never answered within ``timeout`` seconds) first.
    """
    deadline = time.monotonic() + timeout
    while not is_healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return warm_up(url, timeout)


def stop(process: subprocess.Popen[bytes], wait: float = STOP_WAIT_S) -> int:
    """Stop the server as Ctrl-C does (it may have had the terminal's SIGINT already)."""
    try:
        return process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def serve(
    port: int = 8501, address: str | None = None, out: TextIO = sys.stdout, timeout: float = 300
) -> int:
    """Serve the app in the foreground until it stops; its exit status.

    The URL is printed once the app's script has run (see the module's docstring). A server
    that does not answer within ``timeout`` seconds is stopped (status 1).
    """
    process = subprocess.Popen(serve_command(port, address), cwd=REPO)

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        warmed = wait_ready(probe_url(port, address), process, timeout)
        if warmed is None and process.poll() is None:
            print(f"error: the app did not answer within {timeout:g} s", file=sys.stderr)
            return max(exit_status(stop(process)), 1)
        if warmed is not None:
            print(ready_message(port, address, warmed), file=out, flush=True)
        return exit_status(process.wait())
    except KeyboardInterrupt:
        return exit_status(stop(process))
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            stop(process)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m explorer.hosting.serve``: what ``make run`` runs."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer.hosting.serve",
        description="Serve CNN Explorer in the foreground; print its URL once its script ran.",
    )
    parser.add_argument("--port", type=int, default=8501, help="the port (default 8501)")
    parser.add_argument(
        "--address", default=None, help="the address to serve on (default: every interface)"
    )
    args = parser.parse_args(argv)
    return serve(args.port, args.address)


if __name__ == "__main__":
    raise SystemExit(main())
