"""The keys ``python -m explorer bench`` reports, their units and their targets."""

from __future__ import annotations

from dataclasses import dataclass


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
        # The served app (explorer.bench.served): a real server, Streamlit's protocol, Chromium.
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
