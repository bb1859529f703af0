"""The photo's own locks on the hair curtain (`perse.synth.hair_curtain`).

The curtain's texture runs down the shell's, so its strands continue the scalp's; but where the portrait
sees the curtain (the side hair framing the face), the photo shows its own light and dark locks. Their
brightness is laid over the curtain as a per-vertex shade (`photo_lock_shade`): a multiplier, not a
colour, so hair-colour variants still recolour the texture under it. Past what the photo sees, the
locks fade into the combed strands (`feather_gain`) instead of stopping at a vertical line.
"""

from __future__ import annotations

import numpy as np

from perse.geometry.easing import smoothstep
from perse.synth.hair_curtain import HairCurtain, grid_shape

LOCK_SHADE_RANGE = (0.5, 1.6)          # how much darker / lighter the photo may make a curtain vertex
PHOTO_DEPTH_TOLERANCE_M = 0.003        # a vertex is what the photo shows within this of the front surface
LOCK_FEATHER_COLUMNS = 8.0             # columns (~20 degrees) past what the photo sees over which its locks fade
LOCK_FEATHER_ROWS = 2.5                # sigma, in rows, of their smoothing down the strands


def photo_lock_shade(curtain: HairCurtain, posed: np.ndarray, camera, photo: np.ndarray, hair_mask: np.ndarray,
                     depth: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """(N,) the curtain's shade with the photo's own light and dark locks where the photo sees it.

    A vertex the portrait's camera sees (depth test against `depth`, (H, W) camera-space z of the head
    with the curtain, 0 = background) on the photo's hair (`hair_mask` (H, W) in [0, 1]) has its shade
    scaled by the ratio of the photo's luminance there to the luminance its texture gives it, so the
    side hair shows the portrait's locks instead of streaks copied from the shell. A brightness
    multiplier, not a colour: hair-colour variants still recolour the texture under it. Beyond what the
    photo sees, the gain fades out over LOCK_FEATHER_COLUMNS (`feather_gain`), so a side view shows the
    locks blending into the combed hair, not a vertical line where the photo stops.
    posed: (N, 3) the curtain on the photo's posed head; photo: (H, W, 3) uint8; texture: (S, S, 3) uint8.
    """
    from perse.geometry.sampling import bilinear_sample
    from perse.render.camera import seen_points
    from perse.synth.palette import luminance

    px, visible = seen_points(camera, posed, depth, PHOTO_DEPTH_TOLERANCE_M)
    weight = visible * bilinear_sample(hair_mask, px)
    drawn = luminance(curtain.texel_colors(texture)) * curtain.shade
    seen = luminance(bilinear_sample(photo, px) / 255.0)
    ratio = np.clip(seen / np.maximum(drawn, 1e-3), *LOCK_SHADE_RANGE)
    gain = 1.0 + weight * (ratio - 1.0)
    grid = grid_shape(curtain.num_vertices)
    gain = feather_gain(gain.reshape(grid), visible.reshape(grid)).reshape(-1)
    return np.clip(curtain.shade * gain, 0.05, LOCK_SHADE_RANGE[1])


def feather_gain(gain: np.ndarray, known: np.ndarray, fade_columns: float = LOCK_FEATHER_COLUMNS,
                 rows_sigma: float = LOCK_FEATHER_ROWS) -> np.ndarray:
    """(R, C) brightness gains with the `known` (R, C) bool ones continued into the rest of each row.

    Only runs of 3 or more known vertices in a row are continued (a single one, glimpsed through a gap,
    would spread a blot). An unknown vertex takes the gain of the nearest vertex of such a run in its
    row, faded toward 1 (no change) with a smoothstep over `fade_columns` grid columns and, from a few
    columns out, smoothed down the columns (Gaussian of `rows_sigma` rows): continued row by row, the last
    gains drew horizontal bands across the hair; smoothed, they run down it as strands do. Next to the
    run it stays unsmoothed, so no step remains where the known vertices end. Rows without a run count
    as no change in the smoothing, so an isolated row does not draw a line of its own. Known gains are
    returned unchanged; the unknown ones given are not read."""
    from scipy.ndimage import binary_opening, distance_transform_edt, gaussian_filter1d

    runs = binary_opening(known, structure=np.ones((1, 3), bool))
    if not runs.any():
        return np.where(known, gain, 1.0)
    # Any row weight above the column count keeps the nearest run in the same row when there is one.
    row_weight = 10.0 * gain.shape[1]
    dist, (ri, ci) = distance_transform_edt(~runs, sampling=(row_weight, 1.0), return_indices=True)
    fade = 1.0 - smoothstep(0.0, fade_columns, dist)    # rows without a run: dist is huge, fade 0
    raw = fade * (gain[ri, ci] - 1.0)
    smoothed = gaussian_filter1d(raw, rows_sigma, axis=0, mode="nearest")
    blend = smoothstep(1.0, 4.0, dist)
    return np.where(known, gain, 1.0 + (1.0 - blend) * raw + blend * smoothed)
