"""Measured speed: the library's benchmarks, the served app's, and the load generator.

``python -m explorer bench`` (:mod:`.suite`) runs every benchmark and reports the keys of
:mod:`.metrics` with their targets. The library's own costs, timed without a server
(:mod:`.library`, :mod:`.attribution`, :mod:`.experiment`, :mod:`.training`, :mod:`.pictures`,
:mod:`.imageindex`, with :mod:`.timing`'s repeats, medians and percentiles); the served app's
(:mod:`.startup`: its start and memory; :mod:`.served`: server CPU and latency under load, and
Chromium; :mod:`.fairness`: drawing while classmates run heavy jobs); :mod:`.machine`: what it
all ran on. ``python -m explorer loadtest`` (:mod:`.loadcommand`) runs the load generator: a
:mod:`.loadplan`, run by :mod:`.loadtest` with :mod:`explorer.hosting.session`'s sessions,
reported by :mod:`.loadreport`.

The package imports nothing itself; ``__all__`` names its modules.
"""

__all__ = [
    "attribution",
    "experiment",
    "fairness",
    "imageindex",
    "library",
    "loadcommand",
    "loadplan",
    "loadreport",
    "loadtest",
    "machine",
    "metrics",
    "pictures",
    "served",
    "startup",
    "suite",
    "timing",
    "training",
]
