"""The expression basis: ARKit-named displacement fields (`perse.head.arkit`).

Metres at coefficient 1 (the full expression); ``jawOpen`` is the linearised skinning displacement of
``jaw_rot = (JAW_OPEN_ANGLE, 0, 0)``, the other fields are anchored fields (`fields`) on the skin.
"""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse import mesh_ops as mo
from perse.head import arkit
from perse.head.builtin.eyes import EYEBALL_RADIUS
from perse.head.builtin.face import _rotation
from perse.head.builtin.fields import FieldBuilder
from perse.head.builtin.loops import _lip_loops, _outer_lips
from perse.head.builtin.skinning import _skin


JAW_OPEN_ANGLE = 0.3  # rad, the jaw rotation jawOpen = 1 reproduces


def expression_fields(geo: dict, J: np.ndarray, weights: np.ndarray, w_jaw: np.ndarray) -> np.ndarray:
    """(V, 3, E) displacement fields in the order of :data:`arkit.EXPRESSION_NAMES`."""
    P = geo["parts"]
    v = P.verts
    V = len(v)
    skin_faces = P.faces[: geo["num_skin_faces"]]
    fb = FieldBuilder(v, skin_faces)
    normals = mo.vertex_normals(v, skin_faces)
    loops = geo["loops"]
    up_in, low_in = _lip_loops(loops["mouth"], v)
    up_out, low_out = _outer_lips(v, loops["mouth"])
    upper_lip = np.concatenate([up_in[1:-1], up_out])
    lower_lip = np.concatenate([low_in[1:-1], low_out])
    lips = np.concatenate([upper_lip, lower_lip])
    corners = {s: np.array([lmk.MOUTH_CORNER[s], lmk.MOUTH_INNER_CORNER[s]]) for s in "LR"}
    sign = {"L": 1.0, "R": -1.0}
    sockets = np.concatenate([P.ranges["socket_L"], P.ranges["socket_R"]])
    no_socket = np.ones((V, 1))
    no_socket[sockets] = 0.0
    m = v[loops["mouth"]].mean(axis=0)
    F: dict[str, np.ndarray] = {}

    def side_of(ids, s):
        ids = np.asarray(ids)
        return ids[v[ids, 0] * sign[s] > 0.002]

    # --- jaw -------------------------------------------------------------------------------
    pose = np.zeros((5, 3))
    pose[2, 0] = JAW_OPEN_ANGLE
    F["jawOpen"] = _skin(v, J, weights, pose) - v
    F["jawForward"] = w_jaw[:, None] * np.array([0.0, 0.0, 0.006])
    F["jawLeft"] = w_jaw[:, None] * np.array([0.006, 0.0, 0.0])
    F["jawRight"] = w_jaw[:, None] * np.array([-0.006, 0.0, 0.0])
    # --- mouth -----------------------------------------------------------------------------
    F["mouthClose"] = (fb.field(upper_lip, [0, -0.004, 0.0005], 0.018, 0.004)
                       + fb.field(lower_lip, [0, 0.005, 0.0005], 0.02, 0.004))
    for s in "LR":
        x = sign[s]
        cheek = [lmk.CHEEK[s], lmk.CHEEK_UPPER[s]]
        F["mouthSmile" + ("Left" if s == "L" else "Right")] = (
            fb.field(corners[s], [x * 0.006, 0.007, -0.003], 0.032)
            + fb.field(cheek, [x * 0.0015, 0.003, 0.002], 0.025))
        F["mouthFrown" + ("Left" if s == "L" else "Right")] = fb.field(corners[s], [x * 0.001, -0.006, 0.0], 0.028)
        F["mouthStretch" + ("Left" if s == "L" else "Right")] = (
            fb.field(corners[s], [x * 0.007, -0.003, -0.002], 0.03)
            + fb.field(side_of(low_out, s), [0, -0.002, 0], 0.015, 0.004))
        F["mouthPress" + ("Left" if s == "L" else "Right")] = (
            fb.field(side_of(up_out, s), [0, -0.0015, -0.001], 0.012, 0.004)
            + fb.field(side_of(low_out, s), [0, 0.0015, -0.001], 0.012, 0.004))
        F["mouthUpperUp" + ("Left" if s == "L" else "Right")] = fb.field(
            side_of(np.concatenate([up_out, up_in[1:-1]]), s), [0, 0.005, 0.001], 0.018, 0.004)
        F["mouthLowerDown" + ("Left" if s == "L" else "Right")] = fb.field(
            side_of(np.concatenate([low_out, low_in[1:-1]]), s), [0, -0.005, 0.001], 0.018, 0.004)
        F["mouthDimple" + ("Left" if s == "L" else "Right")] = fb.field(corners[s], [x * 0.003, 0.0, -0.003], 0.022)
    pucker = np.stack([-0.4 * (v[lips, 0] - m[0]), np.zeros(len(lips)), np.full(len(lips), 0.008)], 1)
    F["mouthPucker"] = fb.field(lips, pucker, 0.022, 0.004)
    funnel = np.stack([-0.25 * (v[lips, 0] - m[0]), np.sign(v[lips, 1] - m[1]) * 0.004,
                       np.full(len(lips), 0.006)], 1)
    F["mouthFunnel"] = fb.field(lips, funnel, 0.022, 0.004)
    all_mouth = np.concatenate([lips, corners["L"], corners["R"]])
    F["mouthLeft"] = fb.field(all_mouth, [0.008, 0, 0], 0.025, 0.005)
    F["mouthRight"] = fb.field(all_mouth, [-0.008, 0, 0], 0.025, 0.005)
    F["mouthRollLower"] = fb.field(np.concatenate([low_out, low_in[1:-1]]), [0, 0.002, -0.004], 0.012, 0.004)
    F["mouthRollUpper"] = fb.field(np.concatenate([up_out, up_in[1:-1]]), [0, -0.002, -0.004], 0.012, 0.004)
    chin = [lmk.CHIN_FRONT, lmk.CHIN_BOTTOM]
    F["mouthShrugLower"] = (fb.field(lower_lip, [0, 0.003, 0.002], 0.015, 0.004)
                            + fb.field(chin, [0, 0.002, 0.002], 0.025))
    F["mouthShrugUpper"] = fb.field(upper_lip, [0, 0.003, 0.002], 0.015, 0.004)
    # --- eyes ------------------------------------------------------------------------------
    for s in "LR":
        x = sign[s]
        name = "Left" if s == "L" else "Right"
        c = geo["eye_centres"][s]
        up, low = _lip_loops(loops["eye_" + s], v)
        up, low = up[1:-1], low[1:-1]
        # Blink: the lower lid rises 20% of the opening, the upper lid comes down to meet it.
        lo_sorted = low[np.argsort(v[low, 0])]
        y_low = np.interp(v[up, 0], v[lo_sorted, 0], v[lo_sorted, 1])
        z_low = np.interp(v[up, 0], v[lo_sorted, 0], v[lo_sorted, 2])
        up_sorted = up[np.argsort(v[up, 0])]
        gap_low = np.interp(v[low, 0], v[up_sorted, 0], v[up_sorted, 1]) - v[low, 1]
        d_low = np.stack([np.zeros(len(low)), 0.2 * gap_low, np.zeros(len(low))], 1)
        gap_up = v[up, 1] - y_low
        meet = np.stack([v[up, 0], y_low + 0.2 * gap_up + 0.0002, z_low], 1)
        # Close along the eyeball: the meeting line sits 2 mm outside the eyeball surface.
        q = c + (EYEBALL_RADIUS + 0.002) * (meet - c) / np.linalg.norm(meet - c, axis=1, keepdims=True)
        blink = (fb.field(up, q - v[up], 0.016, 0.003) + fb.field(low, d_low, 0.01, 0.003)) * no_socket
        F["eyeBlink" + name] = blink
        cheek_up = [lmk.CHEEK_UPPER[s]]
        F["eyeSquint" + name] = (fb.field(low, [0, 0.002, 0.0005], 0.012, 0.003)
                                 + fb.field(cheek_up, [0, 0.002, 0.001], 0.02)
                                 + fb.field(up, [0, -0.001, 0], 0.01, 0.003)) * no_socket
        wide = c + _rot_about_x(v[up] - c, -0.2)  # the upper lid slides up over the eyeball
        F["eyeWide" + name] = (fb.field(up, wide - v[up], 0.016, 0.003)
                               + fb.field(lmk.BROW[s], [0, 0.0015, 0], 0.015)) * no_socket
        F["browDown" + name] = fb.field(lmk.BROW[s], [-x * 0.0015, -0.004, 0.0005], 0.022)
        F["browOuterUp" + name] = fb.field(lmk.BROW_OUTER[s], [0, 0.006, 0.0], 0.025)
        F["cheekSquint" + name] = (fb.field(cheek_up, [0, 0.003, 0.001], 0.022)
                                   + fb.field(low, [0, 0.001, 0], 0.01, 0.003)) * no_socket
        F["noseSneer" + name] = (fb.field([lmk.NOSE_ALA[s], lmk.NOSE_SIDE[s]], [0, 0.004, 0.0005], 0.018)
                                 + fb.field(lmk.BROW_INNER[s], [0, -0.0015, 0], 0.012))
    F["browInnerUp"] = fb.field(np.concatenate([lmk.BROW_INNER["L"], lmk.BROW_INNER["R"]]),
                                [0, 0.006, 0.0], 0.028)
    cheeks = [lmk.CHEEK["L"], lmk.CHEEK["R"]]
    F["cheekPuff"] = fb.field(cheeks, normals[cheeks] * 0.008, 0.03) + fb.field(
        np.concatenate([corners["L"], corners["R"]]), [0, 0, 0.001], 0.01)
    missing = set(arkit.EXPRESSION_NAMES) - set(F)
    if missing:
        raise RuntimeError(f"expression fields not defined: {sorted(missing)}")
    return np.stack([F[n] for n in arkit.EXPRESSION_NAMES], axis=2)


def _rot_about_x(p: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (N, 3) vectors about +x (negative angle tilts +z toward +y)."""
    return p @ _rotation(np.array([angle, 0.0, 0.0])).T
