"""Eyeballs and the sockets behind the eye openings.

The eyeball sits behind the iris as far forward as the lids allow; a socket is a closed cup that
closes the eye opening of the skin and wraps the eyeball; the eyeball itself is a separate closed mesh.
"""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo


EYEBALL_RADIUS = 0.0120


def eyeball_centre(loop_pts: np.ndarray, iris: np.ndarray, radius: float, gap: float = 0.0009) -> np.ndarray:
    """Eyeball centre behind the iris, as far forward as the eyelid contour allows.

    The eyelid contour points must stay ``gap`` outside the eyeball, so the eyeball never pokes
    through the lids. loop_pts: (K, 3) contour; iris: (3,) iris centre landmark.
    """
    rho2 = ((loop_pts[:, :2] - iris[:2]) ** 2).sum(1)
    r2 = (radius + gap) ** 2
    inside = rho2 < r2
    limits = loop_pts[inside, 2] - np.sqrt(r2 - rho2[inside])
    z = min(iris[2] - radius, limits.min() if inside.any() else np.inf)
    return np.array([iris[0], iris[1], z])


def socket_pocket(loop: np.ndarray, verts: np.ndarray, centre: np.ndarray, radius: float,
                  rings: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A closed cup behind an eye opening that wraps the eyeball at ``radius`` from its centre.

    Returns new vertices (rings * K + 1, 3) and faces (indices: loop ids, then V + new ids).
    """
    V = len(verts)
    u = verts[loop] - centre
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    theta0 = np.arccos(np.clip(u[:, 2], -1, 1))
    phi = np.arctan2(u[:, 1], u[:, 0])
    new, prev = [], loop
    faces = []
    for j in range(1, rings + 1):
        th = theta0 + (np.pi - theta0) * j / (rings + 1)
        p = centre + radius * np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)], 1)
        ids = V + sum(len(x) for x in new) + np.arange(len(loop))
        new.append(p)
        faces.append(mo.bridge_equal_loops(prev, ids))
        prev = ids
    cap = V + sum(len(x) for x in new)
    new.append(centre[None] + np.array([[0.0, 0.0, -radius]]))
    faces.append(mo.fan(prev[::-1], cap))
    return np.concatenate(new), np.concatenate(faces)


def eyeball_mesh(centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eyeball: a UV sphere with its pole (the cornea apex) on +z; returns (verts, faces, unit dirs)."""
    dirs, faces = mo.uv_sphere(11, 20)
    return centre + radius * dirs, faces, dirs
