"""Per-category image regions located by MediaPipe landmarks of a front render (upright face).

A category's region has two masks (both (H, W) bool):

    inside   where a variant of the category must visibly change the image
    allowed  where it may change it (inside plus a margin, and for skin the neck and ears);
             everything else is "outside", where a change is leakage

Sizes are in units of the inter-ocular distance (IOD: outer eye corners 33-263), so regions scale with
the face. Landmark ids are MediaPipe FaceMesh's (`perse.track.landmarks.landmark_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.landmarks import CHIN_BOTTOM, EYE_OUTER, FACE_SIDE, SUBNASALE, eye_corner_distance

MARGIN_IOD = 0.08          # allowed = inside dilated by this
FEATURE_DILATE_IOD = 0.06  # eyes / brows / lips hulls grown by this
BEARD_DROP_IOD = 0.45      # a beard may hang this far below the jaw line
EARLOBE_BOX_IOD = (0.35, 0.10, 0.95)  # outward, inward, downward extent of an earring box from 234/454


@dataclass(frozen=True)
class Region:
    """inside, allowed: (H, W) bool masks (see the module docstring)."""

    inside: np.ndarray
    allowed: np.ndarray


def polygon_mask(points: np.ndarray, shape: tuple[int, int], hull: bool = True) -> np.ndarray:
    """(H, W) bool: inside the convex hull of `points` (N, 2) pixel coordinates (x, y) (or the polygon
    itself with hull=False)."""
    import cv2

    pts = np.asarray(points, np.float64)
    if hull:
        pts = cv2.convexHull(pts.astype(np.float32))[:, 0]
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def dilate(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """(H, W) bool grown by a disc of `radius_px` pixels (unchanged for radius < 0.5)."""
    import cv2

    r = int(round(radius_px))
    if r < 1:
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def rows_above(y: float, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixel rows strictly above image row y (smaller y)."""
    return np.broadcast_to((np.arange(shape[0]) < y)[:, None], shape).copy()


def box_mask(x0: float, x1: float, y0: float, y1: float, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the axis-aligned box [x0, x1) x [y0, y1) in pixels, clipped to the image."""
    out = np.zeros(shape, bool)
    h, w = shape
    xa, xb = int(np.clip(np.floor(min(x0, x1)), 0, w)), int(np.clip(np.ceil(max(x0, x1)), 0, w))
    ya, yb = int(np.clip(np.floor(y0), 0, h)), int(np.clip(np.ceil(y1), 0, h))
    out[ya:yb, xa:xb] = True
    return out


def face_parts(landmarks: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """(H, W) bool masks of the face's parts from (478, 2) landmarks: face (oval hull), eyes, brows,
    lips (each feature hull dilated by FEATURE_DILATE_IOD)."""
    from perse.track.landmarks import landmark_groups

    g, grow = landmark_groups(), FEATURE_DILATE_IOD * eye_corner_distance(landmarks)
    hull = lambda *names: np.any([polygon_mask(landmarks[g[n]], shape) for n in names], axis=0)  # noqa: E731
    return {"face": hull("face_oval"),
            "eyes": dilate(hull("left_eye", "right_eye"), grow),
            "brows": dilate(hull("left_eyebrow", "right_eyebrow"), grow),
            "lips": dilate(hull("lips"), grow)}


def brow_line(landmarks: np.ndarray) -> float:
    """Image row of the top of the eyebrows."""
    from perse.track.landmarks import landmark_groups

    g = landmark_groups()
    return float(landmarks[np.r_[g["left_eyebrow"], g["right_eyebrow"]], 1].min())


def category_regions(landmarks: np.ndarray, silhouette: np.ndarray, covered: np.ndarray | None = None
                     ) -> dict[str, Region]:
    """Regions of the eight attribute categories (hair, beard, eyebrows, glasses, hat, earrings, lips,
    skin) from (478, 2) landmarks and the (H, W) bool head silhouette of the same front render;
    `covered` (H, W) bool: every pixel the render touches at all (default: the silhouette), so that the
    neck's faded end, skin too, is the skin variants' to change."""
    shape = silhouette.shape
    d = eye_corner_distance(landmarks)
    parts = face_parts(landmarks, shape)
    margin = lambda m: dilate(m, MARGIN_IOD * d)  # noqa: E731
    brows_top, chin_y = brow_line(landmarks), float(landmarks[CHIN_BOTTOM, 1])
    eyes_y = float(landmarks[[EYE_OUTER["R"], EYE_OUTER["L"]], 1].mean())
    above_brows = rows_above(brows_top, shape)

    face_below_brows = parts["face"] & ~above_brows
    hair = silhouette & ~face_below_brows & rows_above(chin_y, shape)

    lower = landmarks[np.r_[[SUBNASALE], face_oval_below(landmarks, SUBNASALE)]]
    beard = polygon_mask(np.r_[lower, lower + [0.0, BEARD_DROP_IOD * d]], shape)

    band_top, band_bottom = brows_top, eyes_y + 0.45 * d
    x_lo, x_hi = landmarks[:, 0].min() - 0.25 * d, landmarks[:, 0].max() + 0.25 * d
    glasses = box_mask(x_lo, x_hi, band_top, band_bottom, shape)

    out_x, in_x, down = (f * d for f in EARLOBE_BOX_IOD)
    (rx, ry), (lx, ly) = landmarks[FACE_SIDE["R"]], landmarks[FACE_SIDE["L"]]
    # A hat sits on the skull: its rim runs above the brows in front and down the sides, beside the face,
    # to the line of the ears (FACE_SIDE).
    beside_face = ~dilate(parts["face"], MARGIN_IOD * d) & rows_above(float(min(ry, ly)), shape)
    hat = (above_brows | beside_face) & dilate(silhouette, 0.6 * d)

    side = np.sign(lx - rx) or 1.0  # +1 when the subject's left is on the image's right (a front view)
    earrings = (box_mask(rx - side * out_x, rx + side * in_x, ry, ry + down, shape)
                | box_mask(lx + side * out_x, lx - side * in_x, ly, ly + down, shape))

    skin = parts["face"] & ~parts["eyes"] & ~parts["brows"] & ~parts["lips"]
    neck_and_ears = (silhouette if covered is None else covered | silhouette) & ~rows_above(float(min(ry, ly)), shape)
    regions = {name: Region(m, margin(m)) for name, m in (
        ("hair", hair), ("beard", beard), ("eyebrows", parts["brows"]), ("glasses", glasses),
        ("hat", hat), ("earrings", earrings), ("lips", parts["lips"]))}
    regions["skin"] = Region(skin, margin(parts["face"]) | neck_and_ears | earrings)
    return regions


def face_oval_below(landmarks: np.ndarray, ref_id: int) -> np.ndarray:
    """Ids of the face-oval landmarks lying below landmark `ref_id` in the image."""
    from perse.track.landmarks import landmark_groups

    oval = landmark_groups()["face_oval"]
    return oval[landmarks[oval, 1] > landmarks[ref_id, 1]]
