"""Points bound to a triangle mesh: the coordinates that carry accessory and mouth geometry with the head.

Each point is *bound* to the nearest allowed triangle: the triangle index, the barycentric coordinates
of the point's projection onto the triangle's plane and the signed offset along the triangle's unit
normal (`bind_to_mesh`). Evaluating those coordinates on a deformed mesh (`apply_binding`) moves the
points with any expression, jaw, neck or head pose. Users: `perse.synth.accessories` (glasses, hats,
earrings), `perse.synth.mouth` (teeth, gums, tongue, cavity) and `perse.synth.seeding`.

All geometry is numpy float64 in metres (torch accepted by `apply_binding`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError
from perse.geometry.triangles import barycentric, closest_point_on_triangles, corners, interpolate, unit_normals


@dataclass
class Binding:
    """Points expressed in head-triangle coordinates.

    face: (N,) int64 triangle index; bary: (N, 3) barycentric coordinates of the point's projection onto
    the triangle's plane (may lie outside [0, 1] when the point is off the triangle's edge);
    offset: (N,) signed distance along the triangle's unit normal (metres).
    """

    face: np.ndarray
    bary: np.ndarray
    offset: np.ndarray


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
    normal = np.cross(b - a, c - a)
    area2 = np.linalg.norm(normal, axis=1)
    keep = area2 > 1e-14
    allowed, a, b, c, normal = allowed[keep], a[keep], b[keep], c[keep], normal[keep] / area2[keep, None]
    if points.shape[0] == 0:
        return Binding(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))
    k = int(min(candidates, allowed.size))
    _, cand = cKDTree((a + b + c) / 3).query(points, k=k)
    cand = cand.reshape(points.shape[0], k)
    q = closest_point_on_triangles(points[:, None], a[cand], b[cand], c[cand])
    dist = np.linalg.norm(q - points[:, None], axis=-1)
    best = cand[np.arange(points.shape[0]), dist.argmin(axis=1)]
    A, B, C, n = a[best], b[best], c[best], normal[best]
    offset = ((points - A) * n).sum(-1)
    proj = points - offset[:, None] * n
    bary = barycentric(proj, A, B, C)
    return Binding(face=allowed[best], bary=bary, offset=offset)


def apply_binding(binding: Binding, vertices, faces):
    """Evaluate bound points on a (deformed) mesh.

    vertices: (V, 3) or (B, V, 3), numpy or torch; faces: (F, 3). Returns (N, 3) or (B, N, 3) in the
    same array type: sum_i bary_i * corner_i + offset * unit_normal.
    """
    f = faces[binding.face] if not hasattr(faces, "cpu") else faces.cpu().numpy()[binding.face]
    bary, offset = binding.bary, binding.offset
    if hasattr(vertices, "cpu"):  # torch tensor
        import torch

        f = torch.as_tensor(f, device=vertices.device)
        bary = torch.as_tensor(bary, dtype=vertices.dtype, device=vertices.device)
        offset = torch.as_tensor(offset, dtype=vertices.dtype, device=vertices.device)
    else:
        vertices = np.asarray(vertices, dtype=np.float64)
    a, b, c = corners(vertices, f)
    return interpolate(a, b, c, bary) + unit_normals(a, b, c) * offset[:, None]
