"""The load generator: wire format, pure parts, sessions on a stand-in, real runs on the app.

Its wire format against Streamlit's own protobufs, its pure parts exactly, its sessions
against a scripted stand-in server, and real runs on the app (slow).

No test asserts a timing: latencies and CPU depend on the machine and its load.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from explorer.bench.fairness import ARRAY_FIELDS
from explorer.bench.loadplan import LoadPlan, schedule_offsets
from explorer.bench.loadreport import build_report, format_table
from explorer.bench.loadtest import run_load
from explorer.bench.timing import percentile
from explorer.cli import main
from explorer.figures.channels import layer_of_label
from explorer.hosting.addresses import CANVAS_COMPONENT
from explorer.hosting.client import REPLICA_HEADER, ClientError, stream_url
from explorer.hosting.drivers import (
    LAYER_WIDGET_KEY,
    DrawDriver,
    LayerDriver,
)
from explorer.hosting.messages import (
    ALERT_ERROR,
    FIELDS,
    FINISHED_EARLY_FOR_RERUN,
    FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    FINISHED_SUCCESSFULLY,
    FINISHED_WITH_COMPILE_ERROR,
    Element,
    Run,
    ServerMessage,
    WidgetValue,
    decode_forward_msg,
    encode_rerun,
)
from explorer.hosting.procfs import cpu_seconds_from_stat, process_cpu_seconds
from explorer.hosting.protobuf import ProtocolError, int_field
from explorer.hosting.session import SessionStats
from explorer.inputs.strokes import DIGIT_STROKES, drawing_value, parse_drawing

REPO = Path(__file__).resolve().parents[1]
REPORT_KEYS = {
    "page",
    "sessions",
    "interval_s",
    "duration_s",
    "window_s",
    "reruns",
    "reruns_per_s",
    "errors",
    "wrong_predictions",
    "late_sends",
    "max_late_ms",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "first_load_p50_ms",
    "server_cpu_ms_per_rerun",
    "client_cpu_ms_per_rerun",
    "error_messages",
    "replicas",
    "per_session",
    "url",
    "spawned",
}
PROTO_MODULES = {  # message name → its streamlit.proto module
    "BackMsg": "BackMsg_pb2",
    "ClientState": "ClientState_pb2",
    "ContextInfo": "ClientState_pb2",
    "WidgetStates": "WidgetStates_pb2",
    "WidgetState": "WidgetStates_pb2",
    "ForwardMsg": "ForwardMsg_pb2",
    "Delta": "Delta_pb2",
    "Element": "Element_pb2",
    "Exception": "Exception_pb2",
    "Alert": "Alert_pb2",
    "Metric": "Metric_pb2",
    "Selectbox": "Selectbox_pb2",
    "BidiComponent": "BidiComponent_pb2",
    "Navigation": "Navigation_pb2",
    "AppPage": "AppPage_pb2",
    "PageNotFound": "PageNotFound_pb2",
    "ButtonGroup": "ButtonGroup_pb2",
    "Slider": "Slider_pb2",
    "StringArray": "Common_pb2",
    "DoubleArray": "Common_pb2",
}
STREAMLIT_FIELDS = {**FIELDS, **ARRAY_FIELDS}
"""Every field number the client and the fairness benchmark write or read."""


# --- the wire format against Streamlit's descriptors ------------------------------------------


@pytest.mark.parametrize("name", sorted(STREAMLIT_FIELDS))
def test_every_field_number_is_streamlits(name: str) -> None:
    message, field_name = name.split(".")
    module = importlib.import_module(f"streamlit.proto.{PROTO_MODULES[message]}")
    descriptor = getattr(module, message).DESCRIPTOR
    assert descriptor.fields_by_name[field_name].number == STREAMLIT_FIELDS[name]


def test_status_and_alert_numbers_are_streamlits() -> None:
    from streamlit.proto.Alert_pb2 import Alert

    assert FINISHED_SUCCESSFULLY == ForwardMsg.FINISHED_SUCCESSFULLY
    assert FINISHED_WITH_COMPILE_ERROR == ForwardMsg.FINISHED_WITH_COMPILE_ERROR
    assert FINISHED_EARLY_FOR_RERUN == ForwardMsg.FINISHED_EARLY_FOR_RERUN
    assert FINISHED_FRAGMENT_RUN_SUCCESSFULLY == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    assert ALERT_ERROR == Alert.ERROR


def test_a_rerun_reads_back_as_the_browser_sends_it() -> None:
    drawing = json.dumps({"drawing": drawing_value(DIGIT_STROKES["7"], seq=3)})
    payload = encode_rerun(
        [
            WidgetValue("$$ID-a-draw_canvas", "json_value", drawing),
            WidgetValue("s", "string_value", "0 · conv1 · é"),
        ],
        page_script_hash="abc",
        fragment_id="frag",
        url="http://127.0.0.1:1/classify",
    )
    msg = BackMsg()
    msg.ParseFromString(payload)
    assert msg.WhichOneof("type") == "rerun_script"
    state = msg.rerun_script
    assert (state.page_script_hash, state.page_name, state.fragment_id) == ("abc", "", "frag")
    assert [w.id for w in state.widget_states.widgets] == ["$$ID-a-draw_canvas", "s"]
    canvas, layer = state.widget_states.widgets
    assert canvas.WhichOneof("value") == "json_value" and json.loads(canvas.json_value) == {
        "drawing": drawing_value(DIGIT_STROKES["7"], seq=3)
    }
    assert layer.WhichOneof("value") == "string_value" and layer.string_value == "0 · conv1 · é"
    assert state.context_info.url == "http://127.0.0.1:1/classify"
    assert (state.context_info.timezone, state.context_info.timezone_offset) == ("UTC", 0)
    assert list(state.cached_message_hashes) == []  # so the server never sends references


def test_a_first_load_names_the_page_and_still_carries_widget_states() -> None:
    msg = BackMsg()
    msg.ParseFromString(encode_rerun([], page_name="classify"))
    state = msg.rerun_script
    assert (state.page_name, state.page_script_hash, state.fragment_id) == ("classify", "", "")
    assert state.HasField("widget_states") and not state.widget_states.widgets


def test_widget_value_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="int_value"):
        encode_rerun([WidgetValue("x", "int_value", "1")])


def test_negative_varints_are_ten_bytes_twos_complement() -> None:
    from streamlit.proto.ClientState_pb2 import ContextInfo

    number = FIELDS["ContextInfo.timezone_offset"]
    info = ContextInfo()
    info.ParseFromString(int_field(number, -120))
    assert info.timezone_offset == -120


def _forward(fill: Callable[[ForwardMsg], None], fragment_id: str = "") -> bytes:
    msg = ForwardMsg()
    msg.hash = "f" * 32  # a real server sets hash and metadata: both come before the type
    msg.metadata.delta_path.extend([0, 3, 1])
    msg.metadata.active_script_hash = "page"
    fill(msg)
    if fragment_id:
        msg.delta.fragment_id = fragment_id
    data: bytes = msg.SerializeToString()
    return data


def _finished(status: int) -> Callable[[ForwardMsg], None]:
    """A filler that marks the script run finished with ``status``."""
    return lambda m: setattr(m, "script_finished", status)


def test_script_finished_reads_every_status_including_zero() -> None:
    for status in (0, 1, 2, 3):
        data = _forward(_finished(status))
        assert decode_forward_msg(data) == ServerMessage("script_finished", status=status)


def test_elements_read_from_deltas() -> None:
    def metric(m: ForwardMsg) -> None:
        m.delta.new_element.metric.label = "Prediction"
        m.delta.new_element.metric.body = "7"
        m.delta.new_element.metric.delta = "94.1% probability"

    def selectbox(m: ForwardMsg) -> None:
        box = m.delta.new_element.selectbox
        box.id = f"$$ID-1-{LAYER_WIDGET_KEY}"
        box.label = "Layer"
        box.options.extend(["0 · conv1 · conv · 64×112×112", "1 · bn1 · norm · 64×112×112"])

    def canvas(m: ForwardMsg) -> None:
        bidi = m.delta.new_element.bidi_component
        bidi.id = "$$ID-2-draw_canvas"
        bidi.component_name = CANVAS_COMPONENT
        bidi.js_content = "export default function () {}" * 100

    def exception(m: ForwardMsg) -> None:
        m.delta.new_element.exception.type = "ValueError"
        m.delta.new_element.exception.message = "bad"
        m.delta.new_element.exception.stack_trace.extend(["a", "b"])

    def warning(m: ForwardMsg) -> None:
        exception(m)
        m.delta.new_element.exception.is_warning = True

    def alert(fmt: Alert.Format.ValueType) -> Callable[[ForwardMsg], None]:
        def fill(m: ForwardMsg) -> None:
            m.delta.new_element.alert.body = "That image cannot be read"
            m.delta.new_element.alert.format = fmt

        return fill

    def chart(m: ForwardMsg) -> None:
        m.delta.new_element.plotly_chart.spec = "{}" * 1000

    def block(m: ForwardMsg) -> None:
        m.delta.add_block.allow_empty = True

    read = decode_forward_msg
    assert read(_forward(metric, "frag")) == ServerMessage(
        "delta", element=Element("metric", "frag", label="Prediction", body="7")
    )
    assert read(_forward(selectbox, "f2")).element == Element(
        "selectbox",
        "f2",
        id=f"$$ID-1-{LAYER_WIDGET_KEY}",
        options=("0 · conv1 · conv · 64×112×112", "1 · bn1 · norm · 64×112×112"),
    )
    assert read(_forward(canvas)).element == Element(
        "bidi_component", "", id="$$ID-2-draw_canvas", label=CANVAS_COMPONENT
    )
    assert read(_forward(exception)).element == Element(
        "exception", "", body="ValueError: bad", is_error=True
    )
    assert read(_forward(warning)).element == Element("exception", "", body="ValueError: bad")
    assert read(_forward(alert(Alert.ERROR))).element == Element(
        "alert", "", body="That image cannot be read", is_error=True
    )
    assert read(_forward(alert(Alert.INFO))).element == Element(
        "alert", "", body="That image cannot be read"
    )
    assert read(_forward(chart)) == ServerMessage("delta")  # delta, nothing read from it
    assert read(_forward(block)) == ServerMessage("delta")


def test_navigation_page_not_found_ref_hash_and_the_rest() -> None:
    def navigation(m: ForwardMsg) -> None:
        for page_hash, path in (("h0", ""), ("h1", "classify")):
            page = m.navigation.app_pages.add()
            page.page_script_hash, page.url_pathname, page.page_name = page_hash, path, "x"
        m.navigation.page_script_hash = "h1"

    read = decode_forward_msg
    assert read(_forward(navigation)) == ServerMessage(
        "navigation", page_script_hash="h1", pages={"h0": "", "h1": "classify"}
    )
    not_found = _forward(lambda m: setattr(m.page_not_found, "page_name", "classify"))
    assert read(not_found) == ServerMessage("page_not_found", text="classify")
    assert read(_forward(lambda m: setattr(m, "ref_hash", "abc"))) == ServerMessage(
        "ref_hash", text="abc"
    )
    status = _forward(lambda m: setattr(m.session_status_changed, "script_is_running", True))
    assert read(status) == ServerMessage("other")
    new_session = _forward(lambda m: setattr(m.new_session, "page_script_hash", "h1"))
    assert read(new_session) == ServerMessage("other")


def test_bytes_that_are_not_a_message_are_a_protocol_error() -> None:
    whole = _forward(lambda m: setattr(m.page_not_found, "page_name", "classify"))
    with pytest.raises(ProtocolError):
        decode_forward_msg(whole[:-3])
    with pytest.raises(ProtocolError):
        decode_forward_msg(b"\xff" * 12)  # a varint that never ends
    with pytest.raises(ProtocolError):
        decode_forward_msg(bytes([0x0B]))  # wire type 3 (groups): not protobuf 3


# --- runs and drivers -----------------------------------------------------------------------


def test_a_run_ends_at_its_last_script_finished_and_collects_what_went_wrong() -> None:
    run = Run()
    run.absorb(ServerMessage("script_finished", status=2))  # the fragment asked for a full run
    assert not run.finished
    run.absorb(ServerMessage("delta", element=Element("metric", label="Prediction", body="3")))
    run.absorb(ServerMessage("delta", element=Element("metric", label="shape", body="1×28×28")))
    run.absorb(ServerMessage("delta", element=Element("exception", body="E: x", is_error=True)))
    run.absorb(ServerMessage("page_not_found", text="classify"))
    run.absorb(ServerMessage("ref_hash", text="abc"))
    run.absorb(ServerMessage("script_finished", status=0))
    assert run.finished and run.prediction == "3"
    assert run.problems == [
        "exception: E: x",
        "the server sent a cached reference this client never asked for",
    ]
    assert run.page_not_found == "classify"  # the first run of a session: not an error
    fragment = Run()
    fragment.absorb(ServerMessage("script_finished", status=3))
    assert fragment.finished and not fragment.problems
    broken = Run()
    broken.absorb(ServerMessage("script_finished", status=1))
    assert broken.finished and broken.problems == ["the script failed to compile"]


@pytest.mark.parametrize("session", range(4))
def test_draw_sessions_alternate_two_digits_with_a_new_value_each_time(session: int) -> None:
    digits = sorted(DIGIT_STROKES)
    driver = DrawDriver(session)
    canvas = Element("bidi_component", "frag", id="$$ID-c-draw_canvas", label=CANVAS_COMPONENT)
    assert driver.find([Element("selectbox", id="x"), canvas]) == canvas
    sent = [driver.next_input(canvas) for _ in range(4)]
    first, second = digits[session % 3], digits[(session + 1) % 3]
    assert [name for name, _ in sent] == [first, second, first, second]
    for seq, (name, value) in enumerate(sent, start=1):
        assert (value.id, value.kind) == (canvas.id, "json_value")
        drawing = json.loads(value.value)["drawing"]
        assert drawing == drawing_value(DIGIT_STROKES[name], width=22, seq=seq, final=True)
        assert parse_drawing(drawing).final
    assert len({value.value for _, value in sent}) == 4  # every send a new value
    assert driver.check(first, Run(prediction=first)) is None
    assert (
        driver.check(first, Run(prediction=second)) == f"drew {first}, the page showed '{second}'"
    )
    assert driver.check(first, Run()) == f"drew {first}, the page showed no prediction"


LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1")
OPTIONS = tuple(
    f"{i} · {name} · {kind} · 64×56×56"
    for i, (name, kind) in enumerate(
        [("conv1", "conv"), ("bn1", "norm"), ("relu", "relu")]
        + [(f"layer{n}.0.conv1", "conv") for n in range(1, 5)]
        + [("fc", "linear")]
    )
)


def test_layer_of_reads_the_layer_browser_labels() -> None:
    assert layer_of_label("12 · layer1.0.relu#2 · relu · 64×56×56") == "layer1.0.relu#2"
    assert layer_of_label("conv1") == "conv1"


@pytest.mark.parametrize("session", range(6))
def test_layer_sessions_switch_round_the_cycle_never_to_the_layer_shown(session: int) -> None:
    driver = LayerDriver(session, LAYERS)
    box = Element("selectbox", "frag", id=f"$$ID-9-{LAYER_WIDGET_KEY}", options=OPTIONS)
    assert driver.find([Element("selectbox", id="$$ID-1-image_model"), box]) == box
    names = [driver.next_input(box)[0] for _ in range(7)]
    shown = ["conv1", *names]  # the selectbox starts on its first option
    assert all(a != b for a, b in pairwise(shown))
    start = LAYERS[(session + 1) % 5] if LAYERS[(session + 1) % 5] != "conv1" else LAYERS[1]
    assert names[0] == start
    for before, after in pairwise(names):
        assert LAYERS.index(after) == (LAYERS.index(before) + 1) % 5
    _, value = LayerDriver(session, LAYERS).next_input(box)
    assert value.kind == "string_value" and value.value in OPTIONS  # the option's own string
    assert layer_of_label(value.value) == names[0]


def test_a_layer_browser_without_the_layers_cannot_be_driven() -> None:
    box = Element("selectbox", id=f"$$ID-9-{LAYER_WIDGET_KEY}", options=("0 · fc · linear · 10",))
    with pytest.raises(ClientError, match="too few"):
        LayerDriver(0, LAYERS).next_input(box)


# --- the pure measuring parts ---------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 100])
def test_percentiles_match_numpy(size: int) -> None:
    values = list(np.random.default_rng(size).exponential(80.0, size))
    for q in (0, 25, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None


def test_schedule_offsets_spread_the_sessions_over_one_interval() -> None:
    assert schedule_offsets(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    assert schedule_offsets(1, 2.0) == [0.0]
    offsets = schedule_offsets(200, 3.0)
    assert len(offsets) == 200 and offsets[0] == 0 and offsets[-1] < 3.0
    assert np.allclose(np.diff(offsets), 3.0 / 200)


def test_cpu_seconds_come_from_utime_and_stime() -> None:
    # proc(5): pid (comm) state ppid … utime(14) stime(15) cutime(16) …; comm may hold ") ".
    stat = "4242 (python ) x) S 1 2 3 4 5 6 7 8 9 10 250 50 9999 9999 20 0 5 0 100"
    assert cpu_seconds_from_stat(stat, 100) == 3.0  # children's 9999s left out
    before = time.process_time()
    sum(i * i for i in range(300_000))
    own = process_cpu_seconds(os.getpid())
    assert own is not None and own == pytest.approx(time.process_time(), abs=0.05)
    assert own >= before - 0.05
    assert process_cpu_seconds(2**22 + 12345) is None  # no such process


@pytest.mark.parametrize(
    ("url", "ws", "page"),
    [
        ("http://127.0.0.1:8501", "ws://127.0.0.1:8501/_stcore/stream", "http://127.0.0.1:8501"),
        ("http://localhost:8501/", "ws://localhost:8501/_stcore/stream", "http://localhost:8501"),
        ("http://[::1]:9/app/", "ws://[::1]:9/app/_stcore/stream", "http://[::1]:9/app"),
        ("https://127.0.0.2", "wss://127.0.0.2/_stcore/stream", "https://127.0.0.2"),
        (
            "ws://127.0.0.1:1/_stcore/stream",
            "ws://127.0.0.1:1/_stcore/stream",
            "http://127.0.0.1:1",
        ),
    ],
)
def test_stream_urls_on_this_machine(url: str, ws: str, page: str) -> None:
    assert stream_url(url) == (ws, page)


@pytest.mark.parametrize(
    "url",
    ["http://example.com:8501", "http://10.0.0.1:8501", "http://[::2]:1", "ftp://127.0.0.1", "x"],
)
def test_stream_urls_elsewhere_are_refused(url: str) -> None:
    with pytest.raises(ClientError):
        stream_url(url)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--url", "http://192.168.1.5:8501"], "on this machine"),
        (["--url", "http://example.com"], "on this machine"),
        (["--spawn", "--sessions", "0"], "--sessions"),
        (["--spawn", "--sessions", "201"], "--sessions"),
        (["--spawn", "--duration", "0"], "--duration"),
        (["--spawn", "--duration", "601"], "--duration"),
        (["--spawn", "--duration", "nan"], "--duration"),
        (["--spawn", "--interval", "0"], "--interval"),
        (["--spawn", "--interval", "inf"], "--interval"),
    ],
)
def test_refusals_exit_2_with_one_error_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = {"--sessions": "2", "--duration": "5"}
    full = ["loadtest", *args]
    for flag, value in defaults.items():
        if flag not in args:
            full += [flag, value]
    assert main(full) == 2
    captured = capsys.readouterr()
    assert says in _one_error_line(captured.err) and captured.out == ""


def test_refusal_from_the_shell_too() -> None:
    command = [sys.executable, "-m", "explorer", "loadtest", "--url", "http://8.8.8.8:80"]
    command += ["--sessions", "1", "--duration", "1"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "8.8.8.8" in _one_error_line(done.stderr)


def test_a_server_that_is_not_there_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.hosting.server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["loadtest", "--url", url, "--sessions", "1", "--duration", "1"]) == 1
    captured = capsys.readouterr()
    assert "cannot load the draw page" in _one_error_line(captured.err) and captured.out == ""


def test_report_totals_percentiles_and_cpu_per_rerun() -> None:
    plan = LoadPlan("draw", 2, 10.0, 2.0)
    one = SessionStats(0, reruns=3, latencies_ms=[10.0, 20.0, 30.0], first_load_ms=100.0)
    one.replica = "127.0.0.1:8501"  # named by a balancer; the other session was not
    one.inputs.update({"0": 2, "1": 1})
    one.ok.update({"0": 2, "1": 1})
    two = SessionStats(1, reruns=2, errors=1, wrong_predictions=1, late_sends=1, max_late_ms=12.0)
    two.latencies_ms += [40.0, 50.0]
    two.first_load_ms = 300.0
    two.problems.append("drew 7, the page showed '1'")
    report = build_report(plan, [one, two], 10.0, server_cpu_s=0.5, client_cpu_s=0.01)
    latencies = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert report["reruns"] == 5 and report["errors"] == 1 and report["wrong_predictions"] == 1
    assert report["late_sends"] == 1 and report["max_late_ms"] == 12.0
    assert report["p50_ms"] == 30.0 and report["max_ms"] == 50.0
    assert report["p95_ms"] == pytest.approx(np.percentile(latencies, 95), abs=0.05)
    assert report["first_load_p50_ms"] == 200.0
    assert report["server_cpu_ms_per_rerun"] == 100.0 and report["client_cpu_ms_per_rerun"] == 2.0
    assert report["reruns_per_s"] == 0.5
    assert report["error_messages"] == ["session 1: drew 7, the page showed '1'"]
    assert report["per_session"][0]["inputs"] == {"0": 2, "1": 1}
    assert report["per_session"][1]["p50_ms"] == 45.0
    assert report["replicas"] == {"127.0.0.1:8501": 1}
    assert [row["replica"] for row in report["per_session"]] == ["127.0.0.1:8501", None]
    json.dumps(report)  # plain JSON
    table = format_table({**report, "url": "x", "spawned": True})
    assert "p50 30.0" in table and "100.0 per rerun" in table and "drew 7" in table
    assert "replicas    127.0.0.1:8501 ×1" in table
    layer = build_report(LoadPlan("classify", 1, 1.0, 1.0), [SessionStats(0)], 1.0, None, 0.0)
    assert layer["wrong_predictions"] is None and layer["server_cpu_ms_per_rerun"] is None
    assert layer["p50_ms"] is None and layer["reruns"] == 0 and layer["replicas"] is None


# --- sessions against a scripted stand-in for the server ------------------------------------

PAGE_HASH = "draw-page-hash"
FRAGMENT = "canvas-fragment"


def _digit_of(drawing: dict[str, Any]) -> str:
    points = [tuple(p) for p in np.reshape(drawing["strokes"][0]["points"], (-1, 2)).tolist()]
    return next(
        d for d, strokes in DIGIT_STROKES.items() if [tuple(p) for p in strokes[0]] == points
    )


def _as_the_balancer() -> dict[str, Any]:
    """``serve`` hooks that answer as the app behind nginx.

    The page over plain HTTP, with an affinity cookie for a browser that has none, and the
    replica named in every handshake.
    """
    cookies = iter(range(1, 1000))

    def page(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        response = connection.respond(HTTPStatus.OK, "<html>the app</html>\n")
        if "Cookie" not in request.headers:
            response.headers["Set-Cookie"] = f"explorer_replica=c{next(cookies)}; Path=/"
        return response

    def name_replica(connection: ServerConnection, request: Request, response: Response) -> None:
        response.headers[REPLICA_HEADER] = f"127.0.0.1:1, {STAND_IN_REPLICA}"

    return {"process_request": page, "process_response": name_replica}


STAND_IN_REPLICA = "127.0.0.1:2"  # nginx lists every replica it tried: the last one answered


def _nav(m: ForwardMsg) -> None:
    page = m.navigation.app_pages.add()
    page.page_script_hash, page.url_pathname = PAGE_HASH, ""
    m.navigation.page_script_hash = PAGE_HASH


def _canvas(m: ForwardMsg) -> None:
    m.delta.new_element.bidi_component.id = "$$ID-c-draw_canvas"
    m.delta.new_element.bidi_component.component_name = CANVAS_COMPONENT
    m.delta.fragment_id = FRAGMENT


async def _send(ws: ServerConnection, fill: Callable[[ForwardMsg], None]) -> None:
    await ws.send(_forward(fill))


async def _answer_stroke(ws: ServerConnection, shown: str | None, delay: float) -> bool:
    """Answer a stroke as the stand-in app does: a rerun, ``delay`` seconds, then ``shown``.

    Returns False when it hung up instead (``shown`` is "disconnect").
    """
    await _send(ws, lambda m: setattr(m, "script_finished", 2))  # st.rerun(scope="app")
    await asyncio.sleep(delay)
    if shown == "disconnect":
        await ws.close()
        return False
    await _send(ws, _nav)
    await _send(ws, _canvas)
    if shown == "exception":
        await _send(ws, lambda m: setattr(m.delta.new_element.exception, "type", "KeyError"))
    elif shown is not None:

        def metric(m: ForwardMsg, shown: str = shown) -> None:
            m.delta.new_element.metric.label, m.delta.new_element.metric.body = (
                "Prediction",
                shown,
            )

        await _send(ws, metric)
    await _send(ws, lambda m: setattr(m, "script_finished", 0))
    return True


@asynccontextmanager
async def stand_in(
    answer: Callable[[str, int], tuple[str | None, float]],
) -> AsyncIterator[tuple[str, list[BackMsg], list[Headers]]]:
    """A websocket server that answers like the app: ``answer(digit, n)`` → (shown, delay).

    ``n`` counts strokes over every connection: 1 is the warm-up's. ``shown`` is the digit to
    predict, None for no prediction, "exception" or "disconnect". Yields its URL, every
    message received and each websocket's request headers.
    """
    received: list[BackMsg] = []
    handshakes: list[Headers] = []
    strokes = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal strokes
        assert ws.subprotocol == "streamlit" and ws.request is not None
        handshakes.append(ws.request.headers)
        async for data in ws:
            assert isinstance(data, bytes)
            msg = BackMsg()
            msg.ParseFromString(data)
            received.append(msg)
            state = msg.rerun_script
            if state.page_script_hash == "":  # a first load
                await _send(ws, _nav)
                await _send(ws, _canvas)
                await _send(ws, lambda m: setattr(m, "script_finished", 0))
                continue
            strokes += 1
            widget = state.widget_states.widgets[0]
            digit = _digit_of(json.loads(widget.json_value)["drawing"])
            shown, delay = answer(digit, strokes)
            if not await _answer_stroke(ws, shown, delay):
                return

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[Subprotocol("streamlit")], **_as_the_balancer()
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", received, handshakes


def _run(plan: LoadPlan, answer: Callable[[str, int], tuple[str | None, float]]) -> Any:
    async def go() -> tuple[dict[str, Any], list[BackMsg], list[Headers]]:
        async with stand_in(answer) as (url, received, handshakes):
            report = await run_load(plan, *stream_url(url), server_pid=None)
            return report, received, handshakes

    return asyncio.run(go())


def test_sessions_send_on_schedule_as_the_browser_and_check_each_prediction() -> None:
    plan = LoadPlan("draw", 3, 1.0, 0.25)
    report, received, handshakes = _run(plan, lambda digit, n: (digit, 0.0))
    # every slot k·0.25 + offset below 1.0 s: 4 per session; the warm-up's one is not counted
    assert report["reruns"] == 12 and report["errors"] == 0 and report["wrong_predictions"] == 0
    for row, digits in zip(
        report["per_session"], [("0", "1"), ("1", "7"), ("7", "0")], strict=True
    ):
        assert row["inputs"] == {digits[0]: 2, digits[1]: 2} == row["ok"]
        assert row["stopped"] is None and row["first_load_ms"] is not None
    assert report["p50_ms"] is not None and report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]
    assert report["server_cpu_ms_per_rerun"] is None  # a server that is not ours
    first_loads = [m for m in received if m.rerun_script.page_script_hash == ""]
    strokes = [m for m in received if m.rerun_script.page_script_hash == PAGE_HASH]
    assert len(first_loads) == 4 and len(strokes) == 13  # the warm-up: one load, one stroke
    assert {m.rerun_script.fragment_id for m in strokes} == {FRAGMENT}  # the canvas's fragment
    assert {m.rerun_script.page_name for m in first_loads} == {""}
    seqs = [
        json.loads(m.rerun_script.widget_states.widgets[0].json_value)["drawing"]["seq"]
        for m in strokes
    ]
    assert sorted(seqs) == [1] * 4 + [2] * 3 + [3] * 3 + [4] * 3  # the warm-up sends seq 1 once
    # As browsers behind the balancer: each got the page first and came back with its own
    # cookie on the websocket; the replica each was served by is counted.
    cookies = [headers.get("Cookie") for headers in handshakes]
    assert len(cookies) == 4 and len(set(cookies)) == 4
    assert all(re.fullmatch(r"explorer_replica=c\d+", str(cookie)) for cookie in cookies)
    assert report["replicas"] == {STAND_IN_REPLICA: 3}
    assert {row["replica"] for row in report["per_session"]} == {STAND_IN_REPLICA}


def test_slow_reruns_make_late_sends_and_wrong_answers_errors() -> None:
    plan = LoadPlan("draw", 1, 0.5, 0.1)

    def answer(digit: str, n: int) -> tuple[str | None, float]:
        if n == 1:
            return digit, 0.0  # the warm-up
        return ("9" if n == 3 else None if n == 4 else digit), 0.15  # slower than the interval

    report, _, _ = _run(plan, answer)
    row = report["per_session"][0]
    assert row["reruns"] == report["reruns"] >= 3
    assert report["late_sends"] == report["reruns"] - 1  # all but the first waited on the last
    assert report["wrong_predictions"] == 2 == report["errors"]
    assert report["error_messages"] == [
        "session 0: drew 1, the page showed '9'",
        "session 0: drew 0, the page showed no prediction",
    ]


def test_an_exception_or_a_disconnect_is_an_error_and_a_disconnect_stops_the_session() -> None:
    plan = LoadPlan("draw", 1, 1.0, 0.2)

    def answer(digit: str, n: int) -> tuple[str | None, float]:
        return {2: "exception", 3: "disconnect"}.get(n, digit), 0.0

    report, _, _ = _run(plan, answer)
    assert report["reruns"] == 2 and report["errors"] == 2
    row = report["per_session"][0]
    assert row["stopped"] is not None and "ConnectionClosed" in row["stopped"]
    assert report["error_messages"][0] == "session 0: exception: KeyError: "


def test_a_page_without_its_widget_stops_at_the_warm_up() -> None:
    async def go() -> None:
        async def handler(ws: ServerConnection) -> None:
            async for _ in ws:
                await ws.send(_forward(lambda m: setattr(m, "script_finished", 0)))

        async with serve(handler, "127.0.0.1", 0, **_as_the_balancer()) as server:
            url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            await run_load(LoadPlan("draw", 1, 1.0, 1.0), *stream_url(url), None)

    with pytest.raises(ClientError, match="landed on page None"):
        asyncio.run(go())


# --- real runs on the app -------------------------------------------------------------------


def _loadtest(page: str, sessions: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "explorer", "loadtest", "--spawn", "--json"]
    command += ["--sessions", str(sessions), "--duration", "5", "--page", page]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert set(report) == REPORT_KEYS
    assert report["page"] == page and report["sessions"] == sessions and report["spawned"]
    assert report["errors"] == 0 and report["error_messages"] == []
    assert report["reruns"] == sum(row["reruns"] for row in report["per_session"])
    assert all(row["reruns"] >= 2 and row["stopped"] is None for row in report["per_session"])
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]
    assert report["first_load_p50_ms"] > 0
    assert report["server_cpu_ms_per_rerun"] > 0 and math.isfinite(
        report["server_cpu_ms_per_rerun"]
    )
    return report


@pytest.mark.slow
def test_draw_page_under_two_sessions() -> None:
    report = _loadtest("draw", 2)
    assert report["wrong_predictions"] == 0
    digits = sorted(DIGIT_STROKES)
    for row in report["per_session"]:
        own = {digits[row["session"] % 3], digits[(row["session"] + 1) % 3]}
        assert set(row["inputs"]) == own  # each session drew its own digits …
        assert row["ok"] == row["inputs"]  # … and saw each predicted, every time


@pytest.mark.slow
def test_image_page_layer_switches_under_two_sessions() -> None:
    report = _loadtest("classify", 2)
    assert report["wrong_predictions"] is None
    for row in report["per_session"]:
        assert set(row["inputs"]) <= set(LAYERS) and row["ok"] == row["inputs"]
