"""The benchmark command: its pure pieces exactly, and a quick run emitting every key.

No test asserts a timing: the figures depend on the machine and its load.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io
import pytest
import torch
from PIL import Image

from explorer.bench.library import (
    canvas_drawing,
    draw_page_work,
    image_layer_switch_work,
    naive_grid_figure,
    streamlit_spec,
)
from explorer.bench.machine import machine_info
from explorer.bench.metrics import metrics_for
from explorer.bench.suite import format_table
from explorer.bench.timing import interleaved_samples, median, ratio_of_medians
from explorer.cli import main
from explorer.hosting.server import CHROMIUM
from explorer.models.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
# need Chromium to be measured; the session ladder is skipped with --quick
NULLABLE = {
    "cold_start_s",
    "peak_rss_mb_resnet18",
    "browser_stroke_p50_ms",
    "browser_stroke_p95_ms",
    "browser_settled_p50_ms",
    "max_sessions_p95_250",
    "index_images_s_resnet18_1000",  # --quick indexes 100 images: a check, not the figure
    "index_images_peak_rss_mb_resnet18_1000",
}


def test_interleaved_samples_alternate_order_and_drop_the_warmup() -> None:
    calls: list[str] = []
    now = [0.0]
    cost = {"a": 1.0, "b": 10.0}

    def task(name: str) -> Callable[[], None]:
        def run() -> None:
            calls.append(name)
            now[0] += cost[name]

        return run

    samples = interleaved_samples(
        {"a": task("a"), "b": task("b")}, repeats=3, warmup=2, clock=lambda: now[0]
    )
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a", "a", "b"]  # ABBA…, 2 warm-up rounds
    assert samples == {"a": [1.0, 1.0, 1.0], "b": [10.0, 10.0, 10.0]}


def test_median_and_ratio_of_medians() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert ratio_of_medians([2.0, 100.0, 2.2], [1.0, 1.1, 0.9]) == pytest.approx(2.2)
    with pytest.raises(ValueError):
        median([])


def test_metric_targets_point_the_right_way() -> None:
    metrics = {m.key: m for m in metrics_for("cpu")}
    assert metrics["capture_overhead_vgg16"].met(1.15) is True
    assert metrics["capture_overhead_vgg16"].met(1.16) is False
    assert metrics["grid_speedup_64x112"].met(10.0) is True
    assert metrics["grid_speedup_64x112"].met(9.9) is False
    assert metrics["cold_start_s"].met(None) is None
    gpu = {m.key: m.target for m in metrics_for("cuda")}
    assert gpu["capture_overhead_vgg16"] == 1.2
    assert gpu["capture_overhead_resnet18"] is None  # the issue sets it for the CPU only


def test_naive_grid_is_one_heatmap_subplot_per_channel() -> None:
    maps = np.arange(64 * 4 * 5, dtype=np.float32).reshape(64, 4, 5)
    figure = naive_grid_figure(maps)
    heatmaps = [t for t in figure.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 64
    assert len({(t.xaxis, t.yaxis) for t in heatmaps}) == 64  # each on its own axes
    np.testing.assert_array_equal(np.asarray(heatmaps[9].z), maps[9])
    assert {t.coloraxis for t in heatmaps} == {"coloraxis"}  # one shared scale
    assert figure.layout.coloraxis.cmax == maps.max()


def test_streamlit_spec_is_the_figure_as_plotly_json() -> None:
    figure = go.Figure(go.Heatmap(z=np.eye(3, dtype=np.float32)), layout={"title": {"text": "t"}})
    spec = json.loads(streamlit_spec(figure))
    assert spec == json.loads(plotly.io.to_json(figure))
    assert spec["layout"]["title"]["text"] == "t"


def test_image_layer_switch_work_draws_the_chosen_layer() -> None:
    loaded = load_model("resnet18", "untrained")
    prepared = loaded.prepare(Image.new("RGB", (256, 256), (120, 30, 200)))
    result = loaded.capture(prepared)
    grid, large = (json.loads(spec) for spec in image_layer_switch_work(
        loaded, result, prepared, "layer1.0.conv1"
    ))  # fmt: skip
    assert "layer1.0.conv1" in grid["layout"]["title"]["text"]
    assert grid["data"][0]["type"] == "image"  # the channel grid is one PNG
    assert "layer1.0.conv1" in large["layout"]["title"]["text"]
    (strip,) = image_layer_switch_work(loaded, result, prepared, "fc")
    assert json.loads(strip)["data"][0]["type"] == "heatmap"
    with pytest.raises(KeyError):
        image_layer_switch_work(loaded, result, prepared, "no.such.layer")


def test_draw_page_work_builds_every_figure_of_the_page() -> None:
    loaded = load_model("lenet5")
    buffer = io.BytesIO()
    canvas_drawing("3_0.png").save(buffer, format="PNG")
    specs = draw_page_work(loaded, buffer.getvalue())
    result = loaded.capture(loaded.prepare(buffer.getvalue()))
    # the softmax under the prediction, the input stage, then one per layer (as the page)
    assert len(specs) == 2 + len(result.layers) == 15
    titles = [json.loads(spec)["layout"]["title"]["text"] for spec in specs]
    assert titles[0].startswith("<b>softmax</b> · prediction <b>3</b>")
    assert titles[1].startswith("input · 1×28×28")
    assert "conv1" in titles[2] and "softmax" in titles[-1]


def test_format_table_lists_every_key_and_whether_it_met_its_target() -> None:
    results: dict[str, float | None] = {m.key: 1.0 for m in metrics_for("cpu")}
    results["cold_start_s"] = None
    results["grid_speedup_64x112"] = 2.0
    report = {
        "machine": machine_info(torch.device("cpu")),
        "results": results,
        "notes": {"mode": "quick", "cold_start_s": "no browser"},
    }
    table = format_table(report)
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    for metric in metrics_for("cpu"):
        assert metric.key in rows
    assert rows["grid_speedup_64x112"][-1] == "NO"
    assert rows["capture_overhead_vgg16"][-1] == "yes"
    assert rows["cold_start_s"][1] == "n/a"
    assert "cold_start_s: no browser" in table
    assert "torch" in table and "cpu:" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_bench_on_a_missing_gpu_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--device", "cuda", "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cuda" in err[0]


@pytest.mark.slow
def test_quick_bench_emits_every_key_with_a_sane_value() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "bench", "--quick", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "EXPLORER_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report) == {"machine", "results", "targets", "met", "notes"}
    machine = report["machine"]
    assert machine["device"] == "cpu" and machine["torch"] == torch.__version__
    assert machine["cores"] >= 1 and machine["cpu"] and machine["gpu"]
    keys = [m.key for m in metrics_for("cpu")]
    assert list(report["results"]) == keys
    for key in keys:
        value = report["results"][key]
        if value is None:
            assert key in NULLABLE, f"{key} may not be null"
            assert isinstance(report["notes"][key], str) and report["notes"][key]
            continue
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    rss = report["results"]["peak_rss_mb_resnet18"]
    if Path(CHROMIUM).exists():  # the server, after the Image page with ResNet-18
        assert (
            rss is not None
            and rss > report["notes"]["cold_start_s"]["server_peak_rss_mb_draw_page"]
        )
    assert rss is None or rss > 100  # torch alone takes more
    assert report["targets"]["lenet_rerun_ms"] == 60.0
    assert report["notes"]["capture_overhead_vgg16"]["layers"] > 30
    assert report["notes"]["capture_overhead_resnet18"]["moved_to_host"] == ["softmax", "conv1"]
