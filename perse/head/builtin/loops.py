"""The face mesh's boundary loops (face oval, mouth, eyes) and the lip contours around them.

Naming the loops, splitting a mouth or eye loop into its upper and lower chains, the outer-lip
landmarks, and an even-odd point-in-polygon test for a loop's projection.
"""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk


def _lip_loops(loop: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a closed mouth/eye boundary loop at its two x-extreme vertices.

    Returns (upper, lower) chains, each ordered from -x to +x and including both corners.
    """
    i0, i1 = int(np.argmin(pts[loop, 0])), int(np.argmax(pts[loop, 0]))
    n = len(loop)
    chain_a = [loop[(i0 + k) % n] for k in range((i1 - i0) % n + 1)]
    chain_b = [loop[(i1 + k) % n] for k in range((i0 - i1) % n + 1)][::-1]
    a, b = np.asarray(chain_a), np.asarray(chain_b)
    if pts[a[1:-1], 1].mean() < pts[b[1:-1], 1].mean():
        a, b = b, a
    return a, b


def _name_loops(loops: list[np.ndarray], pts: np.ndarray) -> dict[str, np.ndarray]:
    named = {}
    for loop in loops:
        s = set(loop.tolist())
        if lmk.INNER_UPPER_LIP in s:
            named["mouth"] = loop
        elif lmk.EYE_OUTER["L"] in s:
            named["eye_L"] = loop
        elif lmk.EYE_OUTER["R"] in s:
            named["eye_R"] = loop
        elif lmk.FOREHEAD_TOP in s:
            named["oval"] = loop
    if len(named) != 4:
        raise RuntimeError(f"unexpected face boundary loops: {[len(x) for x in loops]}")
    return named


def _outer_lips(v: np.ndarray, mouth_loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outer-lip landmark ids split into (upper, lower) by the line between the mouth corners."""
    import mediapipe as mp

    ids = np.unique(np.array(list(mp.solutions.face_mesh_connections.FACEMESH_LIPS)).ravel())
    ids = np.setdiff1d(ids, mouth_loop)
    ids = ids[~np.isin(ids, [lmk.MOUTH_CORNER["L"], lmk.MOUTH_CORNER["R"]])]
    corner_y = 0.5 * (v[lmk.MOUTH_CORNER["L"], 1] + v[lmk.MOUTH_CORNER["R"], 1])
    return ids[v[ids, 1] > corner_y], ids[v[ids, 1] <= corner_y]


def _inside_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, pts (N, 2), poly (K, 2)."""
    x, y = pts[:, :1], pts[:, 1:]
    x0, y0 = poly[:, 0][None], poly[:, 1][None]
    x1, y1 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = ((y0 > y) != (y1 > y)) & (x < x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-30, y1 - y0))
    return crosses.sum(axis=1) % 2 == 1
