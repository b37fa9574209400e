"""``make run``: the server's script runs once before its URL is printed, so a deep link works."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.hosting.serve import exit_status, probe_url, ready_message, serve, serve_command
from tests.browser import CHROMIUM, CHROMIUM_ARGS, REPO


def test_the_command_hides_streamlits_early_url_and_keeps_the_repo_config() -> None:
    command = serve_command(8501)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("streamlit_app.py")
    assert command[command.index("--logger.hideWelcomeMessage") + 1] == "true"
    assert "--server.address" not in command  # every interface, as before
    assert serve_command(80, "127.0.0.1")[-2:] == ["--server.address", "127.0.0.1"]


def test_urls_and_exit_statuses() -> None:
    assert probe_url(8501) == probe_url(8501, "0.0.0.0") == "http://127.0.0.1:8501"
    assert probe_url(80, "::1") == "http://[::1]:80"
    assert "Local URL: http://localhost:8501" in ready_message(8501, None, True)
    assert "URL: http://10.1.2.3:80" in ready_message(80, "10.1.2.3", True)
    assert "failed its first run" in ready_message(80, "10.1.2.3", False)
    assert exit_status(0) == 0 and exit_status(3) == 3
    assert exit_status(-signal.SIGINT) == 130 and exit_status(-signal.SIGKILL) == 137


def test_a_server_that_cannot_start_prints_no_url_and_gives_its_status() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = io.StringIO()
        assert serve(busy.getsockname()[1], "127.0.0.1", out=out, timeout=60) == 1
    assert out.getvalue() == ""


def make_run_command(port: int) -> list[str]:
    """What ``make run`` runs, read from the Makefile (``make -n``) with this test's venv."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = Path(sys.prefix)
    # Under `make test` the parent make's variables would make this one print its directory.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", f"PORT={port}", f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    line = dry.stdout.strip().splitlines()[-1]
    assert "-m explorer.hosting.serve" in line, dry.stdout
    return shlex.split(line)


@pytest.mark.browser
def test_make_run_prints_its_url_once_a_deep_link_works() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "EXPLORER_OFFLINE": "1", "EXPLORER_DEVICE": "cpu"}
    process = subprocess.Popen(
        make_run_command(port), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:  # until the URL (or the end, if the server died)
            printed.append(line.strip())
            if "URL:" in line:
                break
        assert printed[-1] == f"Local URL: http://localhost:{port}", printed
        assert any("is ready" in line for line in printed)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/train")  # the server's very first browser
            page.get_by_text("Start training").first.wait_for(timeout=120_000)
            nav = page.get_by_test_id("stSidebarNav").inner_text()
            assert "Train a CNN" in nav and "Draw a digit" in nav
            assert "common" not in nav and "canvas" not in nav  # not pages/ as a folder
            assert page.get_by_text("Page not found").count() == 0
            browser.close()
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
