"""The hosting configuration the speed depends on: Streamlit's options and the server's threads."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tomllib

import pytest
import torch

from explorer.models.device import SERVER_THREADS_ENV, SWITCH_INTERVAL_S, configure_server_threads
from tests.conftest import REPO


def test_streamlit_runs_without_post_run_gc_or_file_watcher() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False


@pytest.mark.parametrize(("env", "expected"), [(None, 1), ("3", 3), ("0", 1), ("many", 1)])
def test_server_threads(env: str | None, expected: int, monkeypatch: pytest.MonkeyPatch) -> None:
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    if env is None:
        monkeypatch.delenv(SERVER_THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(SERVER_THREADS_ENV, env)
    try:
        assert configure_server_threads() == expected
        assert torch.get_num_threads() == expected
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)


def test_frozen_heap_is_out_of_the_collectors_reach() -> None:
    from streamlit.testing.v1 import AppTest  # noqa: F401  (pages/common imports streamlit)

    sys.path.insert(0, str(REPO))
    try:
        from pages.common import freeze_heap
    finally:
        sys.path.remove(str(REPO))
    before = gc.get_freeze_count()
    kept = [[object()] for _ in range(1000)]  # tracked containers alive now
    try:
        freeze_heap()
        assert gc.get_freeze_count() >= before + len(kept)
        assert all(not any(k is o for o in gc.get_objects(generation=2)) for k in kept[:2])
    finally:
        gc.unfreeze()


THREAD_PROBE = """
import json, sys, threading
import torch
from streamlit.testing.v1 import AppTest

def seen() -> list[float]:
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return [torch.get_num_threads(), found[0], sys.getswitchinterval()]

torch.set_num_threads(2)
sys.setswitchinterval(0.005)
runs = {}
for name, script in (("page", sys.argv[1]), ("app", sys.argv[2])):
    assert not AppTest.from_file(script, default_timeout=120).run().exception
    runs[name] = seen()
print(json.dumps(runs))
"""


def test_a_page_keeps_the_threads_and_the_apps_entry_script_sets_them() -> None:
    # A fresh process, whatever this one imported before: [this thread's torch threads, a new
    # thread's, the switch interval] after a page that imports pages/common, then the app.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(SERVER_THREADS_ENV, None)
    scripts = [str(REPO / "pages" / "home.py"), str(REPO / "streamlit_app.py")]
    done = subprocess.run(
        [sys.executable, "-c", THREAD_PROBE, *scripts],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["page"] == [2, 2, pytest.approx(0.005)]  # importing a page set nothing
    assert runs["app"][1:] == [1, pytest.approx(SWITCH_INTERVAL_S)]  # the server's policy
