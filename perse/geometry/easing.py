"""Smooth ramps for masks, fades and keyframe easing."""

from __future__ import annotations

import numpy as np


def smoothstep(edge0: float, edge1: float, x: np.ndarray | float) -> np.ndarray:
    """Hermite step from 0 at `edge0` to 1 at `edge1`, clamped outside (edge0 > edge1 gives a falling step).

    x: any shape (or a float); returns the same shape (a numpy scalar for a float)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
