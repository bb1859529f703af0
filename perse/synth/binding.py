"""Points bound to a triangle mesh: the coordinates that carry accessory, mouth and hair geometry with the head.

Each point is *bound* to the nearest allowed triangle (`bind_to_mesh`): the triangle index and the
point's coordinates in that triangle's frame, the project's one binding (`perse.geometry.triangles.
to_frame`, the same the avatar's Gaussians use). Evaluating them on a deformed mesh (`apply_binding`)
moves the points with any expression, jaw, neck or head pose. Users: `perse.synth.accessories` (glasses,
hats, earrings), `perse.synth.mouth` (teeth, gums, tongue, cavity), `perse.synth.hair_curtain` and
`perse.synth.seeding`.

All geometry is numpy float64 in metres (torch accepted by `apply_binding`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from perse.errors import PerseError
from perse.geometry.triangles import TriangleFrames, closest_point_on_triangles, from_frame, to_frame, triangle_frames


@dataclass
class Binding:
    """Points expressed in head-triangle coordinates.

    face: (N,) int64 triangle index; local: (N, 3) the point in that triangle's frame, in units of its
    scale (`perse.geometry.triangles.to_frame`).
    """

    face: np.ndarray
    local: np.ndarray

    def normal_offsets(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(N,) signed distance (metres) of the points from their triangles' planes, along the normals,
        on the mesh (V, 3), (F, 3): the frame's third axis is the normal."""
        frames = bound_frames(torch.from_numpy(np.asarray(vertices, np.float64)), faces, self.face)
        return self.local[:, 2] * frames.scales.numpy()

    def take(self, rows: np.ndarray, other: "Binding") -> None:
        """Overwrite `rows` with the points of `other` (same count as rows)."""
        self.face[rows], self.local[rows] = other.face, other.local


def bind_to_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                 face_mask: np.ndarray | None = None, candidates: int = 24) -> Binding:
    """Bind points to their nearest triangles.

    points: (N, 3); vertices: (V, 3); faces: (F, 3); face_mask: (F,) bool of the triangles allowed
    (None = all). Candidate triangles are the `candidates` nearest by centroid; the exact point-triangle
    distance picks among them. Returns a `Binding` reproducing the points exactly on `vertices`.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    allowed = np.arange(faces.shape[0]) if face_mask is None else np.nonzero(np.asarray(face_mask))[0]
    if allowed.size == 0:
        raise PerseError("cannot bind accessory: no head triangles allowed (check the head's regions)")
    a, b, c = (vertices[faces[allowed, i]] for i in range(3))
    keep = np.linalg.norm(np.cross(b - a, c - a), axis=1) > 1e-14
    allowed, a, b, c = allowed[keep], a[keep], b[keep], c[keep]
    if points.shape[0] == 0:
        return Binding(np.zeros(0, np.int64), np.zeros((0, 3)))
    k = int(min(candidates, allowed.size))
    _, cand = cKDTree((a + b + c) / 3).query(points, k=k)
    cand = cand.reshape(points.shape[0], k)
    q = closest_point_on_triangles(points[:, None], a[cand], b[cand], c[cand])
    dist = np.linalg.norm(q - points[:, None], axis=-1)
    face = allowed[cand[np.arange(points.shape[0]), dist.argmin(axis=1)]]
    frames = bound_frames(torch.from_numpy(vertices), faces, face)
    local = to_frame(torch.from_numpy(points), torch.arange(len(face)), frames)
    return Binding(face=face, local=local.numpy())


def apply_binding(binding: Binding, vertices, faces):
    """Evaluate bound points on a (deformed) mesh.

    vertices: (V, 3) or (B, V, 3), numpy or torch; faces: (F, 3). Returns (N, 3) or (B, N, 3) in the
    same array type.
    """
    is_torch = isinstance(vertices, torch.Tensor)
    v = vertices if is_torch else torch.from_numpy(np.asarray(vertices, dtype=np.float64))
    local = torch.as_tensor(binding.local, dtype=v.dtype, device=v.device)
    rows = torch.arange(len(binding.face), device=v.device)
    posed = [from_frame(local, rows, bound_frames(m, faces, binding.face)) for m in (v if v.dim() == 3 else v[None])]
    out = torch.stack(posed) if v.dim() == 3 else posed[0]
    return out if is_torch else out.numpy()


def bound_frames(vertices: torch.Tensor, faces, face: np.ndarray) -> TriangleFrames:
    """Frames (one row per bound point) of the triangles `face` (N,) of the mesh (V, 3) tensor with faces
    (F, 3): only the triangles the points use, not the whole mesh (a frame's hot path)."""
    f = np.asarray(faces.cpu() if hasattr(faces, "cpu") else faces, dtype=np.int64)[np.asarray(face)]
    return triangle_frames(vertices, torch.as_tensor(f, device=vertices.device))
