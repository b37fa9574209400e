"""``python -m explorer bench``: every benchmark, its report and its table.

The keys are stable names so that runs can be compared across commits (see
``BENCHMARKS.md``): the library's (:mod:`explorer.bench.library`), the server's start
(:mod:`explorer.bench.startup`) and the served app's (:mod:`explorer.bench.served`). Nothing
here imports Streamlit: the pages are measured through the view-model calls they make, and
the server as a ``streamlit run`` subprocess driven by Chromium and simulated sessions.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from explorer.bench import served
from explorer.bench.attribution import attribution_costs
from explorer.bench.experiment import experiment_click
from explorer.bench.fairness import heavy_fairness
from explorer.bench.imageindex import index_images_cost
from explorer.bench.library import (
    canvas_worst_paint,
    capture_overhead,
    grid_speedup,
    layer_switch,
    lenet_rerun,
)
from explorer.bench.machine import machine_info
from explorer.bench.metrics import metrics_for
from explorer.bench.pictures import pictures_costs
from explorer.bench.startup import cold_start
from explorer.bench.timing import Settings
from explorer.bench.training import training_costs
from explorer.models.device import pick_device


def _library_keys(
    device: Any, settings: Settings, results: dict[str, float | None], notes: dict[str, Any]
) -> None:
    """The library's own costs: capture overhead, the Draw page's rerun and paint, the grid."""
    for name in ("resnet18", "vgg16"):
        repeats = settings.resnet_repeats if name == "resnet18" else settings.vgg_repeats
        value, detail = capture_overhead(name, device, repeats, settings.warmup)
        results[f"capture_overhead_{name}"] = round(value, 3)
        notes[f"capture_overhead_{name}"] = detail
    measured = {
        "lenet_rerun_ms": (lenet_rerun(device, settings.page_repeats, settings.warmup), 1),
        "canvas_worst_paint_ms": (
            canvas_worst_paint(5 * settings.page_repeats, settings.warmup),
            2,
        ),
        "grid_speedup_64x112": (grid_speedup(settings.grid_repeats, settings.warmup), 2),
        "layer_switch_ms_resnet18": (
            layer_switch(device, settings.page_repeats, settings.warmup),
            1,
        ),
    }
    for key, ((value, detail), digits) in measured.items():
        results[key] = round(value, digits)
        notes[key] = detail


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

    _library_keys(device, settings, results, notes)
    costs, detail = attribution_costs(
        device, settings.page_repeats, 1 if quick else 3, settings.warmup
    )
    results.update(costs)
    notes.update(detail)
    index_costs, detail = index_images_cost(quick)  # --quick: 100 images, a check only
    results.update(index_costs)
    notes.update(detail)
    costs, detail = training_costs(1 if quick else 3)
    results.update(costs)
    notes.update(detail)
    picture_costs, detail = pictures_costs(1 if quick else 3)
    results.update(picture_costs)
    notes.update(detail)
    seconds, reason, detail = cold_start(device, settings.cold_starts)
    results["cold_start_s"] = None if seconds is None else round(seconds, 2)
    notes["cold_start_s"] = reason or detail
    megabytes = detail.pop("server_peak_rss_mb_image_page", None)
    results["peak_rss_mb_resnet18"] = None if megabytes is None else round(megabytes, 1)
    if megabytes is None:
        notes["peak_rss_mb_resnet18"] = reason or "the server's memory could not be read"
    served_settings = served.ServedSettings.for_mode(quick)
    for part in (
        experiment_click(device, settings),
        served.served_load(device, served_settings),
        served.browser_strokes(device, served_settings.browser_strokes),
        heavy_fairness(device, quick),
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
