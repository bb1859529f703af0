"""Attribute visibility and locality: what a variant changes in the image, inside and outside its region.

A variant at weight 1 is rendered against the reference look (same front view). A pixel *changes* by
more than t when its largest absolute RGB channel difference (RGB in [0, 1]) exceeds t.

    visible  at least MIN_INSIDE_PX pixels (at 512 x 512; fewer for small accessories) change by more
             than VISIBLE_CHANGE inside the category's region (`perse.eval.regions`)
    local    at most MAX_OUTSIDE_FRACTION of the pixels outside the region's allowed area change by
             more than LEAK_CHANGE (the whole frame counts, background included)
    solid    for categories that cover an area (AREA_CATEGORIES: hair, hats, beards, lips, skin): at most
             MAX_SCATTERED of the changed inside pixels are *scattered*, removed by a 3 x 3 opening
             (specks, one-pixel lines). It tells a hat from a cloud of hat-coloured flecks, which
             changes as many pixels: drafts whose hat seeds had shrunk to specks measured 57-66 %, solid
             hats 0 %. Thin accessories (frames, hoops, studs) and brows are lines by nature: not judged.
"""

from __future__ import annotations

import numpy as np

from perse.eval.regions import Region

VISIBLE_CHANGE = 0.15
LEAK_CHANGE = 0.06
MIN_INSIDE_PX = 150
MIN_INSIDE_PX_SMALL = {("earrings", "studs"): 30}
MAX_OUTSIDE_FRACTION = 0.005
MAX_SCATTERED = 0.25
AREA_CATEGORIES = ("hair", "hat", "beard", "lips", "skin")
REFERENCE_SIZE = 512


def changed(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) bool: pixels of two (H, W, 3) images in [0, 1] whose largest channel difference > threshold."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).max(axis=-1) > threshold


def min_inside_px(category: str, variant: str) -> int:
    """The visibility target of a variant in pixels at REFERENCE_SIZE^2."""
    return MIN_INSIDE_PX_SMALL.get((category, variant), MIN_INSIDE_PX)


def variant_change(reference: np.ndarray, variant: np.ndarray, region: Region) -> dict:
    """Change of one variant render against the reference-look render, both (H, W, 3) in [0, 1].

    Returns inside_px (pixels changed by > VISIBLE_CHANGE inside the region), inside_px_512 (the same
    scaled to a 512 x 512 image) and outside_fraction (the fraction of pixels outside `region.allowed`
    changed by > LEAK_CHANGE)."""
    h, w = reference.shape[:2]
    inside_mask = changed(reference, variant, VISIBLE_CHANGE) & region.inside
    inside = int(inside_mask.sum())
    outside = ~region.allowed
    leaked = int((changed(reference, variant, LEAK_CHANGE) & outside).sum())
    return {"inside_px": inside,
            "inside_px_512": round(inside * REFERENCE_SIZE ** 2 / (h * w), 1),
            "outside_fraction": leaked / max(int(outside.sum()), 1),
            "scattered_fraction": scattered_fraction(inside_mask)}


def scattered_fraction(mask: np.ndarray) -> float:
    """The share of the set pixels of (H, W) bool `mask` that a 3 x 3 binary opening removes (0: solid
    areas, 1: isolated specks or one-pixel lines; 0 for an empty mask)."""
    from scipy.ndimage import binary_opening

    total = int(mask.sum())
    if not total:
        return 0.0
    kept = int((binary_opening(mask, structure=np.ones((3, 3), bool)) & mask).sum())
    return 1.0 - kept / total


def judge(category: str, variant: str, change: dict) -> dict:
    """`change` (from `variant_change`) with visible / local / solid verdicts against the targets (solid:
    None for categories that are not judged on it)."""
    solid = change["scattered_fraction"] <= MAX_SCATTERED if category in AREA_CATEGORIES else None
    return {**change, "visible": change["inside_px_512"] >= min_inside_px(category, variant),
            "local": change["outside_fraction"] <= MAX_OUTSIDE_FRACTION, "solid": solid}
