"""Skull, back of head and neck: a star-shaped implicit surface sampled on an icosphere (step 2).

A smooth union of ellipsoids and a neck cylinder, sampled along the vertices of an icosphere around
the head centre with a radial correction so that it passes through the face oval; the part behind the
face is cut away, the shell is zipped to the face oval and relaxed tangentially.
"""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo
from perse.head.builtin.loops import _inside_polygon


HEAD_CENTRE = np.array([0.0, -0.01, -0.005])
NECK_BOTTOM = -0.21


def _ellipsoid(p: np.ndarray, centre, axes) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (negative inside)."""
    axes = np.asarray(axes)
    q = (p - np.asarray(centre)) / axes
    return (np.linalg.norm(q, axis=-1) - 1.0) * axes.min()


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union of two implicit solids)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def head_implicit(p: np.ndarray) -> np.ndarray:
    """Implicit base head (negative inside): cranium, jaw mass and a neck with a rounded base."""
    cranium = _ellipsoid(p, (0.0, 0.030, -0.008), (0.074, 0.092, 0.102))
    occiput = _ellipsoid(p, (0.0, 0.000, -0.045), (0.066, 0.070, 0.070))
    jaw = _ellipsoid(p, (0.0, -0.058, 0.022), (0.056, 0.058, 0.066))
    # Neck: elliptic cylinder leaning slightly forward, with a rounded bottom edge.
    y = p[..., 1]
    zc = -0.022 + 0.10 * (y + 0.10)
    q = np.stack([p[..., 0] / 0.054, (p[..., 2] - zc) / 0.058], -1)
    side = (np.linalg.norm(q, axis=-1) - 1.0) * 0.054
    bottom = NECK_BOTTOM - y
    neck = np.maximum(side, bottom)
    corner = np.linalg.norm(np.stack([np.maximum(side + 0.025, 0), np.maximum(bottom + 0.025, 0)], -1), axis=-1) - 0.025
    neck = np.where((side > -0.025) & (bottom > -0.025), corner, neck)
    neck = np.maximum(neck, y + 0.02)  # the top of the neck ends inside the skull
    head = _smin(cranium, occiput, 0.02)
    head = _smin(head, jaw, 0.025)
    return _smin(head, neck, 0.03)


def radial_distance(dirs: np.ndarray, centre: np.ndarray = HEAD_CENTRE, t_max: float = 0.32) -> np.ndarray:
    """(N,) distance from ``centre`` along each unit direction to the outermost surface crossing."""
    ts = np.linspace(t_max, 0.0, 129)
    vals = head_implicit(centre + ts[:, None, None] * dirs[None])  # (T, N)
    first_inside = np.argmax(vals < 0, axis=0)
    hi, lo = ts[np.maximum(first_inside - 1, 0)], ts[first_inside]  # outside, inside
    for _ in range(40):
        mid = 0.5 * (hi + lo)
        inside = head_implicit(centre + mid[:, None] * dirs) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return 0.5 * (hi + lo)


class ShellSurface:
    """The radial shell r(d) = base(d) + correction(d), passing through the face oval."""

    def __init__(self, oval_pts: np.ndarray, centre: np.ndarray = HEAD_CENTRE, reach: float = 0.55):
        self.centre = centre
        d = oval_pts - centre
        self.oval_r = np.linalg.norm(d, axis=1)
        self.oval_dirs = d / self.oval_r[:, None]
        self.mismatch = self.oval_r - radial_distance(self.oval_dirs, centre)
        self.reach = reach

    def correction(self, dirs: np.ndarray) -> np.ndarray:
        ang = np.arccos(np.clip(dirs @ self.oval_dirs.T, -1, 1))  # (N, K)
        amin = ang.min(axis=1)
        w = np.exp(-(ang ** 2 - amin[:, None] ** 2) / 0.08 ** 2)
        blend = (w @ self.mismatch) / w.sum(axis=1)
        t = np.clip(amin / self.reach, 0, 1)
        return blend * (1 - t ** 2) ** 3

    def project(self, points: np.ndarray) -> np.ndarray:
        """Move points radially (from the centre) onto the shell."""
        d = points - self.centre
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return self.centre + (radial_distance(d, self.centre) + self.correction(d))[:, None] * d


def _azimuthal(dirs: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection of unit directions around ``axis`` -> (N, 2)."""
    e1 = np.cross([0.0, 1.0, 0.0], axis)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    ang = np.arccos(np.clip(dirs @ axis, -1, 1))
    phi = np.arctan2(dirs @ e2, dirs @ e1)
    return np.stack([ang * np.cos(phi), ang * np.sin(phi)], 1)


def build_shell(oval: np.ndarray, verts: np.ndarray, level: int = 4,
                relax_iterations: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skull + back of head + neck, open where the face goes, zipped to the face oval.

    oval: (K,) face-oval vertex ids (in ``verts``), ordered along the face's boundary orientation.
    Returns (new verts (N, 3), faces (F, 3) indexing [verts; new], boundary-ring ids of the shell).
    """
    V = len(verts)
    shell = ShellSurface(verts[oval])
    dirs, faces = mo.icosphere(level)
    axis = shell.oval_dirs.mean(axis=0)
    axis /= np.linalg.norm(axis)
    inside = _inside_polygon(_azimuthal(dirs, axis), _azimuthal(shell.oval_dirs, axis))
    # Keep a margin of ~0.4 edge from the oval so the zipper strip has room.
    edge_angle = np.arccos(np.clip((dirs[faces[:, 0]] * dirs[faces[:, 1]]).sum(1), -1, 1)).mean()
    seg_a, seg_b = shell.oval_dirs, np.roll(shell.oval_dirs, -1, axis=0)
    near = np.arccos(np.clip(dirs @ seg_a.T, -1, 1)).min(axis=1) < 0.45 * edge_angle
    near |= np.arccos(np.clip(dirs @ ((seg_a + seg_b) / np.linalg.norm(seg_a + seg_b, axis=1, keepdims=True)).T,
                              -1, 1)).min(axis=1) < 0.45 * edge_angle
    keep = ~(inside | near)
    faces = faces[keep[faces].all(axis=1)]
    # Drop faces that would leave a pinched (non-manifold) hole boundary.
    while True:
        try:
            loops = mo.boundary_loops(faces)
            if len(loops) == 1:
                break
            # Tiny extra holes/islands: keep only the largest boundary as the hole.
            raise ValueError
        except ValueError:
            b = mo.boundary_edges(faces)
            deg = np.bincount(b.ravel(), minlength=len(dirs))
            bad = np.flatnonzero(deg > 2)
            if len(bad) == 0:
                lab = mo.components(len(dirs), faces)
                used = np.unique(faces)
                main = np.bincount(lab[used]).argmax()
                faces = faces[lab[faces[:, 0]] == main]
                loops = mo.boundary_loops(faces)
                if len(loops) == 1:
                    break
                raise RuntimeError("shell cut left several holes")
            faces = faces[~np.isin(faces, bad).any(axis=1)]
    used = np.unique(faces)
    remap = -np.ones(len(dirs), dtype=np.int64)
    remap[used] = V + np.arange(len(used))
    pts = shell.project(HEAD_CENTRE + dirs[used] * 0.1)
    faces = remap[faces]
    hole = remap[loops[0]]
    # The shell hole runs opposite to the oval (they bound adjacent regions): reverse to zip.
    all_verts = np.concatenate([verts, pts])
    strip = mo.bridge_loops(oval, hole[::-1], all_verts)
    strip = strip[:, ::-1]  # oval edges must be used reversed relative to the face
    faces = np.concatenate([faces, strip])
    # Tangential relaxation of the shell (the face stays put), re-projected onto the shell surface.
    movable = np.zeros(len(all_verts), dtype=bool)
    movable[V:] = True
    adj = mo.adjacency(len(all_verts), faces)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    for _ in range(relax_iterations):
        avg = (adj @ all_verts) / np.maximum(deg, 1)[:, None]
        target = all_verts + 0.6 * (avg - all_verts)
        all_verts[movable] = shell.project(target[movable])
    return all_verts[V:], faces, hole
