"""The texture layout: one head chart (seam at the back) and disc islands for the separate parts."""

from __future__ import annotations

import numpy as np

from perse.head.builtin.shell import NECK_BOTTOM


UV_HEAD_SCALE = 0.96 / (2 * np.pi * 0.085)  # texture units per metre of the head chart
UV_AXIS_Z = -0.01  # vertical axis of the cylindrical/spherical head chart: x = 0, z = UV_AXIS_Z


def _head_chart(p: np.ndarray) -> np.ndarray:
    """(N, 2) head-chart uv: azimuth around a vertical axis (seam at the back), height below the
    eye line, spherical latitude above it (so the crown is a pole, not a collapsed cylinder cap).
    v grows upward (OpenGL convention)."""
    x, y, zr = p[:, 0], p[:, 1], p[:, 2] - UV_AXIS_Z
    rho = np.hypot(x, zr)
    u = 0.5 + np.arctan2(x, zr) / (2 * np.pi)
    h = np.where(y <= 0, y, 0.085 * np.arctan2(y, rho))
    return np.stack([u, 0.3 + (h - NECK_BOTTOM) * UV_HEAD_SCALE], 1)


def _disc_chart(dirs: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    """Azimuthal-equidistant disc island of unit directions around +z (pole at the disc centre)."""
    theta = np.arccos(np.clip(dirs[:, 2], -1, 1))
    phi = np.arctan2(dirs[:, 1], dirs[:, 0])
    r = radius * theta / np.pi
    return np.stack([centre[0] + r * np.cos(phi), centre[1] + r * np.sin(phi)], 1)


def texture_layout(geo: dict) -> tuple[np.ndarray, np.ndarray]:
    """(uvs (T, 2), uv_faces (F, 3)): one head chart (seam at the back), disc islands for eyeballs,
    ears, sockets and the mouth cavity along the bottom strip."""
    P = geo["parts"]
    v, faces = P.verts, P.faces
    corner_uv = np.zeros((len(faces), 3, 2))
    owner = np.full(len(v), "skin", dtype=object)
    for name in ("eyeball_L", "eyeball_R", "ear_L", "ear_R", "socket_L", "socket_R", "mouth_pocket"):
        owner[P.ranges[name]] = name
    islands = {"eyeball_L": (0.07, 0.14), "eyeball_R": (0.21, 0.14), "ear_L": (0.35, 0.14),
               "ear_R": (0.49, 0.14), "socket_L": (0.63, 0.14), "socket_R": (0.77, 0.14),
               "mouth_pocket": (0.91, 0.14)}
    vert_uv = _head_chart(v)
    for side in ("L", "R"):
        vert_uv[P.ranges["eyeball_" + side]] = _disc_chart(geo["eye_dirs"][side], islands["eyeball_" + side], 0.06)
        vert_uv[P.ranges["ear_" + side]] = _disc_chart(geo["ear_dirs"][side], islands["ear_" + side], 0.06)
    # Pockets: the direction from a point behind the opening, so the rim maps to the disc's edge.
    pocket_faces_of = {}
    for name, loop_name in (("socket_L", "eye_L"), ("socket_R", "eye_R"), ("mouth_pocket", "mouth")):
        ids = np.concatenate([geo["loops"][loop_name], P.ranges[name]])
        centre = v[geo["loops"][loop_name]].mean(axis=0)
        d = v[ids] - centre
        d[:, 2] = -d[:, 2]  # look into the pocket: its bottom becomes the disc centre
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        pocket_faces_of[name] = dict(zip(ids.tolist(), _disc_chart(d, islands[name], 0.06)))
    for fi, tri in enumerate(faces):
        names = {owner[i] for i in tri}
        pocket = next((n for n in names if n in pocket_faces_of), None)
        if pocket is not None:
            corner_uv[fi] = [pocket_faces_of[pocket][int(i)] for i in tri]
            continue
        uv = vert_uv[tri].copy()
        if names == {"skin"}:
            rho = np.hypot(v[tri, 0], v[tri, 2] - UV_AXIS_Z)
            if (rho < 1e-4).any():  # a vertex on the chart's pole axis: borrow u from the others
                uv[rho < 1e-4, 0] = uv[rho >= 1e-4, 0].mean()
            if np.ptp(uv[:, 0]) > 0.5:  # crosses the seam at the back: keep it on one side
                hi = (uv[:, 0] > 0.5).sum() >= 2
                uv[:, 0] = np.where(hi, np.where(uv[:, 0] < 0.5, 1.0, uv[:, 0]),
                                    np.where(uv[:, 0] > 0.5, 0.0, uv[:, 0]))
            uv[:, 0] = 0.02 + 0.96 * uv[:, 0]
        corner_uv[fi] = uv
    flat = corner_uv.reshape(-1, 2)
    uvs, inverse = np.unique(np.round(flat, 7), axis=0, return_inverse=True)
    return np.clip(uvs, 0.0, 1.0), inverse.reshape(-1, 3)
