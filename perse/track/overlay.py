"""Drawing a head fit over its photo: the face wireframe, detected vs fitted landmarks."""

from __future__ import annotations

import numpy as np
import torch

from perse.head.model import HeadModel
from perse.landmarks import eye_corner_distance
from perse.track.fit import FitResult


# --------------------------------------------------------------------------------------------------

# Regions of the built-in head drawn in the wireframe (the face, not scalp/neck/ears/eyeball backs).
FACE_REGIONS = ("face", "forehead", "brows", "eyelids", "nose", "lips", "beard")
WIRE_COLOR = np.array([80, 200, 255], dtype=np.float64)
DETECTED_COLOR = np.array([40, 255, 40], dtype=np.uint8)
FITTED_COLOR = np.array([255, 40, 40], dtype=np.uint8)


def visible_edges(model: HeadModel, fit: FitResult) -> tuple[np.ndarray, np.ndarray]:
    """Projected vertices (V, 2) and unique edges (E, 2) of the front-facing face triangles.

    Front-facing: the outward normal points toward the camera. (No occlusion test: on strongly turned
    heads the far cheek may show through the nose.)
    """
    with torch.no_grad():
        verts = model(fit.params).vertices[0].float()
    cam = fit.camera
    Xc = verts @ cam.world_to_cam[:3, :3].T + cam.world_to_cam[:3, 3]
    uv = cam.project(verts).numpy()
    faces = model.faces.cpu()
    a, b, c = (Xc[faces[:, k]] for k in range(3))
    normal = torch.linalg.cross(b - a, c - a)
    front = ((normal * (a + b + c)).sum(1) < 0).numpy()  # camera at the origin of the camera frame
    if model.vertex_regions is not None and model.region_names:
        names = model.region_names
        wanted = torch.tensor([names.index(r) for r in FACE_REGIONS if r in names])
        in_face = torch.isin(model.vertex_regions.cpu()[faces], wanted).all(1).numpy()
        front &= in_face
    tri = faces.numpy()[front]
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    return uv, np.unique(edges, axis=0)


def draw_lines(image: np.ndarray, starts: np.ndarray, ends: np.ndarray, color: np.ndarray, alpha: float) -> None:
    """Blend 1-px lines (N, 2) -> (N, 2) (pixel coordinates) into (H, W, 3) uint8, in place."""
    h, w = image.shape[:2]
    length = np.linalg.norm(ends - starts, axis=1)
    n = np.clip(np.ceil(length * 1.5).astype(np.int64) + 1, 2, 4096)
    seg = np.repeat(np.arange(len(starts)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    t = offsets / np.repeat(n - 1, n)
    pts = starts[seg] + (ends[seg] - starts[seg]) * t[:, None]
    px = np.round(pts).astype(np.int64)
    ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    px = np.unique(px[ok], axis=0)
    region = image[px[:, 1], px[:, 0]].astype(np.float64)
    image[px[:, 1], px[:, 0]] = np.clip((1 - alpha) * region + alpha * color, 0, 255).astype(np.uint8)


def draw_dots(image: np.ndarray, points: np.ndarray, color: np.ndarray, radius: int) -> None:
    """Filled discs of `radius` pixels at (N, 2) pixel positions, in place."""
    h, w = image.shape[:2]
    r = max(int(radius), 0)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = (dx * dx + dy * dy) <= r * r + r
    offs = np.stack([dx[disc], dy[disc]], 1)
    px = (np.round(points).astype(np.int64)[:, None] + offs[None]).reshape(-1, 2)
    ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    image[px[ok, 1], px[ok, 0]] = color


def draw_fit_overlay(image: np.ndarray, model: HeadModel, fit: FitResult, detected_px: np.ndarray,
                     min_eye_distance_px: float = 240.0, max_upscale: int = 4) -> np.ndarray:
    """RGB uint8: the photo, the fitted face wireframe (blue), detected landmarks (green) and the fitted
    ones (red) with a yellow line from each detected point to its fitted position.

    A mesh edge of a small face is a pixel or two long, so the drawing is made on the photo enlarged
    by an integer factor (up to `max_upscale`) until the outer eye corners are `min_eye_distance_px`
    apart; the result is (H * f, W * f, 3). detected_px: (478, 2) MediaPipe landmarks of `image`.
    """
    from PIL import Image

    detected_all = np.asarray(detected_px, dtype=np.float64)
    iod = eye_corner_distance(detected_all)
    f = int(np.clip(np.ceil(min_eye_distance_px / max(iod, 1.0)), 1, max_upscale))
    h, w = image.shape[:2]
    out = image.copy() if f == 1 else np.asarray(
        Image.fromarray(image).resize((w * f, h * f), Image.Resampling.BICUBIC))
    out = np.array(out, dtype=np.uint8, copy=True)  # writable, contiguous

    def scaled(px: np.ndarray) -> np.ndarray:  # pixel centres: (u + 0.5) * f - 0.5
        return (px + 0.5) * f - 0.5

    uv, edges = visible_edges(model, fit)
    uv = scaled(uv)
    draw_lines(out, uv[edges[:, 0]], uv[edges[:, 1]], WIRE_COLOR, alpha=0.5)
    detected = scaled(detected_all[fit.landmark_ids.numpy()])
    fitted = scaled(fit.projected_px.numpy().astype(np.float64))
    radius = int(iod * f // 150)
    draw_lines(out, detected, fitted, np.array([255.0, 255.0, 0.0]), alpha=1.0)
    draw_dots(out, detected, DETECTED_COLOR, radius=radius + 1)
    draw_dots(out, fitted, FITTED_COLOR, radius=radius)
    return out
