"""Joints (FLAME order: global, neck, jaw, left eye, right eye) and linear-blend skinning weights.

The skull is on the neck joint, the lower neck on the global joint (blended harmonically), the jaw
weight covers chin, lower lip, lower jaw and the lower mouth cavity, eyeballs are rigid on their eye
joints (see the overview in `perse.head.builtin`).
"""

from __future__ import annotations

import numpy as np

from perse import mesh_ops as mo
from perse.head.builtin.loops import _lip_loops
from perse.head.builtin.shell import NECK_BOTTOM


NECK_JOINT = np.array([0.0, -0.050, -0.018])  # top of the neck (atlas), below the ear canals
JAW_JOINT = np.array([0.0, -0.022, 0.008])  # on the line between the two jaw hinges (TMJ)
GLOBAL_JOINT = np.array([0.0, NECK_BOTTOM + 0.03, -0.033])  # neck base


def _paired_regressor(target: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) weights whose weighted vertex mean is ``target`` (a point on the symmetry plane).

    Casts rays from the target along +x and -x to the skin and averages the two hit points
    barycentrically, so the joint follows shape changes of the skin around it.
    """
    row = np.zeros(len(verts))
    origins = np.stack([target, target])
    f_hit, _, bary = mo.ray_mesh_intersect(origins, np.array([[1.0, 0, 0], [-1.0, 0, 0]]), verts, faces)
    if (f_hit < 0).any():
        raise RuntimeError(f"joint {target} is not inside the skin")
    for f, w in zip(f_hit, bary):
        np.add.at(row, faces[f], 0.5 * w)
    return row


def joint_regressor(geo: dict) -> np.ndarray:
    """(5, V) regressor: global, neck, jaw from paired skin points, eyes = eyeball vertex means."""
    P = geo["parts"]
    skin = P.faces[: geo["num_skin_faces"]]
    J = np.zeros((5, len(P.verts)))
    J[0] = _paired_regressor(GLOBAL_JOINT, P.verts, skin)
    J[1] = _paired_regressor(NECK_JOINT, P.verts, skin)
    J[2] = _paired_regressor(JAW_JOINT, P.verts, skin)
    for j, side in ((3, "L"), (4, "R")):
        ids = P.ranges["eyeball_" + side]
        J[j, ids] = 1.0 / len(ids)
    return J


def skinning_weights(geo: dict) -> tuple[np.ndarray, np.ndarray]:
    """(V, 5) LBS weights and (V,) jaw weight (the latter also masks the jaw expressions)."""
    P = geo["parts"]
    v, faces = P.verts, P.faces[: geo["num_skin_faces"]]
    V = len(v)
    skin = np.zeros(V, dtype=bool)
    skin[np.unique(faces)] = True
    ears = np.concatenate([P.ranges["ear_L"], P.ranges["ear_R"]])
    # Skull vs neck: harmonic blend between the upper head (neck joint) and the lower neck (global).
    y = v[:, 1]
    skull = np.zeros(V, dtype=bool)
    for name in ("face", "mouth_pocket", "socket_L", "socket_R"):
        skull[P.ranges[name]] = True
    # Chin and under-chin belong to the skull too (they nod with the head).
    fixed_hi = np.flatnonzero(skin & ((y > -0.075) | skull | ((v[:, 2] > 0.0) & (y > -0.125))))
    fixed_lo = np.flatnonzero(skin & (y < -0.165))
    w_head = mo.harmonic_interpolate(V, faces, np.concatenate([fixed_hi, fixed_lo]),
                                     np.concatenate([np.ones(len(fixed_hi)), np.zeros(len(fixed_lo))]))
    # Jaw: 1 on chin, lower lip and lower mouth cavity, 0 on the upper face, the back of the jaw
    # and the neck; harmonic in between gives the smooth fall-off toward the cheeks.
    loops = geo["loops"]
    upper, lower = _lip_loops(loops["mouth"], v)
    m = v[loops["mouth"]].mean(axis=0)
    face_ids = P.ranges["face"]
    fv = v[face_ids]
    one = [lower[1:-1], face_ids[(fv[:, 1] < m[1] - 0.012) & (np.abs(fv[:, 0]) < 0.03)]]
    zero = [upper[1:-1], face_ids[fv[:, 1] > m[1] + 0.012], face_ids[(fv[:, 1] > m[1]) & (np.abs(fv[:, 0]) < 0.025)]]
    pocket = P.ranges["mouth_pocket"]
    one.append(pocket[v[pocket, 1] < m[1]])
    zero.append(pocket[v[pocket, 1] >= m[1]])
    shell = P.ranges["shell"]
    zero.append(shell[(v[shell, 2] < JAW_JOINT[2] - 0.012) | (v[shell, 1] < -0.135) | (v[shell, 1] > JAW_JOINT[1])])
    sockets = np.concatenate([P.ranges["socket_L"], P.ranges["socket_R"]])
    zero.append(sockets)
    half = np.array([upper[0], upper[-1]])
    ones, zeros = np.unique(np.concatenate(one)), np.unique(np.concatenate(zero))
    zeros = np.setdiff1d(zeros, ones)
    fixed = np.concatenate([ones, zeros, half])
    vals = np.concatenate([np.ones(len(ones)), np.zeros(len(zeros)), np.full(2, 0.5)])
    w_jaw = mo.harmonic_interpolate(V, faces, fixed, vals)
    w_jaw = mo.smooth_field(w_jaw, faces, 3, fixed=np.isin(np.arange(V), np.concatenate([ones, zeros, half])))
    w_jaw = np.clip(w_jaw, 0, 1)
    w_jaw[~skin] = 0.0
    weights = np.zeros((V, 5))
    weights[:, 0] = 1.0 - w_head
    weights[:, 1] = w_head * (1.0 - w_jaw)
    weights[:, 2] = w_head * w_jaw
    weights[ears] = [0.0, 1.0, 0.0, 0.0, 0.0]
    weights[P.ranges["eyeball_L"]] = [0.0, 0.0, 0.0, 1.0, 0.0]
    weights[P.ranges["eyeball_R"]] = [0.0, 0.0, 0.0, 0.0, 1.0]
    weights = np.clip(weights, 0, None)
    return weights / weights.sum(axis=1, keepdims=True), w_jaw


def _skin(verts: np.ndarray, J: np.ndarray, weights: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Skin (V, 3) rest vertices with (5, 3) axis-angle joint rotations using the model's own LBS."""
    import torch

    from perse.head.lbs import lbs

    V = len(verts)
    out, _ = lbs(torch.zeros(1, 1, dtype=torch.float64), torch.as_tensor(pose, dtype=torch.float64)[None],
                 torch.as_tensor(verts), torch.zeros(V, 3, 1, dtype=torch.float64),
                 torch.zeros(36, V * 3, dtype=torch.float64), torch.as_tensor(J),
                 torch.tensor([-1, 0, 1, 1, 1]), torch.as_tensor(weights))
    return out[0].numpy()
