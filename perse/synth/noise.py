"""Procedural noise for the synthetic textures and hair: smooth, deterministic, periodic where asked."""

from __future__ import annotations

import numpy as np

from perse.geometry.easing import smoothstep


def periodic_value_noise(u: np.ndarray, v: np.ndarray, period: int, seed: int) -> np.ndarray:
    """(N,) smooth noise in [0, 1] on a lattice of `period` cells around u (periodic in [0, period)) and
    unit cells along v: random lattice values, smoothstep-interpolated. Deterministic in `seed`."""
    rows = int(np.floor(v.min())) - 1, int(np.floor(v.max())) + 2
    table = np.random.default_rng(seed).random((rows[1] - rows[0] + 1, period))
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = smoothstep(0.0, 1.0, u - iu), smoothstep(0.0, 1.0, v - iv)
    iv = iv - rows[0]
    a, b = table[iv, iu % period], table[iv, (iu + 1) % period]
    c, d = table[iv + 1, iu % period], table[iv + 1, (iu + 1) % period]
    return (a + (b - a) * fu) * (1 - fv) + (c + (d - c) * fu) * fv
