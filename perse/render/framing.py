"""Cameras framed on a head: the default front/orbit view used by the CLI, exports and the studio."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from perse.render.camera import Camera, orbit_camera

DEFAULT_FOV = 18.0
HEAD_FRAME_MARGIN = 1.6  # half the side of a head-framed view, in head radii (room for hair)


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


def framed_on_head(camera: Camera, centre: torch.Tensor, radius: float, size: int,
                   margin: float = HEAD_FRAME_MARGIN) -> Camera:
    """The same view, cropped and resized to (size x size) pixels around the head: a square of
    2 * margin * radius (metres, at the head centre's depth) centred on the head's centre (3,). Measures
    then see any portrait's head at the same resolution, however it was framed."""
    cam_centre = camera.world_to_cam[:3, :3] @ centre.to(camera.K.dtype) + camera.world_to_cam[:3, 3]
    uv = camera.project(centre[None].to(camera.K.dtype))[0]
    half = float(camera.K[1, 1]) * margin * radius / float(cam_centre[2])
    scale = size / (2 * half)
    K = camera.K.clone()
    K[0, 0], K[1, 1] = K[0, 0] * scale, K[1, 1] * scale
    K[0, 2] = (K[0, 2] - (uv[0] - half)) * scale
    K[1, 2] = (K[1, 2] - (uv[1] - half)) * scale
    return Camera(K, camera.world_to_cam.clone(), size, size, camera.near, camera.far)


def yawed_camera(camera: Camera, centre: torch.Tensor, yaw_deg: float) -> Camera:
    """`camera` orbited by `yaw_deg` about the world vertical axis (+y) through `centre` (3,): the head
    seen turned by that angle, framing kept. Positive yaw turns toward the subject's left, as
    `perse.eval.views.front_camera` does."""
    a = math.radians(yaw_deg)
    c, s = math.cos(a), math.sin(a)
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=camera.world_to_cam.dtype)
    # world -> world: rotate the scene by -yaw about the centre (the camera moves by +yaw around it)
    m = torch.eye(4, dtype=rot.dtype)
    m[:3, :3] = rot.T
    m[:3, 3] = centre.to(rot.dtype) - rot.T @ centre.to(rot.dtype)
    return replace(camera, world_to_cam=camera.world_to_cam @ m)
