"""Hosting: the app as a real server, its scheduler for heavy work, and clients that speak to it.

- The server: :mod:`.server` starts ``streamlit run`` (tests, benchmarks), :mod:`.serve` is
  ``make run``, :mod:`.cluster` runs replicas behind nginx; :mod:`.procfs` reads a process's
  CPU time, start and peak memory from ``/proc``.
- Heavy work: :mod:`.scheduler` offers every name below it: a job's :mod:`.cost` and budget,
  :mod:`.jobs` and where they run, the fair lines of :mod:`.jobqueue`, the answers'
  :mod:`.cache`, and :mod:`.profiles`, what a model's pass costs here.
- The app's surface: :mod:`.addresses`, each page's URL path and the widget keys that pages
  and clients share.
- Browser-like clients: :mod:`.protobuf` (the wire format) and :mod:`.messages` (Streamlit's
  websocket messages), :mod:`.client` (URLs, cookies, the websocket), :mod:`.drivers` (what a
  session does on each page) and :mod:`.session` (one session that loads a page and times
  its reruns). The cluster warms its replicas with them; the benchmarks load the app with
  them (:mod:`explorer.bench.loadtest`).

The package imports nothing itself; ``__all__`` names its modules.
"""

__all__ = [
    "addresses",
    "cache",
    "client",
    "cluster",
    "cost",
    "drivers",
    "jobqueue",
    "jobs",
    "messages",
    "procfs",
    "profiles",
    "protobuf",
    "scheduler",
    "serve",
    "server",
    "session",
]
