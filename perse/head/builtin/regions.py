"""Named vertex regions (scalp, lips, eyelids, ...), decided by rules on the neutral geometry."""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse.head.builtin.loops import _inside_polygon, _outer_lips


REGIONS = ("face", "forehead", "brows", "eyelids", "eyeballs", "nose", "lips", "beard", "ears", "scalp",
           "back_of_head", "neck")


def vertex_regions(geo: dict) -> np.ndarray:
    """(V,) index into :data:`REGIONS` for every vertex (rules on the neutral geometry)."""
    P = geo["parts"]
    v = P.verts
    lm = geo["landmarks"]
    R = {name: i for i, name in enumerate(REGIONS)}
    reg = np.full(len(v), R["face"], dtype=np.int64)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    face = np.zeros(len(v), dtype=bool)
    face[P.ranges["face"]] = True
    shell = np.zeros(len(v), dtype=bool)
    shell[P.ranges["shell"]] = True
    # Shell: hair on top and back, neck below, jaw/under-chin as beard, temples stay "face".
    reg[shell & (y > 0.02)] = R["scalp"]
    reg[shell & (z < -0.035) & (y > -0.07)] = R["back_of_head"]
    reg[shell & (y <= 0.02) & (z >= -0.035)] = R["face"]
    reg[shell & (y < -0.03) & (z > -0.035)] = R["beard"]
    reg[shell & ((y < -0.13) | ((y < -0.07) & (z < -0.035)))] = R["neck"]
    # Face mesh.
    sub = lm[lmk.SUBNASALE]
    side_y = -0.03  # height of the beard line at the sideburns
    beard_line = sub[1] + (np.abs(x) / 0.065) * (side_y - sub[1])
    brow_ids = np.array(lmk.BROW["L"] + lmk.BROW["R"])
    brow_top = lm[brow_ids, 1].max()
    reg[face & (y > brow_top + 0.004)] = R["forehead"]
    reg[face & (y < beard_line)] = R["beard"]
    ala = lm[lmk.NOSE_ALA["L"]]
    half_w = np.interp(y, [sub[1] - 0.004, ala[1], lm[lmk.GLABELLA, 1]], [0.012, ala[0] + 0.004, 0.008])
    reg[face & (y > sub[1] - 0.004) & (y < lm[lmk.GLABELLA, 1]) & (np.abs(x) < half_w)] = R["nose"]
    brow_d = np.linalg.norm(v[:, None] - lm[brow_ids][None], axis=2).min(axis=1)
    reg[face & (brow_d < 0.0065)] = R["brows"]
    eye_loops = np.concatenate([geo["loops"]["eye_L"], geo["loops"]["eye_R"]])
    eye_d = np.linalg.norm(v[:, None] - v[eye_loops][None], axis=2).min(axis=1)
    reg[face & (eye_d < 0.0075) & (brow_d >= 0.0065)] = R["eyelids"]
    # Lips: inside the outer lip contour (in the frontal projection).
    up_out, low_out = _outer_lips(v, geo["loops"]["mouth"])
    ring = np.concatenate([[lmk.MOUTH_CORNER["R"]], up_out[np.argsort(v[up_out, 0])], [lmk.MOUTH_CORNER["L"]],
                           low_out[np.argsort(-v[low_out, 0])]])
    in_lips = _inside_polygon(v[:, :2], v[ring, :2]) & (z > lm[lmk.MOUTH_CORNER["L"], 2] - 0.005)
    reg[face & in_lips] = R["lips"]
    reg[np.isin(np.arange(len(v)), geo["loops"]["mouth"])] = R["lips"]
    reg[P.ranges["mouth_pocket"]] = R["lips"]
    reg[np.concatenate([P.ranges["socket_L"], P.ranges["socket_R"]])] = R["eyelids"]
    reg[np.concatenate([P.ranges["eyeball_L"], P.ranges["eyeball_R"]])] = R["eyeballs"]
    reg[np.concatenate([P.ranges["ear_L"], P.ranges["ear_R"]])] = R["ears"]
    return reg
