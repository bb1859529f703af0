"""The evaluate stage's reference-view measure: the avatar rendered in the portrait's own view,
compared with the portrait (PSNR inside the face, and whether the render's landmarks match)."""

from __future__ import annotations

import numpy as np
import torch

from perse.errors import PerseError


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama: the similarity transform (scale, rotation, translation) of src (N, 2) best matching dst,
    applied to src."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.diag([1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    scale = np.trace(np.diag(S) @ D) / a.var(0).sum()
    return scale * a @ R.T + mu_d


@torch.no_grad()
def reference_view_quality(avatar, portrait: np.ndarray, portrait_landmarks: np.ndarray, backend: str) -> dict:
    """Render the reference view at the portrait's size; PSNR inside the face oval of the portrait's
    landmarks, and whether MediaPipe finds
    the face in the render with landmarks matching the portrait's (after similarity alignment)."""
    from perse.track import detect_largest_face
    from perse.avatar.model import AvatarState
    from perse.render import render
    from perse.render.camera import Camera
    from perse.train.losses import psnr

    ref = avatar.meta["reference_view"]
    cam = Camera.from_dict(ref["camera"])
    state = avatar.reference_state()
    img = render(avatar.gaussians(AvatarState(state.head, None)), cam, backend=backend,
                 background=torch.zeros(3)).rgb.clamp(0, 1)
    target = torch.from_numpy(portrait[..., :3].astype(np.float32) / 255.0)
    mask = landmark_hull_mask(portrait_landmarks, cam.width, cam.height)
    result = {"psnr_face": psnr(img, target, mask), "face_pixels": int(mask.sum())}
    try:
        found = detect_largest_face((img.numpy() * 255 + 0.5).astype(np.uint8), "the reference render").face.points
    except PerseError:
        return {**result, "face_found": False, "landmark_error_iod": None}
    aligned = similarity_align(found, portrait_landmarks)
    iod = float(np.linalg.norm(portrait_landmarks[33] - portrait_landmarks[263]))
    error = float(np.linalg.norm(aligned - portrait_landmarks, axis=1).mean()) / iod
    return {**result, "face_found": True, "landmark_error_iod": error}


def landmark_hull_mask(landmarks: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(H, W) bool: inside the convex hull of a face's MediaPipe landmarks (the face oval: forehead to
    chin, cheek to cheek) — "inside the face" as the portrait's own landmarks define it."""
    from matplotlib.path import Path as PolyPath  # installed with scikit-image's dependencies
    from scipy.spatial import ConvexHull

    hull = landmarks[ConvexHull(landmarks).vertices]
    ys, xs = np.mgrid[0:height, 0:width]
    inside = PolyPath(hull).contains_points(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(height, width)
    return torch.from_numpy(inside)

