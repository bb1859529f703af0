"""Back view hair colours: the share of the back of the head whose colour is nowhere in the visible hair.

Colours are compared in CIE Lab (skimage.color.rgb2lab); the distance is CIE76 Delta E (Euclidean in Lab).
"""

from __future__ import annotations

import numpy as np

MAX_DELTA_E = 10.0
MAX_OFF_FRACTION = 0.02
MAX_PALETTE = 6000


def lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1] -> (N, 3) CIE Lab."""
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(rgb, 0, 1).reshape(-1, 1, 3).astype(np.float64)).reshape(-1, 3)


def palette(rgb: np.ndarray, max_colours: int = MAX_PALETTE, seed: int = 0) -> np.ndarray:
    """(K, 3) Lab colours of the visible hair: (N, 3) RGB pixels, a random subsample of at most max_colours."""
    if len(rgb) > max_colours:
        rgb = rgb[np.random.default_rng(seed).choice(len(rgb), max_colours, replace=False)]
    return lab(rgb)


def off_palette_fraction(pixels: np.ndarray, colours: np.ndarray, max_delta_e: float = MAX_DELTA_E) -> float:
    """Fraction of (N, 3) RGB `pixels` whose Lab colour is more than max_delta_e from every colour of the
    (K, 3) Lab palette `colours`."""
    from scipy.spatial import cKDTree

    if len(pixels) == 0:
        return 0.0
    dist, _ = cKDTree(colours).query(lab(pixels), k=1)
    return float((dist > max_delta_e).mean())


def back_hair_mask(alpha: np.ndarray, ear_line_y: float) -> np.ndarray:
    """(H, W) bool hair pixels of a back view: alpha > 0.5 above image row `ear_line_y` (the ear line of the
    front view: at zero pitch, points near the head's vertical axis keep their row when the head turns)."""
    return (alpha > 0.5) & (np.arange(alpha.shape[0])[:, None] < ear_line_y)
