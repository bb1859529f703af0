"""Head silhouette IoU: the avatar's outline in the reference view against the portrait's person mask,
counted only above the line of the mouth corners (shoulders, clothes and the neck stay out)."""

from __future__ import annotations

import numpy as np

from perse.landmarks import CHIN_BOTTOM, MOUTH_CORNER


def above_line_mask(p: np.ndarray, q: np.ndarray, away_from: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels on the far side of the line through p and q (each (2,) x, y) from the point
    `away_from` (2,), e.g. above the mouth corners = away from the chin."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    d = q - p
    side = lambda x, y: d[0] * (y - p[1]) - d[1] * (x - p[0])  # noqa: E731  (cross product sign)
    ref = side(*away_from)
    return (side(xs, ys) * np.sign(ref if ref != 0 else 1.0)) < 0


def above_mouth_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: above the line through the mouth corners (landmarks 61, 291) of (478, 2) landmarks."""
    return above_line_mask(landmarks[MOUTH_CORNER["R"]], landmarks[MOUTH_CORNER["L"]], landmarks[CHIN_BOTTOM], shape)


def silhouette_iou(avatar_alpha: np.ndarray, person: np.ndarray, landmarks: np.ndarray,
                   valid: np.ndarray | None = None) -> dict:
    """IoU of the avatar silhouette (alpha > 0.5) and the person mask (> 0.5), both (H, W) in the same
    frame, above the mouth-corner line of (478, 2) landmarks in that frame; `valid` (H, W) bool limits it
    to pixels the photo covers. Returns iou, and the missing / extra fractions of the union (portrait
    pixels the avatar lacks, avatar pixels the portrait lacks)."""
    keep = above_mouth_mask(landmarks, avatar_alpha.shape)
    if valid is not None:
        keep &= valid
    a, b = (avatar_alpha > 0.5) & keep, (person > 0.5) & keep
    union = int((a | b).sum())
    if union == 0:
        return {"iou": None, "missing": None, "extra": None}
    return {"iou": int((a & b).sum()) / union, "missing": int((b & ~a).sum()) / union,
            "extra": int((a & ~b).sum()) / union}
