"""Cameras framed on a head: the default front/orbit view used by the CLI, exports and the studio."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from perse.render.camera import Camera, orbit_camera

DEFAULT_FOV = 18.0


def head_bounds(vertices: Tensor) -> tuple[Tensor, float]:
    """Centre (3,) and radius of a head's vertices (V, 3), robust to a long neck: taken over the upper
    70% of the height (for FLAME-like heads, everything above the chin) so the head, not the neck, is
    centred."""
    y = vertices[:, 1]
    lo, hi = float(y.min()), float(y.max())
    upper = vertices[y > lo + 0.3 * (hi - lo)]
    center = (upper.max(0).values + upper.min(0).values) / 2
    radius = float((upper - center).norm(dim=1).max())
    return center, radius


def orbit_view(vertices: Tensor, yaw_deg: float = 0.0, pitch_deg: float = 0.0, size: int = 512,
               fov_deg: float = DEFAULT_FOV, zoom: float = 1.0, height: int | None = None,
               pan: tuple[float, float] = (0.0, 0.0)) -> Camera:
    """A camera orbiting the head's centre at a distance where the head fills ~85% of the frame."""
    center, radius = head_bounds(vertices)
    distance = radius / math.sin(math.radians(fov_deg) / 2) / 0.85 / max(zoom, 1e-3)
    target = center + torch.tensor([pan[0], pan[1], 0.0])
    return orbit_camera(yaw_deg, pitch_deg, distance, tuple(target.tolist()), fov_deg, size, height or size)
