"""Head anatomy for painting: the canonical (neutral) head's geometry and where its features are.

`head_anatomy` reads a `HeadModel` into a `HeadAnatomy` (vertices, faces, regions, UVs, the MediaPipe
landmarks the painters place features with, a sphere fitted to each eyeball); `eye_coordinates` measures
points on the eyeballs around each eye's gaze axis. Everything is numpy float64 in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError
from perse.landmarks import (BROW_LOWER, BROW_UPPER, CHEEKBONE, CHIN_BOTTOM, EYE_LOWER_LID, EYE_UPPER_LID, FACE_SIDE,
                             FOREHEAD_TOP, GLABELLA, IRIS, LIPS_INNER, LIPS_OUTER, NOSE_TIP, SUBNASALE)
from perse.synth.variants import HEAD_REGIONS

# MediaPipe landmarks the painters place features with (`perse.landmarks`).
REQUIRED_LANDMARKS = sorted(set(BROW_UPPER["R"] + BROW_LOWER["R"] + BROW_UPPER["L"] + BROW_LOWER["L"]
                                + EYE_UPPER_LID["R"] + EYE_LOWER_LID["R"] + EYE_UPPER_LID["L"] + EYE_LOWER_LID["L"]
                                + LIPS_OUTER + LIPS_INNER
                                + (NOSE_TIP, GLABELLA, FOREHEAD_TOP, CHIN_BOTTOM, CHEEKBONE["R"],
                                   CHEEKBONE["L"], FACE_SIDE["R"], FACE_SIDE["L"], SUBNASALE)))


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (N, 3) -> (centre (3,), radius)."""
    A = np.concatenate([2 * points, np.ones((points.shape[0], 1))], axis=1)
    b = (points ** 2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(max(sol[3] + centre @ centre, 1e-12)))


@dataclass
class HeadAnatomy:
    """Canonical (neutral) head geometry and named feature locations, as numpy arrays.

    vertices: (V, 3) float64; faces: (F, 3) int64; regions: (V,) int64 ids into `region_names`;
    uvs: (T, 2); uv_faces: (F, 3); landmarks: {MediaPipe id: (3,)};
    eye_centers / eye_radii: subject's right (x < 0) then left eye.
    """

    vertices: np.ndarray
    faces: np.ndarray
    regions: np.ndarray
    region_names: list[str]
    uvs: np.ndarray
    uv_faces: np.ndarray
    landmarks: dict[int, np.ndarray]
    eye_centers: np.ndarray
    eye_radii: np.ndarray

    def lmk(self, *ids: int) -> np.ndarray:
        """(K, 3) positions of MediaPipe landmarks `ids`."""
        return np.stack([self.landmarks[i] for i in ids])

    def region_id(self, name: str) -> int:
        return self.region_names.index(name)

    def vertex_mask(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """(V,) bool: vertices in any of the named regions."""
        ids = [self.region_id(n) for n in names]
        return np.isin(self.regions, ids)

    def face_regions(self) -> np.ndarray:
        """(F,) region id per triangle: the majority of its corners (first corner on a three-way tie)."""
        r = self.regions[self.faces]
        return np.where(r[:, 1] == r[:, 2], r[:, 1], r[:, 0])

    @property
    def head_center(self) -> np.ndarray:
        """(3,) centre of the skull: sphere fitted to scalp and back-of-head vertices."""
        centre, _ = fit_sphere(self.vertices[self.vertex_mask(["scalp", "back_of_head"])])
        return centre


def head_anatomy(head) -> HeadAnatomy:
    """Extract a `HeadAnatomy` from a `HeadModel`; PerseError if it lacks what painting needs."""
    missing = [n for n in ("uvs", "uv_faces", "vertex_regions") if getattr(head, n, None) is None]
    if missing:
        raise PerseError(f"head model '{head.meta.get('name', head.kind)}' has no {', '.join(missing)}; "
                         "the synthetic generator needs a textured, segmented head (use the built-in head)")
    names = head.region_names
    absent = [r for r in HEAD_REGIONS if r not in names]
    if absent:
        raise PerseError(f"head model lacks region(s) {absent}; the synthetic generator needs the built-in "
                         "head's regions")
    import torch

    with torch.no_grad():
        verts = head.v_template.detach().cpu().double()
        lmk_pos = head.landmarks(verts[None].to(head.v_template.dtype))[0].double().numpy()
    ids = head.landmark_indices.cpu().numpy().astype(np.int64)
    landmarks = {int(i): lmk_pos[k] for k, i in enumerate(ids)}
    lacking = [i for i in REQUIRED_LANDMARKS if i not in landmarks]
    if lacking:
        raise PerseError(f"head model's landmark embedding lacks MediaPipe landmark(s) {lacking[:6]}...; "
                         "the generator needs the 478-landmark embedding")
    vertices = verts.numpy()
    regions = head.vertex_regions.cpu().numpy().astype(np.int64)
    eyes = regions == names.index("eyeballs")
    centers, radii = [], []
    for side in (-1, 1):
        pts = vertices[eyes & (np.sign(vertices[:, 0]) == side)]
        if pts.shape[0] < 8:
            raise PerseError("head model's eyeball region is missing an eye; cannot paint the eyes")
        c, r = fit_sphere(pts)
        centers.append(c)
        radii.append(r)
    return HeadAnatomy(vertices=vertices, faces=head.faces.cpu().numpy().astype(np.int64), regions=regions,
                       region_names=names, uvs=head.uvs.detach().cpu().double().numpy(),
                       uv_faces=head.uv_faces.cpu().numpy().astype(np.int64), landmarks=landmarks,
                       eye_centers=np.stack(centers), eye_radii=np.array(radii))


def eye_coordinates(anatomy: HeadAnatomy, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical coordinates of points P (N, 3) on the eyeballs around each eye's gaze axis.

    Each point is measured on the eye of its side of the face (x < 0: the subject's right). Returns
    theta (N,) the angle from that eye's gaze axis, azimuth (N,) around it, and the iris half-angle
    (radians) from the embedding's iris landmarks (MediaPipe 468-477)."""
    a = anatomy
    theta = np.full(P.shape[0], np.pi)
    azim = np.zeros(P.shape[0])
    iris_angle = []
    for k, iris_ids in enumerate((IRIS["R"], IRIS["L"])):
        c, r = a.eye_centers[k], a.eye_radii[k]
        pts = a.lmk(*iris_ids)
        gaze = pts[0] - c
        gaze = gaze / max(np.linalg.norm(gaze), 1e-9)
        if np.dot(gaze, [0, 0, 1]) < 0.7:       # embedded iris not in front: trust the model's +z
            gaze = np.array([0.0, 0.0, 1.0])
        iris_r = np.linalg.norm(pts[1:] - pts[0], axis=1).mean()
        iris_angle.append(np.arcsin(np.clip(iris_r / r, 0.2, 0.8)) if np.isfinite(iris_r) else 0.5)
        side = np.sign(P[:, 0]) == (-1 if k == 0 else 1)
        rel = P[side] - c
        rel /= np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-12)
        theta[side] = np.arccos(np.clip(rel @ gaze, -1, 1))
        up = np.array([0.0, 1.0, 0.0]) - gaze[1] * gaze
        up /= np.linalg.norm(up)
        right = np.cross(up, gaze)
        azim[side] = np.arctan2(rel @ up, rel @ right)
    return theta, azim, float(np.clip(np.mean(iris_angle), 0.35, 0.7))
