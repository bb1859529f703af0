"""Gaussians bound to mesh triangles (GaussianAvatars-style binding), as pure functions.

Each triangle has a frame (`perse.geometry.triangles.triangle_frames`): origin at its centroid, an
orthonormal rotation built from its first edge and its normal, and a scale (mean edge length). A bound
Gaussian stores its position, rotation and log-scale in that frame; posing the mesh moves, turns and
scales it with the triangle, which costs one small tensor expression per frame and no network evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from perse.geometry.rotations import matrix_to_quat, quat_multiply
from perse.geometry.triangles import TriangleFrames, corners, from_frame
from perse.render.gaussians import Gaussians


@dataclass
class LocalGaussians:
    """Gaussians in their parent triangles' frames (all pre-activation except positions).

    parent: (N,) triangle index.   position: (N, 3) in units of the triangle scale.
    quat: (N, 4) unnormalised, relative to the triangle frame.   log_scale: (N, 3) relative to the
    triangle scale.   opacity_logit: (N,).   color_logit: (N, 3).
    """

    parent: Tensor
    position: Tensor
    quat: Tensor
    log_scale: Tensor
    opacity_logit: Tensor
    color_logit: Tensor

    def detach(self) -> "LocalGaussians":
        return LocalGaussians(self.parent, self.position.detach(), self.quat.detach(), self.log_scale.detach(),
                              self.opacity_logit.detach(), self.color_logit.detach())


def bind_to_world(local: LocalGaussians, frames: TriangleFrames) -> Gaussians:
    """Place local Gaussians on a posed mesh's triangle frames -> world-space `Gaussians`."""
    R = frames.rotations[local.parent]  # (N, 3, 3)
    k = frames.scales[local.parent][:, None]  # (N, 1)
    means = from_frame(local.position, local.parent, frames)
    quats = quat_multiply(matrix_to_quat(R), F.normalize(local.quat, dim=-1))
    return Gaussians(
        means=means,
        quats=quats,
        scales=k * torch.exp(local.log_scale),
        opacities=torch.sigmoid(local.opacity_logit),
        colors=torch.sigmoid(local.color_logit),
    )


def sample_on_triangles(vertices: Tensor, faces: Tensor, count: int, generator: torch.Generator,
                        face_weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Area-weighted random points on a mesh.

    Args:
        vertices: (V, 3); faces: (F, 3); count: number of points.
        face_weights: optional (F,) non-negative multipliers of the area (0 excludes a face).
    Returns:
        parent: (count,) face index; bary: (count, 3) barycentric coordinates.
    """
    if count == 0:  # e.g. an avatar without categories has no shell Gaussians
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 3)
    a, b, c = corners(vertices, faces)
    area = 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=-1)
    weights = area if face_weights is None else area * face_weights
    parent = torch.multinomial(weights, count, replacement=True, generator=generator)
    u, v = torch.rand(count, generator=generator), torch.rand(count, generator=generator)
    flip = u + v > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    bary = torch.stack([1 - u - v, u, v], dim=-1)
    return parent, bary
