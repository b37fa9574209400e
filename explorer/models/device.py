"""Choose the device inference runs on: CUDA, else MPS, else the CPU, overridable."""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

DEVICE_ENV_VAR = "EXPLORER_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device does not exist or is not available on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Return the device types usable here, best first (always ends with ``"cpu"``)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(preference: str | None = None) -> torch.device:
    """Resolve a device preference to a ``torch.device``.

    Args:
        preference: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. ``None``
            reads the ``EXPLORER_DEVICE`` environment variable, then falls back to ``"auto"``.

    Raises:
        DeviceError: the device is unknown or not available here.
    """
    choice = (preference or os.environ.get(DEVICE_ENV_VAR) or "auto").strip().lower()
    if choice == "auto":
        return torch.device(available_devices()[0])
    kind = choice.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {choice!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if kind not in available_devices():
        raise DeviceError(
            f"device {choice!r} is not available here (available: {', '.join(available_devices())})"
        )
    try:
        device = torch.device(choice)
    except RuntimeError as exc:
        raise DeviceError(f"invalid device {choice!r}: {exc}") from None
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise DeviceError(
            f"device {choice!r} is not available ({torch.cuda.device_count()} CUDA device(s))"
        )
    return device


def describe_device(device: torch.device | str) -> str:
    """A short human description, e.g. ``"cuda:0 (NVIDIA H100)"`` or ``"cpu (2 threads)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return str(device)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an accelerator out-of-memory error."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def move_to_cpu(model: nn.Module) -> torch.device:
    """Move ``model`` to the CPU and free the accelerator's cached memory; the CPU device."""
    model.to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return torch.device("cpu")


def place_model(model: nn.Module, target: torch.device) -> torch.device:
    """Move ``model`` to ``target``, or to the CPU if ``target`` runs out of memory.

    Returns:
        Where the model now is: ``target``, or the CPU.
    """
    try:
        model.to(target)
    except Exception as exc:
        if target.type == "cpu" or not is_out_of_memory(exc):
            raise
        model.to("cpu")
        return torch.device("cpu")
    return target


SERVER_THREADS_ENV = "EXPLORER_TORCH_THREADS"
SWITCH_INTERVAL_S = 0.0005


def configure_server_threads(default: int = 1) -> int:
    """Set the app server's threads: one per forward pass, a short GIL switch interval.

    A server runs many sessions' forward passes at once, each on its own script thread:
    parallelism across sessions beats threads within one pass. On 2 cores, LeNet-5's capture
    takes 0.16 ms with one thread and 4 ms with two (OpenMP's hand-offs cost more than the
    work), and far more while other sessions hold the cores. ``$EXPLORER_TORCH_THREADS``
    overrides the default.

    torch's count is per thread: this sets the calling thread's and the one every thread
    takes when it first runs torch, not a running thread's. So the server calls it once, at
    its start, before any page runs (``streamlit_app.py``), never as a side effect of an
    import.
    """
    raw = os.environ.get(SERVER_THREADS_ENV, "")
    threads = int(raw) if raw.isdigit() and int(raw) > 0 else default
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    # Script threads hold the GIL for long stretches; the event loop that sends their
    # messages waits up to the switch interval (5 ms) each time it needs it back. 0.5 ms:
    # 50 simulated students on 2 cores at p95 71 ms, where 5 ms collapsed at 50.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return threads
