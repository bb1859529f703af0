"""Temporal filtering of tracked parameters: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012).

A first-order low-pass whose cutoff rises with the signal's speed: at rest the cutoff is `min_cutoff`
(heavy smoothing kills jitter), in motion it grows by `beta * |speed|` (little lag). Vectorised: every
component of a parameter vector has its own state, and `beta` may differ per component (expression
coefficients and radians move at different rates).
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """Exponential-smoothing weight of a first-order low-pass with `cutoff` Hz sampled every `dt` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over (D,) vectors sampled at irregular times.

    Args:
        min_cutoff: Hz, the cutoff at rest (lower = smoother, more lag on slow motion).
        beta: speed coefficient, scalar or (D,) (higher = less lag in fast motion).
        d_cutoff: Hz, cutoff of the low-pass applied to the speed estimate.
    """

    def __init__(self, min_cutoff: float = 0.5, beta: float | np.ndarray = 1.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0:
            raise ValueError("One-Euro cutoffs must be positive")
        self.min_cutoff = float(min_cutoff)
        self.beta = np.asarray(beta, dtype=np.float64)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample x (D,) taken at time t (seconds, increasing); returns the filtered (D,)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:  # a repeated or out-of-order timestamp: nothing new to smooth over
            return self._x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(dt, self.d_cutoff) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + smoothing_factor(dt, cutoff) * (x - self._x)
        self._t = t
        return self._x.copy()
