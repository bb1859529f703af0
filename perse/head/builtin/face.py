"""The face surface from MediaPipe landmarks (step 1 of the recipe in `perse.head.builtin`).

MediaPipe FaceMesh landmarks of the astronaut portrait, rotated into the head frame by their own mirror
symmetry, symmetrised, scaled to metres and neutralised (lips closed, smile relaxed) on MediaPipe's
468-vertex tesselation, then subdivided once (landmark i stays vertex i).
"""

from __future__ import annotations

import numpy as np

from perse import landmarks as lmk
from perse import mesh_ops as mo
from perse.head.builtin.fields import FieldBuilder
from perse.head.builtin.loops import _lip_loops, _name_loops


EYE_CORNER_DISTANCE = 0.09  # m, outer eye corners (33, 263)


def portrait_landmarks() -> np.ndarray:
    """(478, 3) MediaPipe landmarks of ``skimage.data.astronaut()``: x, y in pixels, z in pixels
    (MediaPipe's z scaled by the image width), image axes (y down, z away from the camera)."""
    import mediapipe as mp
    import skimage.data

    image = skimage.data.astronaut()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                         max_num_faces=1) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        raise RuntimeError("MediaPipe found no face in the astronaut portrait")
    h, w = image.shape[:2]
    lm = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)


def face_tesselation() -> np.ndarray:
    """(852, 3) triangles of MediaPipe's 468-vertex face tesselation (orientation not yet fixed)."""
    import mediapipe as mp

    edges = np.array(sorted(mp.solutions.face_mesh_connections.FACEMESH_TESSELATION), dtype=np.int64)
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    tris = mo.drop_spurious_cliques(mo.triangles_from_edges(edges))
    return mo.orient_consistently(tris)


def _rotation(rotvec: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix of one axis-angle vector, in the generator's own arithmetic.

    Not `perse.geometry.rotations.axis_angle_to_matrix` on purpose: the generator turns differences of
    1e-16 in the canonical landmarks into millimetres of the finished head (least squares, then
    discrete choices), and `tests/test_builtin_head.py` pins the regenerated head to the stored one
    within 0.05 mm. This keeps the stored head reproducible bit for bit."""
    angle = np.linalg.norm(rotvec)
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def mirror_pairs(points: np.ndarray) -> np.ndarray:
    """(N,) index of each point's mirror partner under x -> -x (optimal one-to-one matching)."""
    from scipy.optimize import linear_sum_assignment

    mirrored = points * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(points[:, None] - mirrored[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    pair = np.empty(len(points), dtype=np.int64)
    pair[rows] = cols
    return pair


def canonical_landmarks(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate, symmetrise and scale raw landmarks into the head frame.

    raw: (478, 3) image-axis landmarks (see :func:`portrait_landmarks`).
    Returns (points (478, 3) in metres, pair (478,) mirror partner index).
    """
    from scipy.optimize import least_squares

    p = raw * np.array([1.0, -1.0, -1.0])  # image axes -> y up, z toward the camera
    p = p - p[:468].mean(axis=0)
    # Initial frame from eye corners (x) and chin -> forehead (y).
    x = p[lmk.EYE_OUTER["L"]] - p[lmk.EYE_OUTER["R"]]
    x /= np.linalg.norm(x)
    y = p[lmk.FOREHEAD_TOP] - p[lmk.CHIN_BOTTOM]
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    p = p @ np.stack([x, y, np.cross(x, y)], axis=1)
    pair = np.concatenate([mirror_pairs(p[:468]), 468 + mirror_pairs(p[468:])])
    # Refine yaw/roll (and x offset) so that the mirrored partners coincide.
    flip = np.array([-1.0, 1.0, 1.0])

    def residual(params: np.ndarray) -> np.ndarray:
        q = p @ _rotation(np.array([0.0, params[0], params[1]])).T + np.array([params[2], 0, 0])
        return ((q * flip)[pair] - q).ravel()

    sol = least_squares(residual, np.zeros(3))
    R = _rotation(np.array([0.0, sol.x[0], sol.x[1]]))
    p = p @ R.T + np.array([sol.x[2], 0, 0])
    p = 0.5 * (p + (p * flip)[pair])  # exact mirror symmetry
    p[pair == np.arange(len(p)), 0] = 0.0
    # Pitch: make the face plane upright (glabella straight above the chin front).
    g, c = p[lmk.GLABELLA], p[lmk.CHIN_FRONT]
    pitch = -np.arctan2(g[2] - c[2], g[1] - c[1])
    p = p @ _rotation(np.array([pitch, 0.0, 0.0])).T
    p *= EYE_CORNER_DISTANCE / np.linalg.norm(p[lmk.EYE_OUTER["L"]] - p[lmk.EYE_OUTER["R"]])
    return p, pair


def neutralise_face(verts: np.ndarray, faces: np.ndarray, mouth_loop: np.ndarray) -> np.ndarray:
    """Undo the portrait's smile and parted lips on the 468-vertex face. Returns new (468(+), 3)."""
    fb = FieldBuilder(verts, faces, smooth_iterations=3)
    upper, lower = _lip_loops(mouth_loop, verts)
    upper, lower = upper[1:-1], lower[1:-1]  # corners stay
    # Lips meet on the mid curve between the inner contours, leaving a 0.6 mm slit.
    lx = verts[lower, 0]
    order = np.argsort(lx)
    y_low = np.interp(verts[upper, 0], lx[order], verts[lower[order], 1])
    z_low = np.interp(verts[upper, 0], lx[order], verts[lower[order], 2])
    ux = verts[upper, 0]
    uorder = np.argsort(ux)
    y_up = np.interp(lx, ux[uorder], verts[upper[uorder], 1])
    z_up = np.interp(lx, ux[uorder], verts[upper[uorder], 2])
    d_up = np.stack([np.zeros(len(upper)), 0.5 * (y_low - verts[upper, 1]) + 0.0003,
                     0.5 * (z_low - verts[upper, 2])], 1)
    d_low = np.stack([np.zeros(len(lower)), 0.5 * (y_up - verts[lower, 1]) - 0.0003,
                      0.5 * (z_up - verts[lower, 2])], 1)
    ids = np.concatenate([upper, lower])
    out = verts + fb.field(ids, np.concatenate([d_up, d_low]), radius=0.022, sigma=0.004)
    # Relax the smile: corners medially, down and slightly forward.
    for side, s in (("R", -1.0), ("L", 1.0)):
        corner = [lmk.MOUTH_CORNER[side], lmk.MOUTH_INNER_CORNER[side]]
        out += fb.field(corner, [-s * 0.0055, -0.0045, 0.0015], radius=0.032)
    return out


def build_face(raw: np.ndarray) -> dict:
    """Face surface from raw portrait landmarks.

    Returns dict: verts (Vf, 3) with ids 0..467 = MediaPipe landmarks, faces (Ff, 3) outward,
    landmarks (478, 3) (irises still at their MediaPipe positions), loops {oval, mouth, eye_L, eye_R}
    (each ordered along the face boundary orientation).
    """
    pts, _ = canonical_landmarks(raw)
    faces = face_tesselation()
    if mo.face_normals(pts[:468], faces)[:, 2].mean() < 0:  # the face looks toward +z
        faces = faces[:, ::-1].copy()
    loops = _name_loops(mo.boundary_loops(faces), pts)
    face_pts = neutralise_face(pts[:468], faces, loops["mouth"])
    pts = np.concatenate([face_pts, pts[468:]])
    # Head frame: y = 0 at the outer eye corners, z = 0 about 1 cm behind the face's side points
    # (234/454, in front of the ears) -- roughly the ear canals.
    pts -= np.array([0.0, pts[lmk.EYE_OUTER["L"], 1], pts[lmk.FACE_SIDE["L"], 2] - 0.010])
    verts, faces, _ = mo.subdivide_butterfly(pts[:468], faces)
    return {"verts": verts, "faces": faces, "landmarks": pts,
            "loops": _name_loops(mo.boundary_loops(faces), verts)}
