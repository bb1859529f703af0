"""All geometry of the neutral head, assembled into one vertex/face array with named id ranges.

Order: face, eye sockets, mouth cavity, shell (together the closed, outward skin), then ears and
eyeballs (separate closed meshes).
"""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse import mesh_ops as mo
from perse.head.builtin.ears import ear_mesh
from perse.head.builtin.eyes import EYEBALL_RADIUS, eyeball_centre, eyeball_mesh, socket_pocket
from perse.head.builtin.face import build_face
from perse.head.builtin.mouth import mouth_pocket
from perse.head.builtin.shell import build_shell


class Parts:
    """Vertex/face arrays being assembled plus named vertex-id ranges."""

    def __init__(self):
        self.verts = np.zeros((0, 3))
        self.faces = np.zeros((0, 3), dtype=np.int64)
        self.ranges: dict[str, np.ndarray] = {}

    def add(self, name: str, verts: np.ndarray, faces: np.ndarray, offset_faces: bool = True) -> np.ndarray:
        start = len(self.verts)
        self.verts = np.concatenate([self.verts, verts])
        self.faces = np.concatenate([self.faces, faces + (start if offset_faces else 0)])
        ids = start + np.arange(len(verts))
        self.ranges[name] = ids
        return ids


def _orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Consistent orientation, then flip each connected component whose signed volume is negative."""
    faces = mo.orient_consistently(faces)
    label = mo.components(len(verts), faces)[faces[:, 0]]
    for c in np.unique(label):
        sel = label == c
        if mo.signed_volume(verts, faces[sel]) < 0:
            faces[sel] = faces[sel][:, ::-1]
    return faces


def build_geometry(raw: np.ndarray) -> dict:
    """All geometry of the neutral head. Returns a dict of arrays and id groups."""
    face = build_face(raw)
    lm = face["landmarks"]
    parts = Parts()
    parts.add("face", face["verts"], face["faces"])
    loops = face["loops"]
    eye_centres = {}
    for side in ("L", "R"):
        c = eyeball_centre(face["verts"][loops["eye_" + side]], lm[lmk.IRIS_CENTER[side]], EYEBALL_RADIUS)
        eye_centres[side] = c
        nv, nf = socket_pocket(loops["eye_" + side], parts.verts, c, EYEBALL_RADIUS + 0.0013)
        parts.add("socket_" + side, nv, nf, offset_faces=False)
    nv, nf = mouth_pocket(loops["mouth"], parts.verts)
    parts.add("mouth_pocket", nv, nf, offset_faces=False)
    nv, nf, _ = build_shell(loops["oval"], parts.verts)
    parts.add("shell", nv, nf, offset_faces=False)
    skin_faces = _orient_outward(parts.verts, parts.faces)
    parts.faces = skin_faces
    ear_dirs = {}
    for side, s in (("L", 1.0), ("R", -1.0)):
        # Attach just behind the face's side point, slightly below the eye line.
        o = np.array([0.0, -0.012, lm[lmk.FACE_SIDE[side], 2] - 0.014])
        f_hit, t_hit, _ = mo.ray_mesh_intersect(o[None], np.array([[s, 0.0, 0.0]]), parts.verts, skin_faces)
        ev, ef, ed = ear_mesh(o + t_hit[0] * np.array([s, 0.0, 0.0]), s)
        parts.add("ear_" + side, ev, ef)
        ear_dirs[side] = ed
    eye_dirs = {}
    for side in ("L", "R"):
        ev, ef, ed = eyeball_mesh(eye_centres[side], EYEBALL_RADIUS)
        parts.add("eyeball_" + side, ev, ef)
        eye_dirs[side] = ed
    parts.faces = _orient_outward(parts.verts, parts.faces)
    return {"parts": parts, "landmarks": lm, "loops": loops, "eye_centres": eye_centres,
            "ear_dirs": ear_dirs, "eye_dirs": eye_dirs, "num_skin_faces": len(skin_faces)}
