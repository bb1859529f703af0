"""The mouth cavity: a closed pocket behind the inner-lip loop that closes the skin's mouth opening.

`perse.synth.mouth` fills it with teeth, gums and tongue; its upper half is skinned to the skull, its
lower half to the jaw (`skinning`).
"""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo


def mouth_pocket(loop: np.ndarray, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A closed mouth cavity behind the inner-lip loop (upper half on the skull, lower on the jaw)."""
    V = len(verts)
    p = verts[loop]
    m = p.mean(axis=0)
    half = np.abs(p[:, 0] - m[0]).max()
    xr = np.clip((p[:, 0] - m[0]) / half, -1, 1)
    side = np.sign(p[:, 1] - m[1] + 1e-9)
    depth = (0.006, 0.014, 0.022, 0.030)
    shrink = (0.95, 0.85, 0.70, 0.45)
    height = (0.003, 0.008, 0.011, 0.009)
    new, faces, prev = [], [], loop
    for d, s, h in zip(depth, shrink, height):
        q = np.stack([m[0] + s * (p[:, 0] - m[0]),
                      m[1] + s * (p[:, 1] - m[1]) + side * h * np.sqrt(1 - xr ** 2),
                      p[:, 2] - d - 0.004 * (1 - xr ** 2)], 1)
        ids = V + sum(len(x) for x in new) + np.arange(len(loop))
        new.append(q)
        faces.append(mo.bridge_equal_loops(prev, ids))
        prev = ids
    cap = V + sum(len(x) for x in new)
    new.append(np.array([[m[0], m[1], m[2] - 0.036]]))
    faces.append(mo.fan(prev[::-1], cap))
    return np.concatenate(new), np.concatenate(faces)
