"""The hosting configuration the speed depends on: Streamlit's options and the server's threads."""

from __future__ import annotations

import gc
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
