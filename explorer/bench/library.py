"""The library's benchmarks: the pages' own work timed without a server.

- ``capture_overhead_resnet18`` / ``capture_overhead_vgg16``: capturing every layer at
  224×224 ÷ the bare forward pass of the same model on the same input.
- ``lenet_rerun_ms``: the Draw page's server-side work for one stroke, through the same
  view-model calls as ``pages/draw.py`` (:func:`draw_page_work`).
- ``grid_speedup_64x112``: a naive 64-subplot plotly figure ÷ the Image page's channel grid
  (:func:`explorer.figures.channels.channel_grid_figure`).
- ``layer_switch_ms_resnet18``: the Image page's layer browser showing another layer of a
  captured ResNet-18 (:func:`image_layer_switch_work`).
- ``canvas_worst_paint_ms``: painting the costliest canvas value the Draw page's caps admit
  (:func:`explorer.inputs.strokes.worst_case_value`), parsed once.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io
import plotly.tools
import torch
from PIL import Image

from explorer.analysis.capture import CaptureResult, LayerOutput, capture
from explorer.assets import ASSETS_DIR
from explorer.bench.timing import interleaved_samples, median, ratio_of_medians, synchroniser
from explorer.figures.channels import channel_grid_figure
from explorer.figures.maps import feature_maps_figure
from explorer.hosting.drivers import SWITCH_LAYERS
from explorer.inputs.preprocess import PreparedInput
from explorer.inputs.strokes import parse_drawing, render_drawing, worst_case_value
from explorer.models.zoo import UNTRAINED, LoadedModel, load_model
from explorer.views import draw as draw_view
from explorer.views import image as image_view

PHOTO_SIZE = 224
STROKE_DIGITS = ("3_0.png", "7_1.png")  # two drawings, alternated: each run is a new stroke


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


def _photo_tensor(device: torch.device, seed: int = 0) -> torch.Tensor:
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
    x = _photo_tensor(device)
    sync = synchroniser(device)
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
        grid = channel_grid_figure(values, layer.name, layer.kind, channels)
        return streamlit_spec(grid.figure)

    def heatmap() -> str:
        return streamlit_spec(feature_maps_figure(layer, clickable=True).figure)

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


def noise_photo(loaded: LoadedModel) -> PreparedInput:
    """A 256×256 noise photo through the model's own transforms (resize, crop, normalise)."""
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return loaded.prepare(Image.fromarray(noise))


def layer_switch(device: torch.device, repeats: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Worst median ms, over :data:`SWITCH_LAYERS`, of the Image page showing that layer."""
    loaded = load_model("resnet18", UNTRAINED, device)
    prepared = noise_photo(loaded)
    result = loaded.capture(prepared)
    sync = synchroniser(device)

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


def canvas_worst_paint(repeats: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Median ms of painting the costliest canvas value the caps admit, in CPU time.

    Painting holds the GIL, so its CPU time is what it takes from every other session; it
    is timed with the thread's CPU clock, which load from other processes inflates far less
    (the wall-clock median is in the notes). The value's parse is timed apart.
    """
    value = worst_case_value()
    drawing = parse_drawing(value)
    tasks = {"paint": lambda: render_drawing(drawing), "parse": lambda: parse_drawing(value)}
    cpu = interleaved_samples(tasks, repeats, warmup, clock=time.thread_time)
    wall = interleaved_samples(tasks, repeats, warmup)
    detail = {
        "clock": "thread CPU time",
        "wall_ms": round(median(wall["paint"]) * 1e3, 2),
        "parse_ms": round(median(cpu["parse"]) * 1e3, 2),
        "canvas": list(drawing.size),
        "strokes": len(drawing.strokes),
        "points": sum(len(stroke.points) for stroke in drawing.strokes),
        "samples": len(cpu["paint"]),
    }
    return median(cpu["paint"]) * 1e3, detail
