"""What Linux's ``/proc`` says of a process: its CPU time, its start, its peak memory.

Each reader returns None where ``/proc`` cannot tell (no such process, not Linux).
"""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(stat: str) -> list[str]:
    """The fields of a ``/proc/<pid>/stat`` line after the name: ``[0]`` is proc(5)'s field 3.

    The name (field 2) is cut at its last ``)``: it may hold spaces and ``)``.
    """
    return stat.rsplit(")", 1)[1].split()


def _read_stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def cpu_seconds_from_stat(stat: str, ticks_per_second: int) -> float:
    """Utime + stime of a ``/proc/<pid>/stat`` line, in seconds (children not included)."""
    fields = stat_fields(stat)
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / ticks_per_second


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used so far, or None where /proc cannot tell."""
    stat = _read_stat(pid)
    return None if stat is None else cpu_seconds_from_stat(stat, os.sysconf("SC_CLK_TCK"))


def start_ticks(pid: int) -> int | None:
    """The start time of a live process (clock ticks after boot); None if gone or a zombie."""
    stat = _read_stat(pid)
    if stat is None:
        return None
    fields = stat_fields(stat)
    if fields[0] in ("Z", "X"):  # state: ended, only not reaped yet
        return None
    return int(fields[19])  # field 22 of proc(5)


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MB, where /proc has it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
