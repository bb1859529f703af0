"""Smooth local displacement fields on a mesh, carried by anchor vertices.

Shared by the face's neutralisation (`face`) and the expression basis (`expressions`): a field moves
a few anchor vertices by given amounts and fades to zero along the surface.
"""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo


def anchored_field(dist: np.ndarray, anchor_disp: np.ndarray, radius: float, sigma: float = 0.006) -> np.ndarray:
    """A smooth, local displacement field that carries given displacements at anchor vertices.

    dist: (A, V) graph distances from the A anchors to every vertex (inf = unreachable).
    anchor_disp: (A, 3) displacement of each anchor.
    The direction blends the anchors' displacements with Gaussian (Shepard) weights of width
    ``sigma``; an envelope (1 - t^2)^3, t = distance to the nearest anchor / ``radius``, fades the
    field to zero with zero slope. Using distances along the surface keeps the upper lip out of a
    lower-lip field (and eyelids apart). Returns (V, 3).
    """
    dmin = dist.min(axis=0)  # (V,)
    reach = np.isfinite(dmin) & (dmin < radius)
    out = np.zeros((dist.shape[1], 3))
    if not reach.any():
        return out
    d = dist[:, reach]
    w = np.exp(-(d ** 2 - dmin[reach] ** 2) / sigma ** 2)  # (A, R), largest weight exactly 1
    w = np.where(np.isfinite(d), w, 0.0)
    blend = (w.T @ anchor_disp) / w.sum(axis=0)[:, None]
    t = dmin[reach] / radius
    out[reach] = blend * ((1.0 - t ** 2) ** 3)[:, None]
    return out


class FieldBuilder:
    """Builds anchored displacement fields on one mesh, caching graph distances per anchor."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, smooth_iterations: int = 4):
        self.verts, self.faces = verts, faces
        self.smooth_iterations = smooth_iterations
        self._adj = mo.adjacency(len(verts), faces, verts)
        self._cache: dict[int, np.ndarray] = {}

    def distances(self, ids) -> np.ndarray:
        """(len(ids), V) graph distances (cached per source vertex)."""
        from scipy.sparse.csgraph import dijkstra

        ids = [int(i) for i in np.atleast_1d(ids)]
        missing = [i for i in ids if i not in self._cache]
        if missing:
            for i, row in zip(missing, dijkstra(self._adj, directed=False, indices=missing, limit=0.08)):
                self._cache[i] = row
        return np.stack([self._cache[i] for i in ids])

    def field(self, ids, disp, radius: float, sigma: float = 0.006) -> np.ndarray:
        """(V, 3) field with displacement ``disp`` ((3,) or (A, 3)) at vertices ``ids``."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        disp = np.broadcast_to(np.asarray(disp, dtype=np.float64), (len(ids), 3))
        out = anchored_field(self.distances(ids), disp, radius, sigma)
        fixed = np.zeros(len(self.verts), dtype=bool)
        fixed[ids] = True
        # A few smoothing passes remove the facets of the edge-path metric; anchors keep their values.
        return mo.smooth_field(out, self.faces, self.smooth_iterations, fixed=fixed)
