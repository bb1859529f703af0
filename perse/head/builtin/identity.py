"""Identity (shape) directions: named anthropometric modes, then smooth random modes.

Each random mode is orthogonalised against the earlier ones; a coefficient of +-2 is a plausible face.
"""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse.geometry.easing import smoothstep


NUM_SHAPE = 60


def _gauss(p: np.ndarray, c, sigma: float) -> np.ndarray:
    return np.exp(-((p - np.asarray(c)) ** 2).sum(-1) / (2 * sigma ** 2))


def shape_fields(geo: dict, rng: np.random.Generator, num: int = NUM_SHAPE) -> np.ndarray:
    """(V, 3, num) smooth identity modes: named anthropometric modes, then random smooth modes.

    All modes are smooth functions of the rest position (Euclidean, so both lips or both lids move
    together); eyeballs translate rigidly with the field at their centre so they stay in their
    sockets. A coefficient of +-2 gives a plausible face.
    """
    P = geo["parts"]
    v = P.verts
    lm = geo["landmarks"]
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    sx = np.sign(x)
    front = smoothstep(-0.01, 0.04, z)
    eyes = [geo["eye_centres"]["L"], geo["eye_centres"]["R"]]
    eye_g = _gauss(v, eyes[0], 0.018) + _gauss(v, eyes[1], 0.018)
    corner = lm[lmk.MOUTH_CORNER["L"]]
    chin = lm[lmk.CHIN_FRONT]
    tip = lm[lmk.NOSE_TIP]
    ala = lm[lmk.NOSE_ALA["L"]]
    cheek = lm[lmk.CHEEK["L"]]
    brow = lm[lmk.BROW["L"][7]]
    jaw_angle = lm[lmk.JAW_ANGLE["L"]]
    mirror = np.array([-1.0, 1.0, 1.0])
    both = lambda c, s: _gauss(v, c, s) + _gauss(v, c * mirror, s)  # noqa: E731
    skin_faces = P.faces[: geo["num_skin_faces"]]
    named = [
        np.stack([0.035 * x, 0 * y, 0 * z], 1),  # head width
        np.stack([0 * x, 0.03 * y, 0 * z], 1),  # head height
        np.stack([0 * x, 0 * y, 0.03 * z], 1),  # head depth
        np.stack([0.05 * x * front, 0 * y, 0 * z], 1),  # face width
        np.stack([0 * x, 0.06 * np.minimum(y, 0) * front, 0 * z], 1),  # lower face length
        np.stack([0.07 * x * _gauss(v[:, 1:2], [-0.07], 0.025), 0 * y, 0 * z], 1),  # jaw width
        np.stack([0 * x, 0 * y, 0.004 * _gauss(v, chin, 0.022)], 1),  # chin projection
        np.stack([0 * x, -0.004 * _gauss(v, chin, 0.022), 0 * z], 1),  # chin height
        np.stack([0 * x, -0.003 * _gauss(v, tip, 0.014), 0 * z], 1),  # nose length
        np.stack([0.1 * x * _gauss(v, [0, ala[1], ala[2]], 0.014), 0 * y, 0 * z], 1),  # nose width
        np.stack([0 * x, 0 * y, 0.004 * _gauss(v, tip, 0.016)], 1),  # nose projection
        np.stack([0 * x, 0 * y, 0.003 * _gauss(v, lm[lmk.NOSE_BRIDGE], 0.013)], 1),  # nose bridge
        np.stack([0.0025 * sx * eye_g, 0 * y, 0 * z], 1),  # eye spacing
        np.stack([0 * x, 0.0025 * eye_g, 0 * z], 1),  # eye height
        0.08 * (v - np.where(x[:, None] > 0, eyes[0], eyes[1])) * eye_g[:, None],  # eye opening size
        np.stack([0 * x, 0 * y, 0.003 * both(brow, 0.018)], 1),  # brow ridge
        np.stack([0.003 * sx * both(cheek, 0.022), 0 * y, 0.0015 * both(cheek, 0.022)], 1),  # cheek fullness
        np.stack([0.003 * sx * both(lm[lmk.CHEEK_UPPER["L"]] + [0.015, 0.0, -0.01], 0.018), 0 * y, 0 * z], 1),
        np.stack([0 * x, 0.0015 * _gauss(v, lm[lmk.UPPER_LIP_TOP], 0.01), 0.0008 * _gauss(v, lm[0], 0.01)], 1),
        np.stack([0 * x, -0.0015 * _gauss(v, lm[lmk.LOWER_LIP_BOTTOM], 0.01),
                  0.0008 * _gauss(v, lm[17], 0.01)], 1),  # lip thickness (upper, lower)
        np.stack([0.003 * sx * both(corner, 0.012), 0 * y, 0 * z], 1),  # mouth width
        np.stack([0 * x, 0.003 * _gauss(v, lm[lmk.INNER_UPPER_LIP], 0.02), 0 * z], 1),  # mouth height
        np.stack([0 * x, 0 * y, 0.005 * smoothstep(0.02, 0.1, y) * front], 1),  # forehead slope
        np.stack([0 * x, 0.006 * smoothstep(0.02, 0.12, y), 0 * z], 1),  # cranium height
        np.stack([0 * x, 0 * y, -0.006 * smoothstep(0.02, 0.11, -z) * smoothstep(-0.08, -0.02, y)], 1),
        np.stack([0.06 * x * smoothstep(0.07, 0.11, -y), 0 * y,
                  0.06 * (z + 0.02) * smoothstep(0.07, 0.11, -y)], 1),  # neck thickness
        np.stack([0.003 * sx * both(jaw_angle, 0.02), -0.002 * both(jaw_angle, 0.02), 0 * z], 1),  # jaw angle
        np.stack([0 * x, 0 * y, 0.003 * _gauss(v, [0, -0.025, 0.09], 0.035)], 1),  # mid-face projection
        np.stack([0.002 * sx * both([0.065, 0.03, 0.02], 0.02), 0 * y, 0 * z], 1),  # temples
    ]
    ears = np.concatenate([P.ranges["ear_L"], P.ranges["ear_R"]])
    ear_field = np.zeros_like(v)
    ear_field[ears, 0] = 0.15 * sx[ears] * np.maximum(-(z[ears] - z[ears].max()), 0)  # ear protrusion
    named.append(ear_field)
    modes = [_rigid_eyes(m, geo) for m in named]
    # Random smooth modes: sums of Gaussian bumps at random skin points, orthogonalised.
    skin_ids = np.unique(skin_faces)
    basis = [m.ravel() / np.linalg.norm(m) for m in modes]
    while len(modes) < num:
        field = np.zeros_like(v)
        for _ in range(6):
            c = v[skin_ids[rng.integers(len(skin_ids))]]
            sigma = rng.uniform(0.02, 0.04)
            d = rng.normal(0.0, 0.0015, 3)
            field += _gauss(v, c, sigma)[:, None] * d
            if rng.random() < 0.5:  # faces are nearly symmetric: mirror about half of the bumps
                field += _gauss(v, c * mirror, sigma)[:, None] * (d * mirror)
        field = _rigid_eyes(field, geo).ravel()
        for b in basis:
            field -= (field @ b) * b
        norm = np.linalg.norm(field)
        if norm < 1e-9:
            continue
        basis.append(field / norm)
        f3 = field.reshape(-1, 3)
        modes.append(f3 * (0.003 / np.linalg.norm(f3, axis=1).max()))
    return np.stack(modes[:num], axis=2)


def _rigid_eyes(field: np.ndarray, geo: dict) -> np.ndarray:
    """Replace the field on each eyeball by its value interpolated at the eyeball centre."""
    P = geo["parts"]
    field = field.copy()
    for side in ("L", "R"):
        ids = P.ranges["eyeball_" + side]
        socket = P.ranges["socket_" + side]
        field[ids] = field[socket].mean(axis=0)
    return field
