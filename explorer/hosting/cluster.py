"""The local cluster: N ``streamlit run`` replicas behind Debian's nginx, on one machine.

``deploy/local-cluster start|stop|status`` runs ``python -m explorer cluster``. The replicas
listen on free loopback ports; nginx listens on 127.0.0.1:P (8080) with the site configuration
the container setup uses, ``deploy/nginx/cnn-explorer.conf.template``, its two placeholders
filled here and nothing else touched. A small main configuration around it keeps everything
nginx writes (pid, logs, temporary files) in the run directory, so it runs without root, and
``cluster.json`` there records every process (pid and start time), so ``stop`` ends exactly
those and never a process that merely reused a pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from explorer.hosting.client import ClientError, stream_url
from explorer.hosting.procfs import start_ticks
from explorer.hosting.server import (
    REPO,
    app_environment,
    free_port,
    is_healthy,
    log_tail,
    start_logged,
    start_streamlit,
    wait_healthy,
)
from explorer.hosting.session import warm_up

TEMPLATE = REPO / "deploy" / "nginx" / "cnn-explorer.conf.template"
PLACEHOLDERS = ("LISTEN_PORT", "UPSTREAM_SERVERS")
AFFINITY_COOKIE = "explorer_replica"
"""The cookie nginx sets to keep a browser on one replica (see the template)."""
SERVER_PARAMETERS = "max_fails=1 fail_timeout=10s"
"""Passive health on each upstream line: one failed connection marks a replica down 10 s."""
DEFAULT_PORT = 8080
DEFAULT_REPLICAS = 3
MAX_REPLICAS = 32
START_TIMEOUT_S = 240.0  # replicas start together: on 2 cores each import of torch is slower
STOP_TIMEOUT_S = 15.0
RUN_DIR_ENV = "EXPLORER_CLUSTER_DIR"
NGINX_ENV = "EXPLORER_NGINX"
STATE_FILE = "cluster.json"
SITE_FILE = "cnn-explorer.conf"
MAIN_FILE = "nginx.conf"
_PLACEHOLDER = re.compile(r"\$\{(" + "|".join(PLACEHOLDERS) + r")\}")


class ClusterError(Exception):
    """The cluster cannot start, stop or be found; a one-line message for the user."""


# --- the nginx configuration --------------------------------------------------------------


def render_template(template: str, values: Mapping[str, str]) -> str:
    """The template with ``${LISTEN_PORT}`` and ``${UPSTREAM_SERVERS}`` filled, in one pass.

    Nothing else changes: nginx's own ``$variables`` and any other ``${…}`` stay as written.

    Raises:
        ClusterError: ``values`` does not name exactly the two placeholders, or the template
            lacks one of them.
    """
    if set(values) != set(PLACEHOLDERS):
        raise ClusterError(f"the template takes exactly {', '.join(PLACEHOLDERS)}")
    missing = [name for name in PLACEHOLDERS if f"${{{name}}}" not in template]
    if missing:
        raise ClusterError(f"the nginx template has no ${{{missing[0]}}}")
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def upstream_servers(addresses: Sequence[str]) -> str:
    """The ``UPSTREAM_SERVERS`` value: one ``server`` line per replica, with passive health."""
    return "\n    ".join(f"server {address} {SERVER_PARAMETERS};" for address in addresses)


def main_config(run_dir: Path, site: Path, *, worker_user: str | None) -> str:
    """Nginx's main context around the site file: every path it writes is in ``run_dir``.

    ``worker_user`` is for a master started as root: nginx would run its workers as
    ``nobody``, who cannot reach a run directory in root's home; they run as this user instead.
    """

    def path(name: str) -> str:
        return json.dumps(str(run_dir / name))  # a double-quoted nginx string

    temp = [
        f"    {kind}_temp_path {path(f'temp/{kind}')};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    ]
    lines = [
        "# Written by `python -m explorer cluster start`; the site itself is the template's.",
        "daemon off;  # a child of the cluster, its pid recorded in cluster.json",
        "worker_processes 1;",
        f"pid {path('nginx.pid')};",
        f"error_log {path('nginx-error.log')} notice;",
        *([f"user {worker_user};"] if worker_user else []),
        "events {",
        "    worker_connections 1024;  # two a student: browser to nginx, nginx to replica",
        "}",
        "http {",
        "    log_format replica '$remote_addr [$time_local] \"$request\" $status '",
        "                       'upstream=$upstream_addr $request_time s';",
        f"    access_log {path('nginx-access.log')} replica;",
        *temp,
        f"    include {json.dumps(str(site))};",
        "}",
        "",
    ]
    return "\n".join(lines)


def find_nginx() -> str:
    """The nginx binary: ``$EXPLORER_NGINX``, else on PATH, else Debian's /usr/sbin/nginx.

    Raises:
        ClusterError: none is installed, or ``$EXPLORER_NGINX`` names no program.
    """
    chosen = os.environ.get(NGINX_ENV)
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise ClusterError(f"{NGINX_ENV}={chosen} is not an executable")
        return chosen
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ClusterError(f"nginx is not installed (apt-get install nginx, or set {NGINX_ENV})")


def write_nginx_config(run_dir: Path, listen: str, addresses: Sequence[str]) -> Path:
    """Render the template and its main configuration into ``run_dir``; the main file's path."""
    (run_dir / "temp").mkdir(parents=True, exist_ok=True)
    values = {"LISTEN_PORT": listen, "UPSTREAM_SERVERS": upstream_servers(addresses)}
    site = run_dir / SITE_FILE
    site.write_text(render_template(TEMPLATE.read_text(), values))
    worker_user = pwd.getpwuid(0).pw_name if os.geteuid() == 0 else None
    main = run_dir / MAIN_FILE
    main.write_text(main_config(run_dir, site, worker_user=worker_user))
    return main


def nginx_command(nginx: str, run_dir: Path, *options: str) -> list[str]:
    """Nginx with its prefix, configuration and startup error log all in ``run_dir``."""
    prefix, conf, errors = (
        str(run_dir) + "/",
        str(run_dir / MAIN_FILE),
        run_dir / "nginx-error.log",
    )
    return [nginx, "-p", prefix, "-c", conf, "-e", str(errors), *options]


def check_nginx_config(nginx: str, run_dir: Path) -> None:
    """``nginx -t`` on the configuration in ``run_dir``.

    Raises:
        ClusterError: nginx refuses it (with nginx's own words).
    """
    done = subprocess.run(
        nginx_command(nginx, run_dir, "-t", "-q"), capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if "[emerg]" in line or "failed" in line]
        raise ClusterError(f"nginx refused the configuration: {(lines or ['?'])[0]}")


# --- processes ----------------------------------------------------------------------------


@dataclass
class Process:
    """One process of the cluster: what it is, its pid and start time, its address and log."""

    name: str
    pid: int
    started: int
    url: str
    log: str

    @property
    def alive(self) -> bool:
        """True while this very process runs (a reused pid has another start time)."""
        return start_ticks(self.pid) == self.started


@dataclass
class Cluster:
    """What ``cluster.json`` records: the balancer's URL and every process."""

    url: str
    processes: list[Process] = field(default_factory=list)

    @property
    def replicas(self) -> list[Process]:
        """The Streamlit replicas."""
        return [p for p in self.processes if p.name.startswith("replica")]

    def save(self, run_dir: Path) -> None:
        """Write ``cluster.json`` (atomically: ``stop`` may read it at any time)."""
        tmp = run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(run_dir / STATE_FILE)

    @classmethod
    def load(cls, run_dir: Path) -> Cluster | None:
        """The cluster recorded in ``run_dir``, or None when there is none.

        Raises:
            ClusterError: the record is unreadable.
        """
        try:
            data = json.loads((run_dir / STATE_FILE).read_text())
            return cls(data["url"], [Process(**p) for p in data["processes"]])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"cannot read {run_dir / STATE_FILE}: {exc}") from None


def _spawn(name: str, command: list[str], log: Path, url: str, cwd: Path) -> Process:
    """Start one detached process (its own session: it outlives ``start``) and record it."""
    return _record(name, start_logged(command, log, cwd=cwd, detach=True), url, log)


def _record(name: str, process: subprocess.Popen[bytes], url: str, log: Path) -> Process:
    started = start_ticks(process.pid)
    if started is None:
        raise ClusterError(f"{name} exited at once: {log_tail(log)}")
    return Process(name, process.pid, started, url, str(log))


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As nginx binds: connections of a stopped cluster in TIME_WAIT do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def default_run_dir() -> Path:
    """Where the cluster keeps its pids, configuration and logs.

    ``$EXPLORER_CLUSTER_DIR``, else ``$XDG_RUNTIME_DIR/cnn-explorer-cluster``, else
    ``~/.cache/cnn-explorer/cluster``.
    """
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "cnn-explorer-cluster"
    return Path.home() / ".cache" / "cnn-explorer" / "cluster"


# --- start, stop, status ------------------------------------------------------------------


def start_cluster(
    replicas: int, port: int, run_dir: Path, timeout: float = START_TIMEOUT_S
) -> Cluster:
    """Start ``replicas`` replicas and nginx on 127.0.0.1:``port``; return once all serve.

    Each replica is healthy and has served one session of the Draw page (so the first student
    on it neither waits for the models nor meets Streamlit's very first run), and the balancer
    answers. On any failure everything started is stopped again.

    Raises:
        ClusterError: bad arguments, a cluster already running here, a port in use, nginx
            missing or refusing the configuration, or a process that did not start.
    """
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ClusterError(f"--replicas must be 1–{MAX_REPLICAS}, not {replicas}")
    if not 1 <= port <= 65535:
        raise ClusterError(f"--port must be 1–65535, not {port}")
    nginx = find_nginx()
    running = Cluster.load(run_dir)
    if running is not None:
        if any(p.alive for p in running.processes):
            raise ClusterError(
                f"a cluster is already running at {running.url} (run dir {run_dir}); stop it first"
            )
        (run_dir / STATE_FILE).unlink()
    if not _port_is_free(port):
        raise ClusterError(f"127.0.0.1:{port} is in use: choose another --port")
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(f"http://127.0.0.1:{port}")
    try:
        _start(cluster, nginx, replicas, port, run_dir, time.monotonic() + timeout)
    except BaseException:
        _stop(cluster.processes)
        (run_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    return cluster


def _start(
    cluster: Cluster, nginx: str, replicas: int, port: int, run_dir: Path, deadline: float
) -> None:
    ports: list[int] = []
    while len(ports) < replicas:
        candidate = free_port()
        if candidate != port and candidate not in ports:
            ports.append(candidate)
    env = app_environment()
    popens = []
    for number, replica_port in enumerate(ports, 1):
        log = run_dir / f"replica-{number}.log"
        popen = start_streamlit(log, replica_port, env, detach=True)
        popens.append(popen)
        name = f"replica-{number}"
        cluster.processes.append(_record(name, popen, f"http://127.0.0.1:{replica_port}", log))
        cluster.save(run_dir)  # recorded at once: `stop` can end it even if this one dies
    addresses = [f"127.0.0.1:{p}" for p in ports]
    write_nginx_config(run_dir, f"127.0.0.1:{port}", addresses)
    check_nginx_config(nginx, run_dir)
    balancer = _spawn(
        "nginx", nginx_command(nginx, run_dir), run_dir / "nginx.log", cluster.url, cwd=run_dir
    )
    cluster.processes.append(balancer)
    cluster.save(run_dir)
    try:
        for popen, replica in zip(popens, cluster.replicas, strict=True):
            wait_healthy(replica.url, popen, Path(replica.log), deadline, replica.name)
        while not is_healthy(cluster.url):
            if not balancer.alive or time.monotonic() > deadline:
                raise ClusterError(f"nginx did not start: {log_tail(run_dir / 'nginx-error.log')}")
            time.sleep(0.05)
    except RuntimeError as exc:  # wait_healthy's "replica-N did not start: …"
        raise ClusterError(str(exc)) from None
    asyncio.run(_warm_up([replica.url for replica in cluster.replicas]))


async def _warm_up(urls: Sequence[str]) -> None:
    try:
        await asyncio.gather(*(warm_up(*stream_url(url), "draw") for url in urls))
    except ClientError as exc:
        raise ClusterError(f"a replica does not serve the app: {exc}") from None


def _signal(process: Process, signum: int) -> None:
    if process.alive:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signum)  # its own session and group (start_new_session)


def _stop(processes: Sequence[Process], timeout: float = STOP_TIMEOUT_S) -> None:
    """Terminate each process, then wait; kill what is still running after ``timeout``.

    nginx goes first, so that no new requests reach the stopping replicas.
    """
    ordered = sorted(processes, key=lambda p: p.name != "nginx")
    for process in ordered:
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(p.alive for p in ordered) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in ordered:
        _signal(process, signal.SIGKILL)


def stop_cluster(run_dir: Path) -> Cluster | None:
    """Stop every process recorded in ``run_dir``; the cluster that was stopped, or None.

    Raises:
        ClusterError: a process outlived SIGKILL (it is not ours to end).
    """
    cluster = Cluster.load(run_dir)
    if cluster is None:
        return None
    _stop(cluster.processes)
    left = [p for p in cluster.processes if p.alive]
    if left:
        raise ClusterError(f"{left[0].name} (pid {left[0].pid}) did not stop")
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    return cluster


def status_lines(cluster: Cluster) -> tuple[list[str], int]:
    """One line per process, and how many are not serving.

    A process is up and healthy, up but not answering, or down.
    """
    lines, down = [], 0
    for process in cluster.processes:
        if not process.alive:
            state = "down"
        elif is_healthy(process.url):
            state = "serving"
        else:
            state = "up, not answering"
        down += state != "serving"
        lines.append(f"{process.name:<10} {process.url:<24} pid {process.pid:<8} {state}")
    return lines, down


def cmd_cluster(args: argparse.Namespace) -> int:
    """``python -m explorer cluster start|stop|status``; errors are one line, exit 1."""
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir()
    try:
        if args.action == "start":
            replicas = DEFAULT_REPLICAS if args.replicas is None else args.replicas
            port = DEFAULT_PORT if args.port is None else args.port
            started = start_cluster(replicas, port, run_dir)
            print(
                f"{started.url}  ({len(started.replicas)} replicas behind nginx; run dir {run_dir})"
            )
            return 0
        if args.action == "stop":
            stopped = stop_cluster(run_dir)
            if stopped is None:
                print(f"no cluster is running (run dir {run_dir})")
            else:
                print(f"stopped nginx and {len(stopped.replicas)} replicas ({stopped.url})")
            return 0
        cluster = Cluster.load(run_dir)
        if cluster is None:
            raise ClusterError(f"no cluster is running (run dir {run_dir})")
        lines, down = status_lines(cluster)
        print(f"{cluster.url}  (run dir {run_dir})", *lines, sep="\n")
        if down:
            raise ClusterError(f"{down} of {len(lines)} processes are not serving")
        return 0
    except ClusterError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
