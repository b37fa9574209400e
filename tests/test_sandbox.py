"""The execution boundary: hostile model files, planted by the tests, never hurt the server.

Each payload would write a marker file if it ran; each bomb is sized to show its bound. The
files go through the same path as the Image page and the CLI (:func:`read_untrusted`, the
sandboxed worker, the plain graph).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from explorer.inputs.spec import InputSpec
from explorer.models import sandboxed
from explorer.models.own import OwnModelError, export_model, load_program, read_untrusted
from explorer.models.weights import WeightsError, load_weights_into
from explorer.models.zoo import load_model
from explorer.sandbox import boundary, worker
from explorer.sandbox.plain import PlainGraphError, from_plain, parse_plain

REPO = Path(__file__).resolve().parents[1]
LENET_PT2 = REPO / "assets" / "models" / "own" / "lenet5.pt2"
needs_bwrap = pytest.mark.skipif(
    boundary.sandbox_kind() != "bubblewrap", reason="bubblewrap does not work on this machine"
)


def rewritten(
    change: Callable[[str, bytes], list[tuple[str, bytes]]], source: Path = LENET_PT2
) -> bytes:
    """The .pt2 at ``source`` with each entry replaced by what ``change`` makes of it."""
    data = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(data, "w") as target:
        for item in original.infolist():
            for name, content in change(item.filename, original.read(item)):
                target.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)
    return data.getvalue()


def with_graph(edit: Callable[[dict[str, object]], object]) -> bytes:
    """LeNet-5's .pt2 with its graph's JSON document changed by ``edit``."""

    def change(name: str, content: bytes) -> list[tuple[str, bytes]]:
        if not name.endswith("models/model.json"):
            return [(name, content)]
        document = json.loads(content)
        edited = edit(document)
        return [(name, json.dumps(document if edited is None else edited).encode())]

    return rewritten(change)


def test_guard_code_that_would_write_a_file_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    payload = f"True) or open({str(marker)!r}, 'w').write('ran') or (True"
    data = with_graph(lambda doc: doc.update(guards_code=[payload]))
    with pytest.raises(OwnModelError, match="guard code"):
        read_untrusted(data, "lenet5.pt2")
    assert not marker.exists()


def test_a_second_graph_under_another_name_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    evil = json.dumps({"expr_str": f"open({str(marker)!r}, 'w')"}).encode()

    def change(name: str, content: bytes) -> list[tuple[str, bytes]]:
        extra = (
            [(name.replace("model.json", "model.JSON"), evil)]
            if name.endswith("model.json")
            else []
        )
        return [(name, content), *extra]

    with pytest.raises(OwnModelError, match=r"models/model\.JSON"):
        read_untrusted(rewritten(change), "lenet5.pt2")
    assert not marker.exists()


def test_a_deflate_bomb_in_the_graph_is_refused_before_it_is_unpacked() -> None:
    padding = b" " * (64 * 1024 * 1024)  # 64 MB of spaces: about 64 kB deflated

    def change(name: str, content: bytes) -> list[tuple[str, bytes]]:
        return [(name, content + padding if name.endswith("model.json") else content)]

    data = rewritten(change)
    assert len(data) < 1024 * 1024
    with pytest.raises(OwnModelError, match="packed over 200 times"):
        read_untrusted(data, "lenet5.pt2")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: "[" * 100_000 + "]" * 100_000, "not plain JSON"),
        (
            lambda doc: doc["graph_module"]["graph"].update(
                nodes=doc["graph_module"]["graph"]["nodes"] * 5_000
            ),
            "over 4,000 nodes",
        ),
    ],
    ids=["nested 100,000 deep", "60,000 nodes"],
)
def test_deep_or_huge_graphs_are_refused_with_a_message(
    edit: Callable[[dict[str, object]], object], message: str
) -> None:
    def change(name: str, content: bytes) -> list[tuple[str, bytes]]:
        if not name.endswith("models/model.json"):
            return [(name, content)]
        edited = edit(json.loads(content))
        text = (
            edited
            if isinstance(edited, str)
            else json.dumps(json.loads(content) if edited is None else edited)
        )
        return [(name, text.encode())]

    data = with_graph(edit) if "nodes" in message else rewritten(change)
    with pytest.raises(OwnModelError, match=message):
        read_untrusted(data, "lenet5.pt2")


class Expanding(nn.Module):
    """A tiny graph of allowed operators that makes ``copies`` copies of its input."""

    def __init__(self, copies: int) -> None:
        super().__init__()
        self.copies = copies
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = x.unsqueeze(0).expand(self.copies, *x.shape).clone()
        logits: torch.Tensor = self.fc(torch.flatten(big.sum(0), 1))
        return logits


class Slow(nn.Module):
    """A chain of large matrix products: minutes of CPU from a few megabytes."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1024, 1024))
        self.fc = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.flatten(x, 1)[:, :1].expand(1024, 1024)
        for _ in range(400):
            y = torch.mm(y, self.weight)
        logits: torch.Tensor = self.fc(y[:1])
        return logits


def test_a_graph_that_allocates_gigabytes_dies_in_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "expand.pt2"
    export_model(Expanding(1_000_000), (1, 28, 28), path)  # 3.1 GB on every pass
    assert path.stat().st_size < 100_000
    with pytest.raises(OwnModelError, match=r"memory|numbers"):
        read_untrusted(path.read_bytes(), path.name)


def test_a_slow_graph_is_stopped_at_the_wall_clock_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPLORER_SANDBOX_SECONDS", "3")
    path = tmp_path / "slow.pt2"
    export_model(Slow(), (1, 28, 28), path)
    with pytest.raises(OwnModelError, match=r"over 3 s|CPU"):
        read_untrusted(path.read_bytes(), path.name)


@pytest.mark.parametrize("op", ["Tile", "ConstantOfShape", "Expand"])
def test_onnx_operators_that_make_up_sizes_are_refused(op: str) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [10_000, 1, 28, 28])
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [10_000, 1, 1, 1])
    inputs = {"Tile": ["x", "sizes"], "ConstantOfShape": ["sizes"], "Expand": ["x", "sizes"]}[op]
    graph = helper.make_graph([helper.make_node(op, inputs, ["y"])], "g", [x], [y], [sizes])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert len(data) < 400
    with pytest.raises(OwnModelError, match=f"uses {op}, which is not an operator of a CNN"):
        read_untrusted(data, "bomb.onnx")


def test_a_pth_over_the_memory_limit_is_refused_in_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxed.prewarm()  # a worker waiting with the default limits must not serve these
    monkeypatch.setenv("EXPLORER_SANDBOX_MEMORY_MB", "100")
    path = tmp_path / "big.pth"
    torch.save({"conv1.weight": torch.zeros(60_000_000)}, path)  # 240 MB
    with pytest.raises(WeightsError, match=r"memory|stopped"):
        load_weights_into(load_model("lenet5", "untrained").model, path)


def test_a_pth_is_checked_against_the_architecture_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "lenet.pth"
    model = load_model("lenet5").model
    torch.save(model.state_dict(), path)
    fresh = load_model("lenet5", "untrained").model
    load_weights_into(fresh, path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor)


def test_the_cache_key_names_the_graph_not_only_the_weights(tmp_path: Path) -> None:
    """A file named like the shipped example, its weights, another graph: another key."""
    shipped = load_model("lenet5").model

    class NoRelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, child in shipped.named_children():
                self.add_module(name, child)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for name in ("conv1", "pool1", "conv2", "pool2"):
                x = getattr(self, name)(x)
            x = torch.flatten(x, 1)
            for name in ("fc1", "fc2", "fc3"):
                x = getattr(self, name)(x)
            return x

    path = tmp_path / "lenet5.pt2"
    export_model(NoRelu(), (1, 28, 28), path)
    spec = InputSpec(1, 28, 28, digit=True)
    real = load_program(LENET_PT2.read_bytes(), "lenet5.pt2", spec)
    fake = load_program(path.read_bytes(), "lenet5.pt2", spec)
    x = torch.rand(1, 1, 28, 28)
    assert not torch.allclose(real.model(x), fake.model(x))
    assert real.cache_key != fake.cache_key


@needs_bwrap  # a plain worker process has no --die-with-parent: nothing to outlive there
def test_a_waiting_worker_outlives_the_thread_that_asked_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spare asked for by a rerun that has ended still reads files.

    Streamlit runs each rerun in its own thread; bubblewrap's --die-with-parent follows the
    thread that started it.
    """

    def one_rerun() -> None:
        sandboxed.prewarm()
        time.sleep(1.5)  # bubblewrap is up and watching its parent before this thread ends

    rerun = threading.Thread(target=one_rerun)
    rerun.start()
    rerun.join()
    spare = boundary.waiting_worker()
    assert spare is not None
    time.sleep(0.5)
    assert boundary.waiting_worker() == spare, "the waiting worker died with the rerun's thread"
    state = load_model("lenet5", "untrained").model.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # Every process started from here on. A worker is started only where none can serve (the
    # spare died, or does not fit) and once after each request (the next spare), so if the
    # spare served, the one process started is the next spare; had it died and a fresh worker
    # served, there would be two. (Its pid alone cannot tell: a used spare and a dead one are
    # both gone afterwards, and a fresh worker would take its place as the next spare.)
    started: list[int] = []
    popen = subprocess.Popen

    def recorded(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = popen(*args, **kwargs)
        started.append(process.pid)
        return process

    monkeypatch.setattr(subprocess, "Popen", recorded)
    header, _ = sandboxed.run_untrusted("state_dict", buffer.getvalue())
    assert header["names"] == list(state)
    deadline = time.monotonic() + 60
    while (refill := boundary.waiting_worker()) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the next spare starts in its own thread after the answer
    assert refill is not None and started == [refill], "another worker served, not the spare"
    assert not Path(f"/proc/{spare}").exists()  # the spare was ended (and reaped) after its file


def test_the_sandbox_package_imports_no_model_code() -> None:
    """The worker learns its tasks module from the server; the package never imports one."""
    probe = (
        "import sys, explorer.sandbox, explorer.sandbox.boundary, explorer.sandbox.worker; "
        "print(sorted(m for m in sys.modules if m.startswith('explorer.models')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO,
        check=False,
    )  # fmt: skip
    assert done.stdout.strip() == "[]", done.stderr


def test_the_worker_imports_only_a_module_name() -> None:
    with pytest.raises(ValueError, match="not a module name"):
        worker.load_tasks("os; import this")
    refusal = worker.answer_error(OwnModelError("no"), lambda exc: None)
    assert refusal == {"ok": False, "error": "it cannot be read: no"}
    assert worker.answer_error(MemoryError(), lambda exc: None)["error"].startswith("reading it")
    assert worker.answer_error(ValueError("x"), lambda exc: "told")["error"] == "told"


def test_a_refusal_is_remembered_and_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_run = sandboxed.run_untrusted

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("explorer.models.own.run_untrusted", counting)
    data = with_graph(lambda doc: doc.update(guards_code=["x"]))
    for _ in range(3):
        with pytest.raises(OwnModelError, match="guard code"):
            read_untrusted(data, "again.pt2")
    assert calls == ["own_model"]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            [
                {"name": "x", "op": "placeholder"},
                {
                    "name": "f",
                    "op": "call_function",
                    "target": "from_file.default",
                    "args": ["/etc/passwd"],
                },
            ],
            "from_file",
        ),
        (
            [
                {"name": "x", "op": "placeholder"},
                {"name": "m", "op": "call_module", "target": "os"},
            ],
            "call_module",
        ),
        (
            [
                {"name": "x", "op": "placeholder"},
                {
                    "name": "r",
                    "op": "call_function",
                    "target": "relu.default",
                    "args": [{"node": "x"}],
                    "kwargs": {"x; import os": 1},
                },
            ],
            "plain name",
        ),
        ([{"name": "x; import os", "op": "placeholder"}], "plain name"),
    ],
    ids=["a file-reading operator", "a module", "a dunder argument", "code in a name"],
)
def test_the_server_rebuilds_only_plain_graphs_of_allowed_operators(
    nodes: list[object], message: str
) -> None:
    from safetensors.torch import save

    with pytest.raises(PlainGraphError, match=message):
        from_plain(parse_plain(json.dumps(nodes).encode(), save({})))


@needs_bwrap
def test_the_sandbox_has_no_network_no_server_files_no_environment(tmp_path: Path) -> None:
    marker = tmp_path / "written.txt"
    probe = f"""
import os, socket
seen = []
try:
    open({str(marker)!r}, "w").write("x"); seen.append("wrote")
except OSError: pass
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1); seen.append("network")
except OSError: pass
if os.path.exists({str(REPO / "assets")!r}): seen.append("assets")
if "SECRET_FOR_TEST" in os.environ: seen.append("environment")
if os.getuid() == 0: seen.append("root")
print(",".join(seen) or "nothing")
"""
    env = {**os.environ, "SECRET_FOR_TEST": "1"}
    done = subprocess.run(
        [*boundary.bwrap_arguments(), sys.executable, "-I", "-c", probe],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.stdout.strip() == "nothing", done.stderr
    assert not marker.exists()


def test_the_servers_memory_stays_flat_while_bombs_are_refused(tmp_path: Path) -> None:
    """In a fresh process: peak RSS before and after reading the bombs."""
    expand = tmp_path / "expand.pt2"
    export_model(Expanding(1_000_000), (1, 28, 28), expand)
    script = f"""
import resource
from pathlib import Path
from explorer.inputs.spec import InputSpec
from explorer.models.own import OwnModelError, read_untrusted, load_program
load_program(Path({str(LENET_PT2)!r}).read_bytes(), "lenet5.pt2", InputSpec(1, 28, 28, digit=True))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in [{str(expand)!r}]:
    try:
        read_untrusted(Path(path).read_bytes(), Path(path).name)
    except OwnModelError:
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    done = subprocess.run(
        ["prlimit", "--as=12000000000", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) < 300
