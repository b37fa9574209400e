"""The local cluster: nginx's template rendered, and 3 replicas behind Debian's nginx for real.

Clusters are started with ``deploy/local-cluster`` as a person would. The tests that only use
one (status, sessions and uploads through the balancer) share one for the module, checked
whole before each; a test that kills a replica or stops the cluster starts its own. So each
test passes alone and in any order. Loopback only. No test asserts a timing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from explorer.bench.loadplan import LoadPlan
from explorer.bench.loadtest import run_load
from explorer.cli import main
from explorer.hosting.client import REPLICA_HEADER, served_by, stream_url
from explorer.hosting.cluster import (
    AFFINITY_COOKIE,
    PLACEHOLDERS,
    SERVER_PARAMETERS,
    TEMPLATE,
    Cluster,
    ClusterError,
    Process,
    check_nginx_config,
    find_nginx,
    render_template,
    upstream_servers,
    write_nginx_config,
)
from explorer.hosting.procfs import start_ticks
from explorer.hosting.server import CHROMIUM, CHROMIUM_ARGS, free_port
from explorer.hosting.session import Session
from explorer.inputs.strokes import DIGIT_STROKES

REPO = Path(__file__).resolve().parents[1]
LOCAL_CLUSTER = REPO / "deploy" / "local-cluster"
PHOTOS = REPO / "assets" / "photos"
ADDRESSES = ["127.0.0.1:8501", "127.0.0.1:8502", "10.0.0.7:8501"]


def _nginx() -> str | None:
    try:
        return find_nginx()
    except ClusterError:
        return None


NGINX = _nginx()
NO_NGINX = "nginx not installed (apt-get install nginx)"
needs_nginx = pytest.mark.skipif(NGINX is None, reason=NO_NGINX)
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"
)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- the template ---------------------------------------------------------------------------


def _rendered(listen: str = "127.0.0.1:8080") -> str:
    values = {"LISTEN_PORT": listen, "UPSTREAM_SERVERS": upstream_servers(ADDRESSES)}
    return render_template(TEMPLATE.read_text(), values)


def test_rendering_fills_the_two_placeholders_and_nothing_else() -> None:
    template = TEMPLATE.read_text()
    rendered = _rendered()
    assert "${" not in rendered and "listen 127.0.0.1:8080;" in rendered
    for address in ADDRESSES:  # every replica, with its passive health check
        assert rendered.count(f"server {address} {SERVER_PARAMETERS};") == 1
    # Outside the two filled spots the text is the template's, byte for byte.
    before, rest = template.split("${LISTEN_PORT}")
    assert rendered.startswith(before.replace("${UPSTREAM_SERVERS}", upstream_servers(ADDRESSES)))
    assert rendered.endswith(rest)
    # nginx's own variables are untouched, each as often as in the template.
    variables = re.findall(r"\$[a-z_]+\b", template)
    assert {"$http_host", "$http_upgrade", "$request_id", "$upstream_addr"} <= set(variables)
    assert sorted(re.findall(r"\$[a-z_]+\b", rendered)) == sorted(variables)


def test_each_placeholder_appears_once_and_never_in_a_comment() -> None:
    # envsubst (the nginx image) replaces $NAME and ${NAME} anywhere, comments too; a
    # multi-line UPSTREAM_SERVERS inside a comment would leave server lines outside upstream.
    template = TEMPLATE.read_text()
    assert sorted(re.findall(r"\$\{(\w+)\}", template)) == sorted(PLACEHOLDERS)
    for line in template.splitlines():
        if line.lstrip().startswith("#"):
            assert not re.search(r"\$\{?(" + "|".join(PLACEHOLDERS) + r")\b", line), line
    assert f"$cookie_{AFFINITY_COOKIE}" in template and f"{AFFINITY_COOKIE}=$request_id" in template


def test_rendering_is_one_pass_over_exactly_the_two_names() -> None:
    template = "listen ${LISTEN_PORT}; ${HOME} $host ${UPSTREAM_SERVERS} $LISTEN_PORT"
    values = {"LISTEN_PORT": "${UPSTREAM_SERVERS}", "UPSTREAM_SERVERS": "server a:1;"}
    assert render_template(template, values) == (
        "listen ${UPSTREAM_SERVERS}; ${HOME} $host server a:1; $LISTEN_PORT"
    )
    with pytest.raises(ClusterError, match="exactly"):
        render_template(template, {"LISTEN_PORT": "1"})
    with pytest.raises(ClusterError, match="exactly"):
        render_template(template, {**values, "HOME": "/"})
    with pytest.raises(ClusterError, match="no \\$\\{UPSTREAM_SERVERS\\}"):
        render_template("listen ${LISTEN_PORT};", values)


@needs_nginx
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    assert NGINX is not None
    main_file = write_nginx_config(tmp_path, "127.0.0.1:8080", ADDRESSES)
    done = subprocess.run(
        [NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(main_file), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "syntax is ok" in done.stderr, done.stderr
    check_nginx_config(NGINX, tmp_path)  # the same check `start` runs
    # Everything nginx writes stays in the run directory.
    paths = re.findall(r'"(/[^"]+)"', main_file.read_text())
    assert len(paths) >= 8 and all(p.startswith(str(tmp_path)) for p in paths)


@needs_nginx
def test_a_configuration_nginx_refuses_is_one_error(tmp_path: Path) -> None:
    assert NGINX is not None
    write_nginx_config(tmp_path, "127.0.0.1:8080", ["127.0.0.1:1 max_fails=many"])
    with pytest.raises(ClusterError, match=r"nginx refused the configuration: .*max_fails"):
        check_nginx_config(NGINX, tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["start", "--replicas", "0"], "--replicas must be 1–32, not 0"),
        (["start", "--port", "70000"], "--port must be 1–65535"),
        (["status"], "no cluster is running"),
    ],
)
def test_refusals_are_one_error_line(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", *args, "--run-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert says in _one_error_line(captured.err) and captured.out == ""


def test_an_nginx_that_is_not_there_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXPLORER_NGINX", str(tmp_path / "nginx"))
    assert main(["cluster", "start", "--run-dir", str(tmp_path)]) == 1
    assert "EXPLORER_NGINX=" in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_stopping_no_cluster_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "stop", "--run-dir", str(tmp_path)]) == 0
    assert "no cluster is running" in capsys.readouterr().out


@needs_nginx
def test_a_port_in_use_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["cluster", "start", "--port", str(port), "--run-dir", str(tmp_path)]) == 1
    assert f"127.0.0.1:{port} is in use" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "cluster.json").exists()


# --- the running cluster --------------------------------------------------------------------


def _local_cluster(
    *args: str, run_dir: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPLORER_PYTHON": sys.executable}
    return subprocess.run(
        [str(LOCAL_CLUSTER), *args, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _start_cluster(run_dir: Path, replicas: int) -> Cluster:
    """``deploy/local-cluster start`` with ``replicas`` replicas on a free port."""
    if NGINX is None:
        pytest.skip(NO_NGINX)
    port = free_port()
    done = _local_cluster(
        "start", "--replicas", str(replicas), "--port", str(port), run_dir=run_dir, timeout=400
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"http://127.0.0.1:{port} ") and done.stderr == ""
    started = Cluster.load(run_dir)
    assert started is not None and len(started.replicas) == replicas
    return started


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    """3 replicas behind nginx for the tests that leave it as they found it."""
    run_dir = tmp_path_factory.mktemp("cluster")
    started = _start_cluster(run_dir, 3)
    try:
        yield started, run_dir
    finally:
        _local_cluster("stop", run_dir=run_dir)


@pytest.fixture
def cluster(shared_cluster: tuple[Cluster, Path]) -> tuple[Cluster, Path]:
    """The shared cluster, every process of it checked alive first."""
    started, _ = shared_cluster
    assert all(p.alive for p in started.processes), "a test broke the shared cluster"
    return shared_cluster


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    """A cluster of this test's own, to kill a replica of or to stop.

    2 replicas: the fewest that leave one serving when the other dies.
    """
    run_dir = tmp_path / "cluster"
    run_dir.mkdir()
    started = _start_cluster(run_dir, 2)
    try:
        yield started, run_dir
    finally:
        _local_cluster("stop", run_dir=run_dir)  # says "no cluster is running" once stopped


def _by_address(cluster: Cluster) -> dict[str, Process]:
    return {p.url.removeprefix("http://"): p for p in cluster.replicas}


def _kill(process: Process) -> None:
    """Kill a replica as a crash would, and wait until it is gone."""
    os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive


def _replica_logs_are_clean(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        assert "Traceback" not in Path(replica.log).read_text(), replica.log


def test_status_and_a_second_start(cluster: tuple[Cluster, Path]) -> None:
    started, run_dir = cluster
    assert len(started.replicas) == 3 and all(p.alive for p in started.processes)
    status = _local_cluster("status", run_dir=run_dir)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(" serving") == 4
    again = _local_cluster("start", "--port", str(free_port()), run_dir=run_dir)
    assert again.returncode == 1 and again.stdout == ""
    assert "already running" in _one_error_line(again.stderr)


def test_nine_sessions_through_nginx_each_see_their_own_prediction_on_several_replicas(
    cluster: tuple[Cluster, Path],
) -> None:
    started, run_dir = cluster
    access_log = run_dir / "nginx-access.log"
    before = access_log.read_text().count('"GET /_stcore/stream ')
    report = asyncio.run(run_load(LoadPlan("draw", 9, 4.0, 1.0), *stream_url(started.url), None))
    assert report["errors"] == 0 and report["wrong_predictions"] == 0, report["error_messages"]
    digits = sorted(DIGIT_STROKES)
    for row in report["per_session"]:
        own = {digits[row["session"] % 3], digits[(row["session"] + 1) % 3]}
        assert row["reruns"] >= 2 and set(row["inputs"]) == own and row["ok"] == row["inputs"]
        assert row["replica"] in _by_address(started)
    replicas = report["replicas"]
    assert sum(replicas.values()) == 9 and set(replicas) <= set(_by_address(started))
    assert len(replicas) > 1  # 9 random cookies on one of 3 replicas: p = 3⁻⁸ ≈ 1.5e-4
    # nginx's own access log agrees: one websocket per session, plus the warm-up's.
    streams: list[str] = []
    deadline = time.monotonic() + 10  # nginx logs a websocket once it has closed
    while len(streams) < 10 and time.monotonic() < deadline:
        log = access_log.read_text().splitlines()
        streams = [line for line in log if '"GET /_stcore/stream ' in line][before:]
        time.sleep(0.1)
    upstreams = [served_by(line.split("upstream=")[1].rsplit(" ", 2)[0]) for line in streams]
    assert len(streams) == 10 and set(replicas) <= set(upstreams)


def _classify_and_upload(page: Any, url: str, photo: Path) -> None:
    page.goto(f"{url}/classify")
    page.get_by_text("what the network sees").first.wait_for(timeout=120_000)
    page.locator(".st-key-image_source").get_by_text("Upload").click()
    uploader = page.locator(".st-key-image_upload input[type=file]")
    uploader.wait_for(state="attached", timeout=30_000)
    with page.expect_response(lambda r: "/_stcore/upload_file/" in r.url) as upload:
        uploader.set_input_files(str(photo))
    assert upload.value.ok, upload.value.status
    page.get_by_text("top 5").first.wait_for(timeout=60_000)


def _no_error_on(page: Any) -> None:
    assert page.get_by_test_id("stException").count() == 0
    content = page.content()
    assert "Traceback" not in content and "invalid session_id" not in content


def _responses_of(page: Any) -> list[Any]:
    """Every HTTP response the page gets from now on, in a list that grows.

    Only network ones: a component's script made in the page (``blob:``) never reaches nginx.
    """
    responses: list[Any] = []
    page.on(
        "response",
        lambda response: responses.append(response) if response.url.startswith("http") else None,
    )
    return responses


def _upstreams(responses: list[Any]) -> set[str | None]:
    return {served_by(r.headers.get(REPLICA_HEADER.lower())) for r in responses}


@pytest.mark.browser
@needs_chromium
def test_uploads_through_the_balancer_in_three_browsers(cluster: tuple[Cluster, Path]) -> None:
    from playwright.sync_api import sync_playwright

    started, _ = cluster
    photos = ["cat.jpg", "coffee.jpg", "rocket.jpg"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for photo in photos:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            responses = _responses_of(page)
            _classify_and_upload(page, started.url, PHOTOS / photo)
            _no_error_on(page)
            # Every request of this browser, the upload included, reached one replica.
            assert len(_upstreams(responses)) == 1
            assert _upstreams(responses) <= set(_by_address(started))
            assert [c["name"] for c in context.cookies()].count(AFFINITY_COOKIE) == 1
            # Its only failures: the front end's two probes for a server under /classify/.
            failed = [r.url for r in responses if r.status >= 400]
            assert all(u.startswith(f"{started.url}/classify/_stcore/") for u in failed)
            context.close()
        browser.close()
    _replica_logs_are_clean(started)


def test_a_killed_replicas_sessions_reconnect_elsewhere_the_others_stay(
    own_cluster: tuple[Cluster, Path],
) -> None:
    started, _ = own_cluster
    replicas = _by_address(started)
    ws_url, page_url = stream_url(started.url)

    async def scenario() -> None:
        sessions: list[Session] = []
        try:
            # Sessions until one replica holds at least two and another at least one.
            while len(sessions) < 30:
                session = Session(len(sessions), ws_url, page_url, "draw")
                sessions.append(session)
                assert await session.load(), session.stats.stopped
                held = [s.stats.replica for s in sessions]
                victim = max(set(held), key=held.count)
                if held.count(victim) >= 2 and len(set(held)) >= 2:
                    break
            on_victim = [s for s in sessions if s.stats.replica == victim]
            others = [s for s in sessions if s.stats.replica != victim]
            assert len(on_victim) >= 2 and others
            assert victim is not None
            _kill(replicas[victim])
            for session in others:  # untouched: the same websocket on the same replica
                run = await session.step()
                assert run is not None and run.problems == [] and run.prediction is not None
            for session in on_victim:  # their websocket is gone …
                assert await session.step() is None and session.stats.stopped
            # … and the same browser (its cookie) reconnects through nginx to a live replica,
            # where it is predicted again.
            back = [Session(s.stats.index, ws_url, page_url, "draw", s.cookies) for s in on_victim]
            sessions += back
            for session in back:
                assert await session.load(), session.stats.stopped
                assert session.stats.replica in replicas and session.stats.replica != victim
                run = await session.step()
                assert run is not None and run.problems == [] and run.prediction is not None
            # New sessions avoid the dead replica.
            fresh = [Session(100 + i, ws_url, page_url, "draw") for i in range(6)]
            sessions += fresh
            for session in fresh:
                assert await session.load(), session.stats.stopped
                assert session.stats.replica in replicas and session.stats.replica != victim
                run = await session.step()
                assert run is not None and run.problems == []
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    asyncio.run(scenario())
    _replica_logs_are_clean(started)


@pytest.mark.browser
@needs_chromium
def test_a_browser_on_a_killed_replica_recovers_and_uploads_again(
    own_cluster: tuple[Cluster, Path],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    started, _ = own_cluster
    replicas = _by_address(started)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        responses = _responses_of(page)
        _classify_and_upload(page, started.url, PHOTOS / "cat.jpg")
        (victim,) = _upstreams(responses)
        assert victim in replicas and replicas[victim].alive
        picture = page.locator("[data-testid=stImage]", has_text="what the network sees")
        seen = picture.locator("img")
        cat = seen.get_attribute("src")  # a data URI: the picture is sent inside the page
        # The replica dies under the page; its front end reconnects through nginx.
        with page.expect_websocket(timeout=60_000):
            _kill(replicas[victim])
        page.locator("[data-test-connection-state=CONNECTED]").wait_for(timeout=60_000)
        responses.clear()
        # It works again: a new upload reaches a live replica, which shows the new photo.
        uploader = page.locator(".st-key-image_upload input[type=file]")
        with page.expect_response(
            lambda r: "/_stcore/upload_file/" in r.url and r.request.method == "PUT"
        ) as upload:
            uploader.set_input_files(str(PHOTOS / "coffee.jpg"))
        assert upload.value.ok, upload.value.status
        expect(seen).not_to_have_attribute("src", cat or "", timeout=60_000)
        page.locator("[data-test-script-state=notRunning]").wait_for(timeout=60_000)
        assert page.get_by_text("top 5").count() >= 1
        (survivor,) = _upstreams(responses) - {None}  # everything since the kill: one replica
        assert survivor in replicas and survivor != victim and replicas[survivor].alive
        _no_error_on(page)
        browser.close()
    _replica_logs_are_clean(started)


def _descendants(pids: set[int]) -> set[int]:
    """``pids`` and every process below them (nginx's workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    found = set(pids)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def test_stop_leaves_no_process_behind(own_cluster: tuple[Cluster, Path]) -> None:
    started, run_dir = own_cluster
    alive = {p.pid for p in started.processes if p.alive}
    assert len(alive) == 3  # nginx and its 2 replicas
    family = {pid: start_ticks(pid) for pid in _descendants(alive)}
    assert len(family) > len(alive)  # nginx's worker too
    done = _local_cluster("stop", run_dir=run_dir)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("stopped nginx and 2 replicas")
    # None of them runs any more (a pid reused since has another start time).
    assert all(start_ticks(pid) != ticks for pid, ticks in family.items() if ticks is not None)
    assert not (run_dir / "cluster.json").exists()
    for process in started.processes:
        try:
            urllib.request.urlopen(f"{process.url}/_stcore/health", timeout=2)
        except OSError:
            continue
        raise AssertionError(f"{process.url} still answers")
    again = _local_cluster("stop", run_dir=run_dir)
    assert again.returncode == 0 and "no cluster is running" in again.stdout
