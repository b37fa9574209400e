"""The keys ``python -m explorer bench`` reports, their units and their targets."""

from __future__ import annotations

from dataclasses import dataclass

_TABLE = """
key                        unit      cpu   cuda  better  description
capture_overhead_resnet18  ×         1.15  -     lower   capture every layer ÷ bare forward, ResNet-18, 224×224
capture_overhead_vgg16     ×         1.15  1.2   lower   capture every layer ÷ bare forward, VGG-16, 224×224
lenet_rerun_ms             ms        60    60    lower   Draw page work for one stroke
canvas_worst_paint_ms      ms        10    10    lower   Draw page: paint the costliest canvas value its caps admit
grid_speedup_64x112        ×         10    10    higher  64×112×112 layer: naive subplots ÷ the channel grid
layer_switch_ms_resnet18   ms        150   150   lower   Image page: show another ResNet-18 layer (worst of 5)
experiment_click_ms_vgg16  ms        1500  1500  lower   Experiment page: a click that changes only the second pass, VGG-16
cold_start_s               s         8     8     lower   streamlit run → Draw page in Chromium
peak_rss_mb_resnet18       MB        1500  1500  lower   peak RSS of the server after the Image page with ResNet-18
gradcam_ms_resnet18        ms        60    60    lower   Grad-CAM of ResNet-18's layer4, 224×224: forward + backward
occlusion_s_resnet18       s         3     3     lower   occlusion, ResNet-18, 224×224, 32-px window, stride 16, batched
train_epoch_s_lenet5       s         10    10    lower   Train page: one epoch of LeNet-5 on the 8,000 shipped digits
finetune_s_resnet18_3x20   s         30    30    lower   Your pictures: fine-tune ResNet-18's layer4 on 3×20 pictures to 90 % held out
scratch_epoch_s_small_3x60 s         5     5     lower   Your pictures: one epoch of the small CNN on 3×60 pictures
index_images_s_resnet18_1000 s       120   120   lower   index-images: 1,000 photos 224×224, ResNet-18, every conv layer
index_images_peak_rss_mb_resnet18_1000 MB 2048 2048 lower   index-images: the same run's peak RSS
server_cpu_ms_per_stroke   ms        60    60    lower   server CPU per finished stroke, Draw page, over its websocket
server_p95_ms_30_sessions  ms        250   250   lower   30 sessions, a stroke each every 2 s: p95 rerun latency
max_sessions_p95_250       sessions  60    60    higher  most sessions (a stroke every 2 s) held at p95 ≤ 250 ms
image_p50_ms               ms        -     -     lower   Image page, 10 sessions: p50 switch
image_p95_ms               ms        -     -     lower   Image page, 10 sessions: p95 switch
browser_stroke_p50_ms      ms        350   350   lower   Chromium: mouse-up → the Prediction shows the digit, p50
browser_stroke_p95_ms      ms        700   700   lower   … the same, p95
browser_settled_p50_ms     ms        -     -     lower   Chromium: mouse-up → every stage redrawn, p50
heavy_fairness_draw_p95_ms ms        250   250   lower   20 sessions draw (a stroke every 2 s) while 3 run VGG-16 occlusion: p95
"""
"""Every key, in report order: its unit, its target on the CPU and on a GPU (``-``: none),
which direction is better, and what it measures. The library's own costs
(:mod:`explorer.bench.library`) and the server's start come first, then the served app's
(:mod:`explorer.bench.served`: its websocket and Chromium)."""


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
    """Every key the command reports, with the targets for ``device`` (cpu/cuda)."""
    column = 3 if device == "cuda" else 2
    metrics = []
    for line in _TABLE.strip().splitlines()[1:]:
        cells = line.split(maxsplit=5)
        target = cells[column]
        metrics.append(
            Metric(
                key=cells[0],
                unit=cells[1],
                target=None if target == "-" else float(target),
                higher_is_better=cells[4] == "higher",
                description=cells[5],
            )
        )
    return metrics
