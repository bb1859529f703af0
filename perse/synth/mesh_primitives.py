"""Primitive meshes of the synthetic head's extra geometry: pure functions returning vertices (N, 3), faces (M, 3).

Grids, tubes along polylines, UV spheres, tori, thin plates, merging, and turning every face away from
a reference point (`orient_faces`). Used by the accessories (`perse.synth.accessories`) and the mouth
interior (`perse.synth.mouth`, `perse.synth.teeth`).

All geometry is numpy float64 in metres; faces are wound counter-clockwise seen from outside.
"""

from __future__ import annotations

import numpy as np


def grid_faces(rows: int, cols: int, wrap_cols: bool) -> np.ndarray:
    """Two triangles per cell of a (rows, cols) vertex grid (row-major indices)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols if wrap_cols else cols - 1), indexing="ij")
    r, c = r.ravel(), c.ravel()
    c1 = (c + 1) % cols
    i00, i01, i10, i11 = r * cols + c, r * cols + c1, (r + 1) * cols + c, (r + 1) * cols + c1
    return np.concatenate([np.stack([i00, i10, i11], 1), np.stack([i00, i11, i01], 1)])


def orient_faces(vertices: np.ndarray, faces: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Flip triangles whose normal points toward `inside` ((M, 3) one reference point per face)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    n = np.cross(b - a, c - a)
    flip = ((a + b + c) / 3 - inside).__mul__(n).sum(-1) < 0
    out = faces.copy()
    out[flip] = out[flip][:, [0, 2, 1]]
    return out


def tube(path: np.ndarray, radius: float | np.ndarray, sides: int = 8, closed: bool = False
         ) -> tuple[np.ndarray, np.ndarray]:
    """A tube of circular section along a polyline (parallel-transport frames, capped if open).

    path: (K, 3); radius: scalar or (K,). Returns vertices (K*sides [+2], 3), faces.
    """
    path = np.asarray(path, dtype=np.float64)
    K = path.shape[0]
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (K,))
    if closed:
        tang = np.roll(path, -1, 0) - np.roll(path, 1, 0)
    else:
        tang = np.gradient(path, axis=0)
    tang /= np.maximum(np.linalg.norm(tang, axis=1, keepdims=True), 1e-12)
    ref = np.array([0.0, 1.0, 0.0]) if abs(tang[0, 1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    n = np.cross(tang[0], ref)
    n /= np.linalg.norm(n)
    normals = [n]
    for i in range(1, K):
        n = normals[-1] - (normals[-1] @ tang[i]) * tang[i]
        n /= max(np.linalg.norm(n), 1e-12)
        normals.append(n)
    normals = np.stack(normals)
    binormals = np.cross(tang, normals)
    ang = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = (np.cos(ang)[None, :, None] * normals[:, None] + np.sin(ang)[None, :, None] * binormals[:, None])
    verts = (path[:, None] + radius[:, None, None] * ring).reshape(-1, 3)
    if closed:
        faces = grid_faces(K + 1, sides, wrap_cols=True) % (K * sides)
    else:
        faces = grid_faces(K, sides, wrap_cols=True)
    row = faces[:, 0] // sides  # every triangle spans rings row and row + 1
    inside = 0.5 * (path[row % K] + path[(row + 1) % K])
    centre_pts = [verts]
    extra = []
    if not closed:
        base = verts.shape[0]
        centre_pts.append(path[[0, -1]])
        cap0 = np.stack([np.full(sides, base), (np.arange(sides) + 1) % sides, np.arange(sides)], 1)
        cap1 = np.stack([np.full(sides, base + 1), (K - 1) * sides + np.arange(sides),
                         (K - 1) * sides + (np.arange(sides) + 1) % sides], 1)
        extra = [cap0, cap1]
    verts = np.concatenate(centre_pts)
    faces = orient_faces(verts, faces, inside)
    if extra:
        caps = np.concatenate(extra)
        # Cap normals point away from the tube: reference points one step inside the tube.
        cap_inside = np.concatenate([np.repeat(path[1:2] if K > 1 else path[:1], sides, 0),
                                     np.repeat(path[-2:-1] if K > 1 else path[-1:], sides, 0)])
        faces = np.concatenate([faces, orient_faces(verts, caps, cap_inside)])
    return verts, faces


def uv_sphere(center: np.ndarray, radius: float, rings: int = 8, segments: int = 12
              ) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV sphere."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    verts = np.concatenate([body, [[0, 1, 0], [0, -1, 0]]]) * radius + center
    faces = grid_faces(rings - 1, segments, wrap_cols=True)
    top, bottom = verts.shape[0] - 2, verts.shape[0] - 1
    s = np.arange(segments)
    last = (rings - 2) * segments
    caps = np.concatenate([np.stack([np.full(segments, top), s, (s + 1) % segments], 1),
                           np.stack([np.full(segments, bottom), last + (s + 1) % segments, last + s], 1)])
    faces = np.concatenate([faces, caps])
    return verts, orient_faces(verts, faces, np.broadcast_to(center, (faces.shape[0], 3)))


def torus(center: np.ndarray, axis: np.ndarray, major: float, minor: float, segments: int = 24,
          sides: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A torus around `axis` through `center`."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    e1 = np.cross(axis, [0.0, 1.0, 0.0] if abs(axis[1]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    core = center + major * (np.cos(a)[:, None] * e1 + np.sin(a)[:, None] * e2)
    return tube(core, minor, sides=sides, closed=True)


def plate(outline: np.ndarray, normal: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """A thin closed plate (lens) from a planar outline (K, 3): two fans `thickness` apart plus the edge."""
    normal = normal / np.linalg.norm(normal)
    centre = outline.mean(axis=0)
    K = outline.shape[0]
    front = np.concatenate([outline, centre[None]]) + 0.5 * thickness * normal
    back = np.concatenate([outline, centre[None]]) - 0.5 * thickness * normal
    verts = np.concatenate([front, back])
    s = np.arange(K)
    fan_f = np.stack([np.full(K, K), s, (s + 1) % K], 1)
    fan_b = fan_f + K + 1
    side = np.concatenate([np.stack([s, s + K + 1, (s + 1) % K + K + 1], 1),
                           np.stack([s, (s + 1) % K + K + 1, (s + 1) % K], 1)])
    faces = np.concatenate([fan_f, fan_b, side])
    inside = np.broadcast_to(centre, (faces.shape[0], 3))
    return verts, orient_faces(verts, faces, inside)


def merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate meshes."""
    verts, faces, base = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + base)
        base += v.shape[0]
    return np.concatenate(verts), np.concatenate(faces)
