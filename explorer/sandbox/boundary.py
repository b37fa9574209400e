"""The execution boundary: a student's file is read only in a sandboxed worker process.

Where it can (Linux with user namespaces and Debian's ``bubblewrap``, the sandbox Flatpak
uses), the worker runs with no network, no view of the server's files beyond Python and this
package (read-only), a private ``/tmp``, none of the server's environment, as an unprivileged
user, in its own process, PID and IPC namespaces, and dies with the server. Everywhere, it
runs under a memory, CPU-time and file-size limit it sets itself before reading the request
(see :mod:`.worker`) and a wall-clock limit the server enforces by killing it; its answer is
read with a size cap and parsed as plain data (:mod:`.plain`). One worker reads one file; a
fresh one is started ahead of time, so a request does not wait for torch's import. Callers
name the module whose tasks the worker runs (see :mod:`.worker`); this package imports none.

``$EXPLORER_SANDBOX``: ``auto`` (default: bubblewrap where it works, else a plain process
with the limits, reported by :func:`sandbox_kind`), ``bubblewrap`` (refuse to run without
it), ``process``. ``$EXPLORER_SANDBOX_SECONDS`` (12), ``$EXPLORER_SANDBOX_MEMORY_MB`` (1536),
``$EXPLORER_SANDBOX_WORKERS`` (1 at once).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.sandbox.protocol import FrameError, parse_frame, write_frame

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the ``explorer`` package (bound read-only into the sandbox)."""
MAX_ANSWER_BYTES = 700 * 1024 * 1024
"""Largest answer read from a worker: 150 M float32 parameters and the graph."""


class SandboxError(RuntimeError):
    """The worker refused the file, ran out of a limit, or died; a message for the user."""


@dataclass(frozen=True)
class Limits:
    """What one worker may use."""

    wall_s: float = 12.0
    memory_mb: int = 1536
    cpu_s: int = 12

    @classmethod
    def from_env(cls) -> Limits:
        """The limits, from ``$EXPLORER_SANDBOX_SECONDS`` and ``$EXPLORER_SANDBOX_MEMORY_MB``."""
        seconds = float(os.environ.get("EXPLORER_SANDBOX_SECONDS", "12"))
        memory = int(os.environ.get("EXPLORER_SANDBOX_MEMORY_MB", "1536"))
        return cls(seconds, memory, max(1, int(seconds)))


@functools.cache
def sandbox_kind() -> str:
    """``"bubblewrap"`` where the full sandbox works here, else ``"process"``.

    Raises:
        SandboxError: ``$EXPLORER_SANDBOX=bubblewrap`` and bubblewrap does not work here.
    """
    wanted = os.environ.get("EXPLORER_SANDBOX", "auto")
    if wanted == "process":
        return "process"
    works = shutil.which("bwrap") is not None and _bwrap_works()
    if works:
        return "bubblewrap"
    if wanted == "bubblewrap":
        raise SandboxError(
            "this server requires bubblewrap for model files, and it does not work here"
        )
    return "process"


def _bwrap_works() -> bool:
    try:
        done = subprocess.run(
            [*bwrap_arguments(), "/bin/true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def bwrap_arguments() -> list[str]:
    """Bubblewrap's arguments: what the worker sees, and what it does not (probed by tests)."""
    binds: list[str] = []
    for path in sorted(
        {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    ):
        binds += ["--ro-bind", str(path), str(path)]
    system = []
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            system += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            system += ["--ro-bind", str(target), str(target)]
    return [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--uid", "65534",
        "--gid", "65534",
        "--clearenv",
        "--ro-bind", "/usr", "/usr",
        *system,
        *binds,
        "--ro-bind", str(PACKAGE_ROOT / "explorer"), "/sandbox/explorer",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--chdir", "/tmp",
        "--setenv", "PYTHONPATH", "/sandbox",
        "--setenv", "HOME", "/tmp",
        "--setenv", "OMP_NUM_THREADS", "1",
    ]  # fmt: skip


def _command(limits: Limits, tasks: str) -> tuple[list[str], dict[str, str] | None]:
    worker = ["-m", "explorer.sandbox.worker", tasks, str(limits.memory_mb), str(limits.cpu_s)]
    if sandbox_kind() == "bubblewrap":
        return [*bwrap_arguments(), sys.executable, "-I", "-c", _ISOLATED_START, *worker[2:]], None
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(PACKAGE_ROOT),
        "HOME": "/tmp",
        "OMP_NUM_THREADS": "1",
    }
    return [sys.executable, *worker], env


_ISOLATED_START = (
    "import sys; sys.path.insert(0, '/sandbox'); sys.argv[0] = 'worker'; "
    "from explorer.sandbox.worker import main; sys.exit(main())"
)


_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")
"""The one thread that starts workers. Bubblewrap's ``--die-with-parent`` is Linux's
``PR_SET_PDEATHSIG``, which fires when the *thread* that forked it exits, not the process: a
worker started from a Streamlit script run (a thread per rerun) or a short helper thread was
killed when that thread ended, sometimes in the middle of reading a file. This thread lives
as long as the server."""


class _Worker:
    """One started worker process, ready (its tasks imported) or getting ready."""

    def __init__(self, limits: Limits, tasks: str) -> None:
        self.limits = limits  # set for good inside the worker: a spare serves only these
        self.tasks = tasks  # imported for good too
        command, env = _command(limits, tasks)
        self.process: subprocess.Popen[bytes] = _launcher.submit(
            subprocess.Popen,
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/tmp",
            start_new_session=True,
        ).result()

    def run(
        self, header: dict[str, Any], data: bytes, limits: Limits
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Send the request, read the answer within the wall-clock limit, kill the worker."""
        reader = _Reader(self.process)
        reader.start()
        try:
            if not reader.ready.wait(60):
                raise SandboxError("the sandbox did not start")
            assert self.process.stdin is not None
            write_frame(self.process.stdin, header, [data])  # type: ignore[arg-type]
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the worker died: its exit status says why
        reader.join(limits.wall_s)
        timed_out = reader.is_alive()
        self.process.kill()
        code = self.process.wait()
        reader.join()
        if timed_out:
            raise SandboxError(
                f"reading it took over {limits.wall_s:g} s, this server's limit: stopped"
            )
        if reader.overflow:
            raise SandboxError("the answer was larger than any model this server accepts")
        return _answer(bytes(reader.data), code, limits)


class _Reader(threading.Thread):
    """Reads the worker's stdout: its ready line, then its answer, up to a cap."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.ready = threading.Event()
        self.data = bytearray()
        self.overflow = False

    def run(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        stream.readline()  # "ready": torch is imported; anything else fails the answer's parse
        self.ready.set()
        while chunk := stream.read1(1 << 20):  # type: ignore[attr-defined]
            self.data += chunk
            if len(self.data) > MAX_ANSWER_BYTES:
                self.overflow = True
                self.process.kill()
                return


def _answer(data: bytes, code: int, limits: Limits) -> tuple[dict[str, Any], list[bytes]]:
    try:
        header, blobs = parse_frame(data, MAX_ANSWER_BYTES)
    except FrameError:
        if code in (-24, 128 + 24):  # SIGXCPU (bubblewrap reports 128 + n)
            raise SandboxError(
                f"reading it used over {limits.cpu_s} s of CPU, this server's limit"
            ) from None
        raise SandboxError(
            f"reading it stopped the sandbox (exit {code}): it may need more than this "
            f"server's {limits.memory_mb} MB or {limits.cpu_s} s of CPU"
        ) from None
    if not header.get("ok"):
        raise SandboxError(str(header.get("error", "it cannot be read"))[:300])
    return header, blobs


_running = threading.BoundedSemaphore(
    max(1, int(os.environ.get("EXPLORER_SANDBOX_WORKERS", "1") or 1))
)
"""Workers reading at once (``$EXPLORER_SANDBOX_WORKERS``, 1): a class uploading together
queues here instead of running a worker (up to a core and its memory limit) each."""
_spare: _Worker | None = None
_spare_lock = threading.Lock()
_keep_warm = threading.Event()


def prewarm(tasks: str) -> None:
    """Start a worker for ``tasks`` now, and after every request: none waits for its imports.

    Args:
        tasks: The module whose tasks the worker runs (see :mod:`.worker`).
    """
    global _spare
    _keep_warm.set()
    with _spare_lock:
        if _spare is None or _spare.process.poll() is not None:
            _spare = _Worker(Limits.from_env(), tasks)


def waiting_worker() -> int | None:
    """The process id of the worker waiting for the next file, if one is alive."""
    with _spare_lock:
        alive = _spare is not None and _spare.process.poll() is None
        return _spare.process.pid if alive and _spare is not None else None


def run_task(
    tasks: str, task: str, data: bytes, **fields: Any
) -> tuple[dict[str, Any], list[bytes]]:
    """Run one task on one file in a fresh sandboxed worker; its answer's header and blobs.

    Args:
        tasks: The module whose ``TASKS`` the worker runs (see :mod:`.worker`).
        task: The task's name in it.
        data: The file.
        **fields: More of the request's header.

    Raises:
        SandboxError: The file was refused (the worker's message), or a limit stopped it.
    """
    with _running:
        return _run_one(tasks, task, data, fields)


def _run_one(
    tasks: str, task: str, data: bytes, fields: dict[str, Any]
) -> tuple[dict[str, Any], list[bytes]]:
    global _spare
    limits = Limits.from_env()
    with _spare_lock:
        usable = (
            _spare is not None
            and _spare.process.poll() is None
            and _spare.limits == limits
            and _spare.tasks == tasks
        )
        worker = _spare if usable and _spare is not None else _Worker(limits, tasks)
        if _spare is not None and worker is not _spare:
            _spare.process.kill()
        _spare = None
    try:
        return worker.run({"task": task, **fields}, data, limits)
    finally:
        if _keep_warm.is_set():
            threading.Thread(target=_refill, args=(tasks,), daemon=True).start()


def _refill(tasks: str) -> None:
    """Start the next spare after a request; quietly nothing while the server exits."""
    try:
        prewarm(tasks)
    except RuntimeError as exc:  # the launcher takes no work once the interpreter shuts down
        if "shutdown" not in str(exc):
            raise


class RefusalCache:
    """Answers by content, successes and refusals alike, so a rerun repeats no work."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        """The answer stored for ``key`` (a value or an exception), or ``None``."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        """Store ``value`` (or the exception that refused it) for ``key``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
