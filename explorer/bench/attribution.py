"""The attribution benchmarks: what "Why this class?" costs on ResNet-18 at 224×224.

- ``gradcam_ms_resnet18``: :func:`explorer.analysis.attribution.attribute` with Grad-CAM of
  ``layer4``: the private copy, the forward pass with gradients, the backward pass, the map.
- ``occlusion_s_resnet18``: occlusion with a 32-px window and a stride of 16 (169 windows,
  16 occluded inputs per forward pass).
"""

from __future__ import annotations

from typing import Any

import torch

from explorer.analysis.attribution import OCCLUSION_BATCH, Settings, attribute, occlusion_windows
from explorer.bench.library import noise_photo
from explorer.bench.timing import interleaved_samples, median, synchroniser
from explorer.models.zoo import UNTRAINED, load_model


def attribution_costs(
    device: torch.device, repeats: int, occlusion_repeats: int, warmup: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median Grad-CAM milliseconds and occlusion seconds; the results and their notes."""
    loaded = load_model("resnet18", UNTRAINED, device)
    prepared = noise_photo(loaded)
    sync = synchroniser(device)

    def run(settings: Settings) -> object:
        found = attribute(loaded.model, prepared.tensor, settings)
        sync()
        return found

    gradcam = Settings("gradcam", 0, layer="layer4")
    occlusion = Settings("occlusion", 0, window=32, stride=16)
    cam = interleaved_samples({"gradcam": lambda: run(gradcam)}, repeats, warmup)["gradcam"]
    occluded = interleaved_samples({"occlusion": lambda: run(occlusion)}, occlusion_repeats, 0)
    windows = occlusion_windows((224, 224), occlusion.window, occlusion.stride)
    results = {
        "gradcam_ms_resnet18": round(median(cam) * 1e3, 1),
        "occlusion_s_resnet18": round(median(occluded["occlusion"]), 2),
    }
    notes = {
        "gradcam_ms_resnet18": {"layer": "layer4", "repeats": repeats},
        "occlusion_s_resnet18": {
            "windows": windows,
            "per_forward_pass": OCCLUSION_BATCH,
            "repeats": occlusion_repeats,
        },
    }
    return results, notes
