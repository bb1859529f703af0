"""Triangles: corners, unit normals, closest points, barycentric coordinates and per-triangle frames.

Binding. A point is bound to a triangle by its coordinates in the triangle's frame (`to_frame`), in
units of the triangle's scale; evaluated on the posed triangle (`from_frame`) it moves, turns and scales
with it. This is the one binding of the project: the avatar's Gaussians (`perse.avatar.binding`) and
the generator's accessory, mouth and hair geometry (`perse.synth.binding`) both use it.

Arrays are numpy or torch alike where the docstring says so (the same expression serves both);
triangle frames are torch (the avatar's Gaussians are bound to them and trained through them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Array = np.ndarray | Tensor


def corners(vertices: Array, faces) -> tuple[Array, Array, Array]:
    """The three corners of every face: vertices (..., V, 3), faces (F, 3) -> three (..., F, 3)."""
    return vertices[..., faces[:, 0], :], vertices[..., faces[:, 1], :], vertices[..., faces[:, 2], :]


def unit_normals(a: Array, b: Array, c: Array, eps: float = 1e-20) -> Array:
    """Unit normals (..., 3) of triangles (a, b, c) wound counter-clockwise; numpy or torch."""
    if isinstance(a, Tensor):
        n = torch.linalg.cross(b - a, c - a)
        return n / n.norm(dim=-1, keepdim=True).clamp_min(eps)
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), eps)


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest points on triangles (a, b, c) to points p, all (..., 3) broadcastable (Ericson, RTCD 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    eps = 1e-30
    # Interior by default, then overwrite the Voronoi regions of edges and vertices (order matters).
    denom = np.where(np.abs(va + vb + vc) < eps, eps, va + vb + vc)
    v, w = vb / denom, vc / denom
    out = a + ab * v[..., None] + ac * w[..., None]

    def put(mask, value):
        nonlocal out
        out = np.where(mask[..., None], value, out)

    t_bc = (d4 - d3) / np.where(np.abs((d4 - d3) + (d5 - d6)) < eps, eps, (d4 - d3) + (d5 - d6))
    put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + (c - b) * t_bc[..., None])
    t_ac = d2 / np.where(np.abs(d2 - d6) < eps, eps, d2 - d6)
    put((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * t_ac[..., None])
    t_ab = d1 / np.where(np.abs(d1 - d3) < eps, eps, d1 - d3)
    put((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * t_ab[..., None])
    put((d6 >= 0) & (d5 <= d6), c)
    put((d3 >= 0) & (d4 <= d3), b)
    put((d1 <= 0) & (d2 <= 0), a)
    return out


def barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of points p in the planes of triangles (a, b, c), all (N, 3)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - v - w, v, w], axis=-1)


def interpolate(a: Array, b: Array, c: Array, bary: Array) -> Array:
    """Points sum_i bary_i * corner_i: corners (..., N, 3), bary (N, 3); numpy or torch."""
    return a * bary[:, 0:1] + b * bary[:, 1:2] + c * bary[:, 2:3]


@dataclass
class TriangleFrames:
    """origins: (F, 3); rotations: (F, 3, 3) columns = tangent, bitangent, normal; scales: (F,)."""

    origins: Tensor
    rotations: Tensor
    scales: Tensor


def triangle_frames(vertices: Tensor, faces: Tensor) -> TriangleFrames:
    """Per-triangle frames of one mesh: origin at the centroid, rotation from the first edge and the
    normal, scale the mean edge length. vertices: (V, 3); faces: (F, 3) -> TriangleFrames with F rows."""
    a, b, c = corners(vertices, faces)
    origins = (a + b + c) / 3.0
    e0, e1 = b - a, c - a
    normal = F.normalize(torch.linalg.cross(e0, e1), dim=-1, eps=1e-12)
    tangent = F.normalize(e0, dim=-1, eps=1e-12)
    bitangent = torch.linalg.cross(normal, tangent)
    rotations = torch.stack([tangent, bitangent, normal], dim=-1)
    scales = ((b - a).norm(dim=-1) + (c - b).norm(dim=-1) + (a - c).norm(dim=-1)) / 3.0
    return TriangleFrames(origins, rotations, scales)


def to_frame(points: Tensor, parent: Tensor, frames: TriangleFrames) -> Tensor:
    """Coordinates (N, 3) of world points (N, 3) in the frames of their parent triangles (N,), in units
    of each triangle's scale (the inverse of `from_frame`)."""
    R = frames.rotations[parent]
    k = frames.scales[parent][:, None]
    return (R.transpose(-1, -2) @ (points - frames.origins[parent])[..., None])[..., 0] / k


def from_frame(local: Tensor, parent: Tensor, frames: TriangleFrames) -> Tensor:
    """World points (N, 3) of frame coordinates `local` (N, 3) on the parent triangles' (posed) frames."""
    R = frames.rotations[parent]
    k = frames.scales[parent][:, None]
    return frames.origins[parent] + k * (R @ local[..., None])[..., 0]
