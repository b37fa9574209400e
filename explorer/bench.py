"""Benchmarks: ``python -m explorer bench``: the costs that matter, beside their floor.

Each figure is a median over repeats; the two sides of a ratio are timed in the same loop,
alternating (ABBA), after a warm-up, so load on the machine hits both alike. The keys are
stable names so that runs can be compared across commits (see ``BENCHMARKS.md``):

- ``capture_overhead_resnet18`` / ``capture_overhead_vgg16``: capturing every layer at
  224×224 ÷ the bare forward pass of the same model on the same input.
- ``lenet_rerun_ms``: the Draw page's server-side work for one stroke, through the same
  library calls as ``pages/draw.py`` (:func:`draw_page_work`).
- ``grid_speedup_64x112``: a naive 64-subplot plotly figure ÷ the Image page's channel grid
  (:func:`explorer.layer_view.channel_grid_figure`).
- ``layer_switch_ms_resnet18``: the Image page's layer browser showing another layer of a
  captured ResNet-18 (:func:`image_layer_switch_work`).
- ``cold_start_s``: ``streamlit run`` until the Draw page has rendered in Chromium.
- ``peak_rss_mb_resnet18``: peak memory of the ``streamlit run`` server after the Draw page
  and then the Image page with ResNet-18 (top-5 and a layer's channel grid) have rendered.

Nothing here imports Streamlit: the pages are measured through the library calls they make,
and the server as a ``streamlit run`` subprocess driven by Chromium.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io
import plotly.tools
import torch
from PIL import Image

from explorer import figures, layer_view, served
from explorer.capture import CaptureResult, LayerOutput, capture
from explorer.device import pick_device
from explorer.preprocess import PreparedInput
from explorer.server import APP_FILE, CHROMIUM, CHROMIUM_ARGS, REPO, streamlit_server, vm_hwm_mb
from explorer.views import draw as draw_view
from explorer.views import image as image_view
from explorer.zoo import ASSETS_DIR, UNTRAINED, LoadedModel, load_model

PHOTO_SIZE = 224
STROKE_DIGITS = ("3_0.png", "7_1.png")  # two drawings, alternated: each run is a new stroke
SWITCH_LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1")
# The Draw page has rendered once its canvas is drawn and, the model loaded, its hint (empty
# canvas) or a prediction is on screen. Playwright's CSS locators pierce the canvas
# component's shadow DOM (document.querySelector does not).
PAGE_READY_SELECTORS = (
    ".st-key-draw_canvas canvas",
    "[data-testid=stAlert], [data-testid=stMetric]",
)
IMAGE_PAGE_PATH = "classify"
IMAGE_READY_SELECTORS = ("text=top 5", "[class*=st-key-image_grid_] .nsewdrag")


@dataclass(frozen=True)
class Metric:
    """One benchmark key: its unit, its target and which direction is better."""

    key: str
    unit: str
    target: float | None
    higher_is_better: bool = False
    description: str = ""

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` reaches the target (None when either is missing)."""
        if value is None or self.target is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target


def metrics_for(device: str) -> list[Metric]:
    """Every key the command reports, with the issue's targets for ``device`` (cpu/cuda)."""
    gpu = device == "cuda"
    return [
        Metric(
            "capture_overhead_resnet18",
            "×",
            None if gpu else 1.15,
            description="capture every layer ÷ bare forward, ResNet-18, 224×224",
        ),
        Metric(
            "capture_overhead_vgg16",
            "×",
            1.2 if gpu else 1.15,
            description="capture every layer ÷ bare forward, VGG-16, 224×224",
        ),
        Metric("lenet_rerun_ms", "ms", 60.0, description="Draw page work for one stroke"),
        Metric(
            "grid_speedup_64x112",
            "×",
            10.0,
            higher_is_better=True,
            description="64×112×112 layer: naive subplots ÷ the channel grid",
        ),
        Metric(
            "layer_switch_ms_resnet18",
            "ms",
            150.0,
            description="Image page: show another ResNet-18 layer (worst of 5)",
        ),
        Metric("cold_start_s", "s", 8.0, description="streamlit run → Draw page in Chromium"),
        Metric(
            "peak_rss_mb_resnet18",
            "MB",
            1500.0,
            description="peak RSS of the server after the Image page with ResNet-18",
        ),
        # The served app (explorer.served): a real server, Streamlit's protocol, Chromium.
        Metric(
            "server_cpu_ms_per_stroke",
            "ms",
            60.0,
            description="server CPU per finished stroke, Draw page, over its websocket",
        ),
        Metric(
            "server_p95_ms_30_sessions",
            "ms",
            250.0,
            description="30 sessions, a stroke each every 2 s: p95 rerun latency",
        ),
        Metric(
            "max_sessions_p95_250",
            "sessions",
            60.0,
            higher_is_better=True,
            description="most sessions (a stroke every 2 s) held at p95 ≤ 250 ms",
        ),
        Metric("image_p50_ms", "ms", None, description="Image page, 10 sessions: p50 switch"),
        Metric("image_p95_ms", "ms", None, description="Image page, 10 sessions: p95 switch"),
        Metric(
            "browser_stroke_p50_ms",
            "ms",
            350.0,
            description="Chromium: mouse-up → the Prediction shows the digit, p50",
        ),
        Metric("browser_stroke_p95_ms", "ms", 700.0, description="… the same, p95"),
        Metric(
            "browser_settled_p50_ms",
            "ms",
            None,
            description="Chromium: mouse-up → every stage redrawn, p50",
        ),
    ]


@dataclass(frozen=True)
class Settings:
    """How many repeats each measurement takes (``--quick`` lowers them)."""

    warmup: int
    resnet_repeats: int
    vgg_repeats: int
    page_repeats: int
    grid_repeats: int
    cold_starts: int

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        """The full settings, or the quick ones (enough to check every key works)."""
        if quick:
            return cls(1, resnet_repeats=3, vgg_repeats=2, page_repeats=3, grid_repeats=1,
                       cold_starts=1)  # fmt: skip
        return cls(2, resnet_repeats=21, vgg_repeats=9, page_repeats=21, grid_repeats=5,
                   cold_starts=3)  # fmt: skip


# --- timing ---------------------------------------------------------------------------------


def interleaved_samples(
    tasks: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time every task once per round, alternating their order (ABBA), after a warm-up.

    Args:
        tasks: Named zero-argument callables; each must finish its work before returning
            (synchronise the GPU inside it).
        repeats: Timed rounds.
        warmup: Untimed rounds first (tracing, caches, allocator).
        clock: Seconds as a float (injectable for tests).

    Returns:
        Seconds per call, ``repeats`` samples for each name.
    """
    names = list(tasks)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = clock()
            tasks[name]()
            elapsed = clock() - start
            if round_index >= warmup:
                samples[name].append(elapsed)
    return samples


def median(samples: Sequence[float]) -> float:
    """The median of non-empty samples."""
    if not samples:
        raise ValueError("no samples")
    return float(statistics.median(samples))


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """``median(numerator) / median(denominator)``."""
    return median(numerator) / median(denominator)


def _synchroniser(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


# --- what the pages compute -----------------------------------------------------------------


def streamlit_spec(figure: go.Figure) -> str:
    """The JSON ``st.plotly_chart`` sends for ``figure`` (its own two plotly calls)."""
    as_dict = plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True)
    return str(plotly.io.to_json(as_dict, validate=False))


def png_bytes(pixels: np.ndarray) -> bytes:
    """``pixels`` encoded as PNG, as ``st.image`` does with an array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def image_layer_switch_work(
    loaded: LoadedModel, result: CaptureResult, prepared: PreparedInput, layer_name: str
) -> list[str]:
    """The Image page's work when only the displayed layer changes, without Streamlit.

    The same view-model calls as the ``layer_browser`` fragment of ``pages/image.py``
    (:mod:`explorer.views.image`) with the page's defaults (channels by number, one scale per
    layer, page 1, the default opacity, no click): the layer menu, the layer's statistics, and
    for a map layer its first page of channels (one PNG) and its first channel large over the
    input; for a flat layer its strip. The capture is reused (the page caches it), and every
    figure is serialised as ``st.plotly_chart`` does.

    Returns:
        The JSON of every figure drawn.
    """
    image_view.layers_summary(result)
    image_view.layer_choices(result)
    shown = image_view.layer_page(loaded.categories, result, layer_name)
    if shown.vector_figure is not None:
        return [streamlit_spec(shown.vector_figure)]
    channels = image_view.channel_page(shown)
    large = image_view.channel_view(loaded.model, shown, channels.first_channel, prepared.display)
    return [streamlit_spec(channels.grid.figure), streamlit_spec(large.figure)]


def draw_page_work(loaded: LoadedModel, raw: bytes, scale: str = "layer") -> list[str]:
    """The Draw page's server-side work for one stroke, without Streamlit.

    The same calls as ``pages/draw.py`` (:mod:`explorer.views.draw`) with the default view:
    preprocess the drawing, capture every layer, the prediction, the "what the network sees"
    PNG, the softmax figure and the live maps, then every stage's caption and figure. Every
    figure is serialised as ``st.plotly_chart`` does.

    Returns:
        The JSON of every figure, in page order.
    """
    prepared: PreparedInput = loaded.prepare(raw)
    result = loaded.capture(prepared)
    result.top(1)  # the Prediction metric
    png_bytes(prepared.display)
    specs = [streamlit_spec(draw_view.softmax_figure(loaded, result))]
    draw_view.live_maps(result)
    specs += [
        streamlit_spec(stage.figure)
        for stage in draw_view.network_stages(loaded, result, prepared, scale)
    ]
    return specs


def canvas_drawing(name: str) -> Image.Image:
    """A shipped sample digit as a 280×280 RGBA canvas drawing (white ink on black)."""
    digit = Image.open(ASSETS_DIR / "digits" / name).convert("L")
    digit = digit.resize((280, 280), Image.Resampling.BILINEAR)
    return Image.merge("RGBA", [digit, digit, digit, Image.new("L", (280, 280), 255)])


def naive_grid_figure(maps: np.ndarray, cols: int = 8) -> go.Figure:
    """The naive way to draw a layer: one heatmap subplot per channel, one shared scale."""
    from plotly.subplots import make_subplots

    count = len(maps)
    rows = math.ceil(count / cols)
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.004, vertical_spacing=0.004)
    bound = float(np.abs(maps).max()) or 1.0
    hover = "row %{y} · col %{x}: %{z}<extra></extra>"
    for channel in range(count):
        fig.add_trace(
            go.Heatmap(
                z=maps[channel],
                coloraxis="coloraxis",
                hovertemplate=f"channel {channel}<br>{hover}",
            ),
            row=channel // cols + 1,
            col=channel % cols + 1,
        )
    fig.update_layout(
        coloraxis={"colorscale": "RdBu_r", "cmin": -bound, "cmax": bound},
        height=rows * 110,
        showlegend=False,
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    return fig


# --- the measurements -------------------------------------------------------------------------


def _photo_input(device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, PHOTO_SIZE, PHOTO_SIZE, generator=generator).to(device)


def display_layer(result: CaptureResult) -> LayerOutput:
    """The layer a page shows first: the first conv layer (also the largest map)."""
    return result.of_kind("conv")[0]


def capture_overhead(
    name: str, device: torch.device, repeats: int, warmup: int
) -> tuple[float, dict[str, Any]]:
    """Capture every layer ÷ bare forward pass, interleaved, same model and input.

    The capture side also moves to the host what a page displays first: the probabilities
    and the first conv layer (on the CPU that is free: ``.cpu()`` aliases). Both sides
    synchronise the GPU. Random (untrained) weights: the cost does not depend on them.
    """
    loaded = load_model(name, UNTRAINED, device)
    model = loaded.model
    x = _photo_input(device)
    sync = _synchroniser(device)
    shown = display_layer(capture(model, x)).name

    def bare() -> None:
        with torch.inference_mode():
            model(x)
        sync()

    def captured() -> None:
        result = capture(model, x)
        result.probs.cpu()
        result[shown].tensor.cpu()
        sync()

    samples = interleaved_samples({"bare": bare, "capture": captured}, repeats, warmup)
    ratio = ratio_of_medians(samples["capture"], samples["bare"])
    detail = {
        "bare_ms": round(median(samples["bare"]) * 1e3, 2),
        "capture_ms": round(median(samples["capture"]) * 1e3, 2),
        "layers": len(capture(model, x).layers),
        "moved_to_host": ["softmax", shown],
        "repeats": repeats,
    }
    return ratio, detail


def lenet_rerun(device: torch.device, repeats: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Median ms of :func:`draw_page_work` for LeNet-5, alternating two drawings."""
    loaded = load_model("lenet5", None, device)
    strokes = []
    for name in STROKE_DIGITS:
        buffer = io.BytesIO()
        canvas_drawing(name).save(buffer, format="PNG")
        strokes.append(buffer.getvalue())
    samples = interleaved_samples(
        {
            "first drawing": lambda: draw_page_work(loaded, strokes[0]),
            "second drawing": lambda: draw_page_work(loaded, strokes[1]),
        },
        repeats,
        warmup,
    )
    every = [s for values in samples.values() for s in values]
    figures_sent = len(draw_page_work(loaded, strokes[0]))
    return median(every) * 1e3, {"figures": figures_sent, "samples": len(every)}


def grid_speedup(repeats: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Naive 64-subplot figure ÷ ours for a 64×112×112 layer, both built and serialised.

    Ours is the Image page's channel grid (one PNG, a hover per tile), the figure the app
    draws for such a layer; the Draw page's per-unit heatmap is timed too, for the notes.
    """
    generator = torch.Generator().manual_seed(0)
    tensor = torch.randn(64, 112, 112, generator=generator)
    layer = LayerOutput("grid", "conv", "Conv2d", None, tensor)
    maps = tensor.numpy()
    channels = list(range(len(maps)))

    def naive() -> str:
        return streamlit_spec(naive_grid_figure(maps))

    def ours() -> str:
        values = layer.numpy()
        grid = layer_view.channel_grid_figure(values, layer.name, layer.kind, channels)
        return streamlit_spec(grid.figure)

    def heatmap() -> str:
        return streamlit_spec(figures.feature_maps_figure(layer, clickable=True).figure)

    samples = interleaved_samples(
        {"naive": naive, "ours": ours, "unit_heatmap": heatmap}, repeats, warmup
    )
    detail = {
        "naive_ms": round(median(samples["naive"]) * 1e3, 1),
        "ours_ms": round(median(samples["ours"]) * 1e3, 1),
        "unit_heatmap_ms": round(median(samples["unit_heatmap"]) * 1e3, 1),
        "unit_heatmap_speedup": round(
            ratio_of_medians(samples["naive"], samples["unit_heatmap"]), 2
        ),
        "naive_json_mb": round(len(naive()) / 1e6, 2),
        "ours_json_mb": round(len(ours()) / 1e6, 2),
        "unit_heatmap_json_mb": round(len(heatmap()) / 1e6, 2),
        "json_engine": _json_engine(),
    }
    return ratio_of_medians(samples["naive"], samples["ours"]), detail


def _json_engine() -> str:
    """The JSON engine plotly (hence Streamlit) serialises figures with."""
    engine = str(plotly.io.json.config.default_engine)
    if engine == "auto":
        try:
            import orjson  # noqa: F401
        except ImportError:
            return "json"
        return "orjson"
    return engine


def _photo(loaded: LoadedModel) -> PreparedInput:
    """A 256×256 noise photo through the model's own transforms (resize, crop, normalise)."""
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return loaded.prepare(Image.fromarray(noise))


def layer_switch(device: torch.device, repeats: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Worst median ms, over :data:`SWITCH_LAYERS`, of the Image page showing that layer."""
    loaded = load_model("resnet18", UNTRAINED, device)
    prepared = _photo(loaded)
    result = loaded.capture(prepared)
    sync = _synchroniser(device)

    def task(name: str) -> Callable[[], object]:
        def run() -> object:
            specs = image_layer_switch_work(loaded, result, prepared, name)
            sync()
            return specs

        return run

    samples = interleaved_samples({name: task(name) for name in SWITCH_LAYERS}, repeats, warmup)
    per_layer = {name: round(median(values) * 1e3, 1) for name, values in samples.items()}
    worst = max(per_layer, key=lambda name: per_layer[name])
    return median(samples[worst]) * 1e3, {"per_layer_ms": per_layer, "worst": worst}


def cold_start(
    device: torch.device, runs: int, timeout: float = 120.0
) -> tuple[float | None, str | None, dict[str, Any]]:
    """Median seconds from ``streamlit run`` to the Draw page rendered in Chromium.

    The browser is started first (it is the user's, already open); the clock starts when the
    server process is spawned and stops when the page shows the canvas and, once the model
    has loaded, its hint or prediction. Also reads the server's peak RSS after that page and,
    on the last run, after the Image page (ResNet-18's top-5 and its first layer's grid).
    """
    if not APP_FILE.is_file():
        return None, f"{APP_FILE} not found (run from the source checkout)", {}
    if not Path(CHROMIUM).exists():
        return None, f"{CHROMIUM} not installed (apt-get install chromium)", {}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "playwright is not installed (pip install playwright)", {}
    times: list[float] = []
    server_mb: list[float] = []
    image_rss: float | None = None
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for run in range(runs):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                log = Path(folder) / f"streamlit-{run}.log"
                start = time.perf_counter()
                with streamlit_server(device, log, timeout) as server:
                    page.goto(server.url)
                    for selector in PAGE_READY_SELECTORS:
                        page.locator(selector).first.wait_for(timeout=timeout * 1000)
                    times.append(time.perf_counter() - start)
                    if page.get_by_test_id("stException").count():
                        return None, "the first page shows an exception", {}
                    rss = vm_hwm_mb(server.process.pid)
                    if rss is not None:
                        server_mb.append(rss)
                    if run == runs - 1:  # then a full Image page: ResNet-18, top-5, a grid
                        page.goto(f"{server.url}/{IMAGE_PAGE_PATH}")
                        for selector in IMAGE_READY_SELECTORS:
                            page.locator(selector).first.wait_for(timeout=timeout * 1000)
                        image_rss = vm_hwm_mb(server.process.pid)
                page.close()
        except Exception as exc:  # a browser or server failure is a missing figure, not a crash
            return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", {}
        finally:
            browser.close()
    detail: dict[str, Any] = {"runs": [round(t, 2) for t in times]}
    if server_mb:
        detail["server_peak_rss_mb_draw_page"] = round(max(server_mb), 1)
    if image_rss is not None:
        detail["server_peak_rss_mb_image_page"] = image_rss
    return median(times), None, detail


# --- the machine and the report ---------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(device: torch.device) -> dict[str, Any]:
    """The machine a run was taken on: CPU, cores, threads, GPU, versions, load."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    if gpu is None and torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} (not used)"
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(affinity) if affinity is not None else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu or "none",
        "device": str(device),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "plotly": _version("plotly"),
        "streamlit": _version("streamlit"),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "commit": _commit(),
    }


def run_benchmarks(device_name: str = "cpu", quick: bool = False) -> dict[str, Any]:
    """Take every measurement; returns ``{"machine", "results", "targets", "met", "notes"}``.

    A measurement that cannot be taken here (no browser) is ``None`` with the reason in
    ``notes``.
    """
    device = pick_device(device_name)
    settings = Settings.for_mode(quick)
    results: dict[str, float | None] = {}
    notes: dict[str, Any] = {"mode": "quick" if quick else "full"}
    machine = machine_info(device)

    for name in ("resnet18", "vgg16"):
        repeats = settings.resnet_repeats if name == "resnet18" else settings.vgg_repeats
        value, detail = capture_overhead(name, device, repeats, settings.warmup)
        results[f"capture_overhead_{name}"] = round(value, 3)
        notes[f"capture_overhead_{name}"] = detail
    value, detail = lenet_rerun(device, settings.page_repeats, settings.warmup)
    results["lenet_rerun_ms"] = round(value, 1)
    notes["lenet_rerun_ms"] = detail
    value, detail = grid_speedup(settings.grid_repeats, settings.warmup)
    results["grid_speedup_64x112"] = round(value, 2)
    notes["grid_speedup_64x112"] = detail
    value, detail = layer_switch(device, settings.page_repeats, settings.warmup)
    results["layer_switch_ms_resnet18"] = round(value, 1)
    notes["layer_switch_ms_resnet18"] = detail
    seconds, reason, detail = cold_start(device, settings.cold_starts)
    results["cold_start_s"] = None if seconds is None else round(seconds, 2)
    notes["cold_start_s"] = reason or detail
    megabytes = detail.pop("server_peak_rss_mb_image_page", None)
    results["peak_rss_mb_resnet18"] = None if megabytes is None else round(megabytes, 1)
    if megabytes is None:
        notes["peak_rss_mb_resnet18"] = reason or "the server's memory could not be read"
    served_settings = served.ServedSettings.for_mode(quick)
    for part in (
        served.served_load(device, served_settings),
        served.browser_strokes(device, served_settings.browser_strokes),
    ):
        results.update(part["results"])
        notes.update(part["notes"])
    if quick:
        results["max_sessions_p95_250"] = None
        notes["max_sessions_p95_250"] = "not measured with --quick (a minute per step)"

    metrics = metrics_for(device.type)
    results = {m.key: results.get(m.key) for m in metrics}  # the table's order
    return {
        "machine": machine,
        "results": results,
        "targets": {m.key: m.target for m in metrics},
        "met": {m.key: m.met(results.get(m.key)) for m in metrics},
        "notes": notes,
    }


def format_table(report: Mapping[str, Any]) -> str:
    """The report as text: the machine, then key · value · unit · target · met."""
    machine = report["machine"]
    lines = [
        f"CNN Explorer benchmarks ({report['notes'].get('mode', 'full')}), medians of "
        "interleaved repeats",
        f"cpu: {machine['cpu']} · {machine['cores']} cores ({machine['usable_cores']} usable) · "
        f"torch threads {machine['torch_threads']} · load {machine['load_average_1m']}",
        f"gpu: {machine['gpu']} · device {machine['device']}",
        f"torch {machine['torch']} · torchvision {machine['torchvision']} · plotly "
        f"{machine['plotly']} · streamlit {machine['streamlit']} · python {machine['python']}"
        f" · commit {machine['commit']}",
        "",
    ]
    rows = [("key", "value", "unit", "target", "met")]
    for metric in metrics_for(machine["device"].split(":")[0]):
        value = report["results"].get(metric.key)
        target = (
            "—"
            if metric.target is None
            else f"{'≥' if metric.higher_is_better else '≤'} {metric.target:g}"
        )
        met = metric.met(value)
        rows.append(
            (
                metric.key,
                "n/a" if value is None else f"{value:g}",
                metric.unit,
                target,
                "—" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    skipped = [
        f"{key}: {report['notes'].get(key)}"
        for key, value in report["results"].items()
        if value is None
    ]
    if skipped:
        lines += ["", "not measured:", *(f"  {line}" for line in skipped)]
    return "\n".join(lines).rstrip()


def cmd_bench(args: argparse.Namespace) -> int:
    """``python -m explorer bench``: print the table, or one JSON object with ``--json``."""
    report = run_benchmarks(args.device, quick=args.quick)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
