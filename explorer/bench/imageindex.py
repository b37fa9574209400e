"""The image index's benchmark: 1,000 photos through ResNet-18, every conv layer indexed.

- ``index_images_s_resnet18_1000``: wall seconds of ``python -m explorer index-images`` over
  1,000 synthetic 224×224 photos (coloured shapes on noise, JPEG and PNG, in sub-folders),
  ResNet-18 with every conv layer (20 layers, 4,800 channels), k = 9. The command runs in a
  subprocess, so the figure includes Python's and torch's start and loading the model.
- ``index_images_peak_rss_mb_resnet18_1000``: that process's peak RSS (``wait4``'s
  ``ru_maxrss``): the index keeps per channel only its top k, never the activations.

Untrained (random) weights when the pretrained ones are not on this machine: the same
convolutions, so the same cost. The notes give the index's size on disk.

With ``--quick`` the command runs on :data:`QUICK_IMAGES` photos only: a check that it works,
not a figure. Both keys are then ``None`` and the notes hold what the check measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

IMAGES = 1_000
QUICK_IMAGES = 100
SIDE = 224
SHAPES = ("ellipse", "rectangle", "triangle")


def synthetic_photos(
    folder: Path, count: int, side: int = SIDE, seed: int = 0, formats: tuple[str, ...] = ()
) -> list[Path]:
    """Write ``count`` pictures of a coloured shape on a noisy background under ``folder``.

    Each has its own colours, shape, size and place, and noise (so no two units of a map tie).
    Every tenth goes into a sub-folder. ``formats``: the suffixes to cycle through (default
    ``.png`` and ``.jpg``).
    """
    rng = np.random.default_rng(seed)
    suffixes = formats or (".png", ".jpg")
    written = []
    for i in range(count):
        background = rng.integers(0, 256, size=3)
        noise = rng.normal(0, 12, size=(side, side, 3))
        pixels = np.clip(background + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        size = int(rng.integers(side // 6, side // 2))
        left, top = (int(v) for v in rng.integers(0, side - size, size=2))
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        draw = ImageDraw.Draw(image)
        box = (left, top, left + size, top + size)
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(left, top + size), (left + size // 2, top), box[2:]], fill=fill)
        where = folder / f"set{i % 3}" if i % 10 == 0 else folder
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"shape_{i:05d}{suffixes[i % len(suffixes)]}"
        image.save(path, quality=92) if path.suffix == ".jpg" else image.save(path)
        written.append(path)
    return written


def index_images_cost(quick: bool = False) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Seconds and peak RSS (MB) of indexing :data:`IMAGES` synthetic photos with ResNet-18.

    ``quick``: :data:`QUICK_IMAGES` photos, a check rather than a figure (the keys ``None``,
    the check's numbers in the notes).
    """
    count = QUICK_IMAGES if quick else IMAGES
    with tempfile.TemporaryDirectory(prefix="index-bench-") as temporary:
        folder = Path(temporary, "photos")
        synthetic_photos(folder, count)
        out = Path(temporary, "photos.index.npz")
        command = [
            sys.executable,
            "-m",
            "explorer",
            "index-images",
            str(folder),
            "--model",
            "resnet18",
            "--out",
            str(out),
            "--no-progress",
        ]
        load = os.getloadavg()[0]
        log = Path(temporary, "stderr.txt")
        with log.open("w") as stderr:  # a file, not a pipe: nobody reads while it runs
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN mixes in earlier ones)
            _pid, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        errors = log.read_text()
        if process.returncode != 0:
            raise RuntimeError(f"index-images failed: {errors.strip()[-300:]}")
        index_bytes = out.stat().st_size
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    notes = {
        "images": count,
        "side": SIDE,
        "load_average_1m_before": round(load, 2),
        "index_mb": round(index_bytes / 2**20, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        # CPU seconds of the process: on a loaded machine, what the wall time would shrink to
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }
    measured: dict[str, float | None] = {
        "index_images_s_resnet18_1000": round(seconds, 1),
        "index_images_peak_rss_mb_resnet18_1000": round(peak_mb, 1),
    }
    if not quick:
        return measured, {key: notes for key in measured}
    # Like every key not measured with --quick: None, and one line saying why (and the check)
    return (
        dict.fromkeys(measured),
        {
            key: f"not measured with --quick: a check on {count} images only gave {value:g}"
            for key, value in measured.items()
        },
    )
