"""How fast per-frame (video) fitting runs: the figure `perse bench` reports for webcam driving.

Webcam driving needs tracking + retargeting within ~12 ms per 640x480 frame on a 2-core CPU; MediaPipe's
video mode takes ~5 ms of that, so the warm per-frame fit (fixed identity and focal length, started from
the previous frame) must stay well under 5 ms. `measure_tracking_speed` times exactly that call shape;
`perturbed_landmark_frames` makes a deterministic "video" of small head motions from one set of landmarks
(e.g. the astronaut portrait's) when no recording is at hand.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from perse.errors import PerseError
from perse.head.model import HeadModel
from perse.track.fit import FitConfig, HeadFitter
from perse.track.landmarks import NUM_LANDMARKS


def perturbed_landmark_frames(points: np.ndarray, count: int, seed: int = 0, offset: tuple[float, float] = (0.0, 0.0),
                              noise_px: float = 0.3) -> list[np.ndarray]:
    """`count` frames of (478, 2) landmarks: `points` shifted by `offset` and moved by slow, small
    in-plane rotations (<= 0.03 rad), scalings (<= 2 %) and translations (<= 3 px) about their centroid,
    plus fresh Gaussian noise of `noise_px` per frame (MediaPipe's frame-to-frame jitter)."""
    base = np.asarray(points, dtype=np.float64) + np.asarray(offset, dtype=np.float64)
    if base.shape != (NUM_LANDMARKS, 2):
        raise PerseError(f"expected (478, 2) MediaPipe landmarks, got {base.shape}")
    rng = np.random.default_rng(seed)
    centre = base.mean(0)
    frames = []
    for k in range(count):
        angle, scale = 0.03 * math.sin(k / 7.0), 1.0 + 0.02 * math.sin(k / 11.0)
        c, s = math.cos(angle), math.sin(angle)
        moved = (base - centre) @ np.array([[c, -s], [s, c]]).T * scale + centre
        moved += np.array([3.0 * math.sin(k / 5.0), 2.0 * math.cos(k / 9.0)])
        frames.append(moved + rng.normal(scale=noise_px, size=moved.shape))
    return frames


def measure_tracking_speed(model: HeadModel, frames_landmarks: Sequence[np.ndarray], image_size: tuple[int, int],
                           repeats: int = 3, config: FitConfig | None = None) -> dict:
    """Time warm per-frame fits, as webcam driving calls them.

    The first frame gets a cold fit (identity, focal length, pose); every frame is then fitted with
    ``fit(points, image_size, init=previous, fixed_shape=first.params.identity, fixed_focal=first.focal)``,
    the whole sequence `repeats` times. The very first warm fit (which sums the fixed identity into the
    reduced model, once per identity) is left out of the statistics.

    Args:
        model: the head model.
        frames_landmarks: at least 2 frames of (478, 2) MediaPipe landmarks in pixels.
        image_size: (width, height) of the frames.
    Returns:
        dict with median_ms, p90_ms, mean_ms, min_ms, max_ms (warm fits), samples, cold_ms (first frame),
        mean_error_px (warm fits), mean_iterations.
    """
    frames = [np.asarray(f, dtype=np.float64) for f in frames_landmarks]
    if len(frames) < 2:
        raise PerseError(f"need at least 2 frames of landmarks to time per-frame fitting, got {len(frames)}")
    for i, f in enumerate(frames):
        if f.shape != (NUM_LANDMARKS, 2):
            raise PerseError(f"frame {i}: expected (478, 2) MediaPipe landmarks, got {f.shape}")
    if repeats < 1:
        raise PerseError(f"repeats must be at least 1, got {repeats}")
    fitter = HeadFitter(model, config)
    t0 = time.perf_counter()
    first = fitter.fit(frames[0], image_size)
    cold_ms = (time.perf_counter() - t0) * 1000.0
    times, errors, iterations = [], [], []
    for _ in range(repeats):
        prev = first
        for points in frames:
            t0 = time.perf_counter()
            prev = fitter.fit(points, image_size, init=prev, fixed_shape=first.params.identity, fixed_focal=first.focal)
            times.append((time.perf_counter() - t0) * 1000.0)
            errors.append(prev.mean_error_px)
            iterations.append(prev.iterations)
    ms = np.asarray(times[1:])
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "samples": int(ms.size), "cold_ms": cold_ms,
            "mean_error_px": float(np.mean(errors[1:])), "mean_iterations": float(np.mean(iterations[1:]))}
