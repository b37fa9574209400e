"""Random distortions of digits while they train: stroke thickness, affine warp, elastic wobble."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_AUGMENTATION", "Augmentation", "augment"]


@dataclass(frozen=True)
class Augmentation:
    """Random distortions applied on the fly to each training batch.

    Attributes:
        rotation_deg: Maximum rotation, either way.
        scale: Range of the isotropic scale factor.
        aspect: Maximum extra stretch of one axis against the other (1.1 = ±10 %).
        shear_deg: Maximum horizontal shear, either way.
        translate_px: Maximum shift along each axis, in pixels of the 28×28 digit.
        elastic_px: Standard deviation of a smooth random displacement field, in pixels.
        thickness: Maximum blend towards a 3×3 dilation (thicker) or erosion (thinner) stroke.
    """

    rotation_deg: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    aspect: float = 1.1
    shear_deg: float = 12.0
    translate_px: float = 2.5
    elastic_px: float = 0.8
    thickness: float = 0.5


DEFAULT_AUGMENTATION = Augmentation()
"""The distortions the shipped digit nets trained with."""


def augment(
    pixels: torch.Tensor, generator: torch.Generator, aug: Augmentation = DEFAULT_AUGMENTATION
) -> torch.Tensor:
    """Randomly distort a batch of digits: stroke thickness, affine warp and elastic wobble.

    Args:
        pixels: (N, 1, H, W) float images in 0–1, white ink on black.
        generator: Source of randomness, so runs are reproducible.
        aug: Ranges of the distortions.

    Returns:
        A new (N, 1, H, W) tensor in 0–1.
    """
    n, _, h, w = pixels.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.empty(n).uniform_(low, high, generator=generator)

    # Thickness: blend towards a dilated or eroded copy (max-pool / min-pool).
    t = uniform(-aug.thickness, aug.thickness).view(n, 1, 1, 1)
    thick = F.max_pool2d(pixels, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-pixels, 3, stride=1, padding=1)
    pixels = pixels + t.clamp(min=0) * (thick - pixels) + (-t).clamp(min=0) * (thin - pixels)

    # Forward map A (digit → image) in normalised coordinates; affine_grid wants its inverse.
    angle = torch.deg2rad(uniform(-aug.rotation_deg, aug.rotation_deg))
    shear = torch.tan(torch.deg2rad(uniform(-aug.shear_deg, aug.shear_deg)))
    scale = uniform(*aug.scale)
    stretch = torch.exp(uniform(-np.log(aug.aspect), np.log(aug.aspect)))
    sx, sy = scale * stretch, scale / stretch
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.stack(
        [
            torch.stack([cos * sx, cos * shear * sy - sin * sy], dim=1),
            torch.stack([sin * sx, sin * shear * sy + cos * sy], dim=1),
        ],
        dim=1,
    )
    inverse = torch.linalg.inv(forward)
    shift = torch.stack(
        [uniform(-1, 1) * aug.translate_px * 2 / w, uniform(-1, 1) * aug.translate_px * 2 / h],
        dim=1,
    )
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)

    if aug.elastic_px > 0:
        coarse = torch.randn(n, 2, 4, 4, generator=generator)
        coarse = coarse * aug.elastic_px * 2 / torch.tensor([w, h]).view(1, 2, 1, 1)
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)

    warped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped.clamp(0.0, 1.0)
