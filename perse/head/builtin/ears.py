"""The ears: rough closed pinna meshes whose front edges sink into the head."""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo


def ear_mesh(attach: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rough pinna: a flattened, cupped and flared closed shell whose front edge sinks into the head.

    attach: (3,) skin point just behind the jaw hinge where the ear's front edge joins the head.
    side: +1 for the left ear (+x), -1 for the right. Returns (verts, faces, sphere_dirs) where
    sphere_dirs are the unit-sphere parameters (pole = lateral side) used for its UV island.
    """
    dirs, faces = mo.uv_sphere(8, 18)
    sx, sy, sz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    rho = np.sqrt(sx ** 2 + sy ** 2)
    half_h, half_w = 0.031, 0.0175 * (1.0 + 0.15 * sy)  # egg outline, wider at the top
    up, back = half_h * sy, half_w * sx
    # Lateral side is cupped (concha), the rim (helix) stays thick.
    lateral = np.where(sz > 0, 0.0032 * sz - 0.0042 * (1 - rho ** 2) ** 1.5, 0.0030 * sz)
    # Local frame: out = lateral, flared 25 degrees (back edge away from the head), tilted back 12 deg.
    flare, tilt = np.radians(25.0), np.radians(12.0)
    out_dir = np.array([side * np.cos(flare), 0.0, np.sin(flare)])
    back_dir = np.array([side * np.sin(flare), 0.0, -np.cos(flare)])
    up_dir = np.array([0.0, np.cos(tilt), 0.0]) + np.sin(tilt) * back_dir
    up_dir /= np.linalg.norm(up_dir)
    centre = attach + (half_w.max() - 0.005) * back_dir - 0.002 * out_dir
    verts = centre + up[:, None] * up_dir + back[:, None] * back_dir + lateral[:, None] * out_dir
    if side < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces, dirs
