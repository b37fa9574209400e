"""The load generator's report: totals, latency percentiles, CPU per rerun, each session's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from explorer.bench.loadplan import LoadPlan
from explorer.bench.timing import percentile
from explorer.hosting.session import SessionStats

MAX_ERROR_MESSAGES = 10


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def build_report(
    plan: LoadPlan,
    stats: Sequence[SessionStats],
    window_s: float,
    server_cpu_s: float | None,
    client_cpu_s: float,
) -> dict[str, Any]:
    """The run's numbers: totals, latency percentiles, CPU per rerun and each session's.

    ``reruns`` counts the inputs sent in the window; ``errors`` those that failed (plus first
    loads that failed); latencies are of the reruns that ended, page loads apart. A session's
    ``inputs`` counts each input sent, ``ok`` those whose rerun had no error (on the Draw page:
    the digit drawn was the one predicted). ``replicas`` counts the sessions each replica
    served, where a balancer named it (None otherwise).
    """
    latencies = [ms for s in stats for ms in s.latencies_ms]
    first_loads = [s.first_load_ms for s in stats if s.first_load_ms is not None]
    reruns = sum(s.reruns for s in stats)
    problems = [f"session {s.index}: {p}" for s in stats for p in s.problems]
    per_rerun = (server_cpu_s * 1e3 / reruns) if server_cpu_s is not None and reruns else None
    replicas = Counter(s.replica for s in stats if s.replica is not None)
    return {
        "page": plan.page,
        "sessions": plan.sessions,
        "interval_s": plan.interval_s,
        "duration_s": plan.duration_s,
        "window_s": round(window_s, 3),
        "reruns": reruns,
        "reruns_per_s": round(reruns / window_s, 2) if window_s > 0 else None,
        "errors": sum(s.errors for s in stats),
        "wrong_predictions": sum(s.wrong_predictions for s in stats)
        if plan.page == "draw"
        else None,
        "late_sends": sum(s.late_sends for s in stats),
        "max_late_ms": _ms(max((s.max_late_ms for s in stats), default=0.0)),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "max_ms": _ms(max(latencies, default=None)),
        "first_load_p50_ms": _ms(percentile(first_loads, 50)),
        "server_cpu_ms_per_rerun": _ms(per_rerun),
        "client_cpu_ms_per_rerun": _ms(client_cpu_s * 1e3 / reruns) if reruns else None,
        "error_messages": problems[:MAX_ERROR_MESSAGES],
        "replicas": dict(sorted(replicas.items())) if replicas else None,
        "per_session": [
            {
                "session": s.index,
                "reruns": s.reruns,
                "errors": s.errors,
                "wrong_predictions": s.wrong_predictions if plan.page == "draw" else None,
                "late_sends": s.late_sends,
                "first_load_ms": _ms(s.first_load_ms),
                "p50_ms": _ms(percentile(s.latencies_ms, 50)),
                "inputs": dict(sorted(s.inputs.items())),
                "ok": dict(sorted(s.ok.items())),
                "stopped": s.stopped,
                "replica": s.replica,
            }
            for s in stats
        ],
    }


def format_table(report: Mapping[str, Any]) -> str:
    """A short readable summary of a report."""

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    wrong = report["wrong_predictions"]
    lines = [
        f"{report['page']} page: {report['sessions']} sessions, one input every "
        f"{report['interval_s']:g} s each, for {report['duration_s']:g} s "
        f"(measured {report['window_s']:.1f} s)",
        f"reruns      {report['reruns']} ({report['reruns_per_s']} /s), {report['errors']} errors"
        + (f", {wrong} wrong predictions" if wrong is not None else "")
        + f", {report['late_sends']} late sends",
        f"latency ms  p50 {ms(report['p50_ms'])}  p95 {ms(report['p95_ms'])}  "
        f"max {ms(report['max_ms'])}  (first load p50 {ms(report['first_load_p50_ms'])})",
        f"CPU ms      server {ms(report['server_cpu_ms_per_rerun'])} per rerun, "
        f"this client {ms(report['client_cpu_ms_per_rerun'])}",
        *(
            ["replicas    " + ", ".join(f"{k} ×{v}" for k, v in report["replicas"].items())]
            if report.get("replicas")
            else []
        ),
        "",
        f"{'session':>7} {'reruns':>6} {'errors':>6} {'late':>4} {'p50 ms':>8}  inputs",
    ]
    for row in report["per_session"]:
        inputs = " ".join(f"{name}×{count}" for name, count in row["inputs"].items())
        lines.append(
            f"{row['session']:>7} {row['reruns']:>6} {row['errors']:>6} {row['late_sends']:>4} "
            f"{ms(row['p50_ms']):>8}  {inputs}"
            + (f"  stopped: {row['stopped']}" if row["stopped"] else "")
        )
    lines += [f"  {message}" for message in report["error_messages"]]
    return "\n".join(lines)
