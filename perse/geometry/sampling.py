"""Images sampled at sub-pixel positions (numpy)."""

from __future__ import annotations

import numpy as np


def bilinear_sample(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Sample (H, W) or (H, W, C) at (N, 2) pixel coordinates (OpenCV: pixel centres are integers),
    clamped to the border. Returns (N,) or (N, C) float64."""
    h, w = image.shape[:2]
    x = np.clip(uv[:, 0], 0.0, w - 1.0)
    y = np.clip(uv[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    img = image.astype(np.float64)
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
