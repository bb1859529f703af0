"""The 478-point MediaPipe landmark embedding: face vertices, and iris points on the eyeballs."""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse import mesh_ops as mo


def landmark_embedding(geo: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lmk_face_idx (478,), lmk_bary (478, 3), positions (478, 3)) of the MediaPipe landmarks.

    Landmarks 0..467 are face vertices (one-hot barycentrics); the iris points 468..477 are where
    the ray from the eyeball centre through the MediaPipe iris point meets the eyeball surface.
    """
    P = geo["parts"]
    v, faces = P.verts, P.faces
    lm = geo["landmarks"]
    idx = np.zeros(478, dtype=np.int64)
    bary = np.zeros((478, 3))
    first_face = np.full(len(v), -1, dtype=np.int64)
    for k in (2, 1, 0):
        first_face[faces[:, k]] = np.arange(len(faces))
    for i in range(468):
        f = first_face[i]
        idx[i] = f
        bary[i, int(np.flatnonzero(faces[f] == i)[0])] = 1.0
    for side in ("R", "L"):
        ids = np.array(lmk.IRIS[side])
        eye_faces = np.flatnonzero(np.isin(faces[:, 0], P.ranges["eyeball_" + side]))
        c = geo["eye_centres"][side]
        d = lm[ids] - c
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        f_hit, _, b = mo.ray_mesh_intersect(np.repeat(c[None], 5, 0), d, v, faces[eye_faces])
        if (f_hit < 0).any():
            raise RuntimeError("iris landmark ray missed the eyeball")
        idx[ids], bary[ids] = eye_faces[f_hit], b
    pos = (v[faces[idx]] * bary[:, :, None]).sum(axis=1)
    return idx, bary, pos
