"""Numba kernels of the CPU rasterizer: tile binning, forward compositing, backward replay.

Data layout (all float32, C-contiguous):

- ``feat``: (M, FEAT + C) one row per *visible* Gaussian, rows sorted front to back by depth:
  ``[u, v, a, b, c, opacity, sigma_max, radius_x, radius_y, color_0 .. color_{C-1}]`` where (u, v) is the
  centre in pixels (pixel (j, i) has its centre at (j, i)), (a, b, c) the conic and
  ``sigma_max = ln(255 * opacity)`` (beyond it alpha < 1/255: lets the hot loop skip the exp).
- tiles: ``tile_start`` (n_tiles + 1,) offsets into ``tile_ids`` (n_isect,), the rows of ``feat``
  touching each 16x16 tile, front to back.

The compositing rules are gsplat 1.5.3's: alpha = min(0.999, o exp(-sigma)), skip when sigma < 0 or
alpha < 1/255, stop a pixel (without adding the Gaussian) once T * (1 - alpha) <= 1e-4.

Both passes loop Gaussian-major inside a tile and touch only the pixels inside each Gaussian's
bounding box: most Gaussians cover a small part of a tile, so this skips most pixel tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Kernels release the GIL (nogil=True): a render on the studio's main thread then runs alongside the
# webcam tracking thread instead of stalling it.

TILE = 16
FEAT = 9          # per-Gaussian scalars before the color channels
# float32 constants: float64 literals would silently promote the hot loops to double precision.
ALPHA_MAX = np.float32(0.999)
ALPHA_MIN = np.float32(1.0 / 255.0)
T_MIN = np.float32(1e-4)
SIGMA_SLACK = np.float32(1e-3)  # margin on the sigma_max pre-test; the exact alpha test still decides
HALF = np.float32(0.5)
ONE = np.float32(1.0)
ZERO = np.float32(0.0)

# exp(-s) = 2^-n * 2^-f (x = s log2 e = n + f): a degree-6 polynomial for 2^-f on [0, 1) (Chebyshev fit,
# 1.9e-7 relative error in float32 Horner form) times a table of 2^-n. It is inlined, has no branches
# and is ~10% faster than libm's expf in the hot loop; forward and backward both use it, so the
# gradients are those of the function actually rendered. Relative error <= 5e-7 for s <= 6 (all that
# alpha >= 1/255 can need), <= 2e-6 up to 20 (tested).
LOG2E = np.float32(1.4426950408889634)
EXP_POLY = tuple(np.float32(c) for c in (9.9999999865e-01, -6.9314704730e-01, 2.4022435547e-01, -5.5491035284e-02,
                                         9.5800584530e-03, -1.2757162165e-03, 1.0938752369e-04))
POW2_NEG = (2.0 ** -np.arange(32)).astype(np.float32)
EXP_S_MAX = np.float32(20.0)  # exp(-20) = 2e-9, far below any alpha threshold; keeps n < 32

# Safe fast-math: contraction, reciprocal and approximate-function flags only. No 'nnan'/'ninf'
# (the kernels compare values that may legitimately be large), no 'reassoc' (keeps the compositing order).
FASTMATH = {"contract", "arcp", "afn", "nsz"}


@njit(cache=True, inline="always", fastmath=True)
def exp_neg(s):
    """exp(-s) for s >= 0, float32 (inputs above 20 give exp(-20))."""
    x = min(s, EXP_S_MAX) * LOG2E
    n = np.int32(x)
    f = x - np.float32(n)
    p0, p1, p2, p3, p4, p5, p6 = EXP_POLY
    return ((((((p6 * f + p5) * f + p4) * f + p3) * f + p2) * f + p1) * f + p0) * POW2_NEG[n]


@njit(cache=True, nogil=True)
def _tile_rect(u, v, rx, ry, tiles_x, tiles_y):
    """Tile rectangle [tx0, tx1) x [ty0, ty1) of a Gaussian, computed in gsplat's +0.5 coordinates."""
    gx = (u + 0.5) / TILE
    gy = (v + 0.5) / TILE
    trx = rx / TILE
    try_ = ry / TILE
    tx0 = min(max(0, int(math.floor(gx - trx))), tiles_x)
    ty0 = min(max(0, int(math.floor(gy - try_))), tiles_y)
    tx1 = min(max(0, int(math.ceil(gx + trx))), tiles_x)
    ty1 = min(max(0, int(math.ceil(gy + try_))), tiles_y)
    return tx0, tx1, ty0, ty1


@njit(cache=True, nogil=True)
def bin_tiles(feat, tiles_x, tiles_y):
    """Tile lists of depth-sorted Gaussians.

    feat: (M, FEAT + C) rows sorted front to back. Returns tile_start (T + 1,) int64 and tile_ids
    (n_isect,) int32; tile t's Gaussians are tile_ids[tile_start[t]:tile_start[t + 1]], front to back
    (filling in row order keeps each list sorted, so no per-tile sort is needed).
    """
    n_tiles = tiles_x * tiles_y
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    M = feat.shape[0]
    for g in range(M):
        tx0, tx1, ty0, ty1 = _tile_rect(feat[g, 0], feat[g, 1], feat[g, 7], feat[g, 8], tiles_x, tiles_y)
        for ty in range(ty0, ty1):
            for tx in range(tx0, tx1):
                counts[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        counts[t + 1] += counts[t]
    tile_start = counts
    cursor = tile_start[:-1].copy()
    tile_ids = np.empty(tile_start[n_tiles], dtype=np.int32)
    for g in range(M):
        tx0, tx1, ty0, ty1 = _tile_rect(feat[g, 0], feat[g, 1], feat[g, 7], feat[g, 8], tiles_x, tiles_y)
        for ty in range(ty0, ty1):
            for tx in range(tx0, tx1):
                t = ty * tiles_x + tx
                tile_ids[cursor[t]] = g
                cursor[t] += 1
    return tile_start, tile_ids


@njit(cache=True, inline="always")
def _pixel_span(u, r, lo, hi):
    """Pixel indices [p0, p1] within [lo, hi) whose centres lie within r of u (may be empty)."""
    p0 = max(lo, int(math.ceil(u - r)))
    p1 = min(hi - 1, int(math.floor(u + r)))
    return p0, p1


@njit(cache=True, inline="always")
def _row_span(u, dy, ca, cb, cc, smax, lo, hi):
    """Pixel columns [p0, p1] within [lo, hi) of the row at vertical offset dy = v - y where
    sigma(dx) = 0.5 (a dx^2 + c dy^2) + b dx dy <= smax (dx = u - x): the ellipse's chord on that row.

    Solving the quadratic per row instead of scanning the bounding box skips the pixels of the box's
    corners (a quarter of a circle's box, most of a thin ellipse's) before any exp is evaluated.
    """
    disc = np.float32(2.0) * ca * smax - dy * dy * (ca * cc - cb * cb)
    if disc < ZERO:
        return lo, lo - 1
    sq = math.sqrt(disc)
    return _pixel_span(u + cb * dy / ca, sq / ca + np.float32(1e-3), lo, hi)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def rasterize_forward(feat, tile_start, tile_ids, width, height, tiles_x, background,
                      out, T_final, last_idx):
    """Front-to-back compositing of every tile.

    feat: (M, FEAT + C); background: (C,). Writes out (H, W, C) = sum_i c_i a_i T_i + T_final bg,
    T_final (H, W) transmittance after the last Gaussian, last_idx (H, W) int32 index into tile_ids of
    the last Gaussian composited at that pixel (-1 if none).
    """
    C = feat.shape[1] - FEAT
    n_tiles = tile_start.shape[0] - 1
    for t in prange(n_tiles):
        ty = t // tiles_x
        tx = t - ty * tiles_x
        x0 = tx * TILE
        y0 = ty * TILE
        x1 = min(x0 + TILE, width)
        y1 = min(y0 + TILE, height)
        T = np.ones(TILE * TILE, dtype=np.float32)
        acc = np.zeros((TILE * TILE, C), dtype=np.float32)
        last = np.full(TILE * TILE, -1, dtype=np.int32)
        done = np.zeros(TILE * TILE, dtype=np.bool_)
        alive = (x1 - x0) * (y1 - y0)
        # Per-row count of unfinished pixels: rows behind an opaque surface are skipped whole.
        row_alive = np.zeros(TILE, dtype=np.int32)
        row_alive[: y1 - y0] = x1 - x0
        for k in range(tile_start[t], tile_start[t + 1]):
            if alive == 0:
                break
            g = tile_ids[k]
            u = feat[g, 0]
            v = feat[g, 1]
            ca = feat[g, 2]
            cb = feat[g, 3]
            cc = feat[g, 4]
            op = feat[g, 5]
            smax = feat[g, 6] + SIGMA_SLACK
            py0, py1 = _pixel_span(v, feat[g, 8], y0, y1)
            for py in range(py0, py1 + 1):
                if row_alive[py - y0] == 0:
                    continue
                dy = v - np.float32(py)
                px0, px1 = _row_span(u, dy, ca, cb, cc, smax, x0, x1)
                row = (py - y0) * TILE - x0
                for px in range(px0, px1 + 1):
                    p = row + px
                    if done[p]:
                        continue
                    dx = u - np.float32(px)
                    sigma = HALF * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < ZERO or sigma > smax:
                        continue
                    alpha = min(ALPHA_MAX, op * exp_neg(sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_T = T[p] * (ONE - alpha)
                    if next_T <= T_MIN:
                        done[p] = True
                        alive -= 1
                        row_alive[py - y0] -= 1
                        continue
                    w = alpha * T[p]
                    for ch in range(C):
                        acc[p, ch] += feat[g, FEAT + ch] * w
                    T[p] = next_T
                    last[p] = k
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * TILE + (px - x0)
                for ch in range(C):
                    out[py, px, ch] = acc[p, ch] + T[p] * background[ch]
                T_final[py, px] = T[p]
                last_idx[py, px] = last[p]


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def rasterize_backward(feat, tile_start, tile_ids, width, height, tiles_x, background,
                       T_final, last_idx, grad_out, grad_alpha, grad_isect):
    """Back-to-front replay (3DGS backward) of every tile.

    grad_out: (H, W, C) dL/d out; grad_alpha: (H, W) dL/d (1 - T_final). Writes grad_isect
    (n_isect, 6 + C): per tile-list entry, dL/d [u, v, a, b, c, opacity, color_0 ..]; entries of the
    same Gaussian in different tiles are summed by `reduce_isect_grads` (no write races across tiles).
    """
    C = feat.shape[1] - FEAT
    n_tiles = tile_start.shape[0] - 1
    for t in prange(n_tiles):
        start = tile_start[t]
        end = tile_start[t + 1]
        if end == start:
            continue
        ty = t // tiles_x
        tx = t - ty * tiles_x
        x0 = tx * TILE
        y0 = ty * TILE
        x1 = min(x0 + TILE, width)
        y1 = min(y0 + TILE, height)
        T = np.ones(TILE * TILE, dtype=np.float32)        # transmittance in front of the current Gaussian
        last = np.full(TILE * TILE, -1, dtype=np.int32)
        buf = np.zeros((TILE * TILE, C), dtype=np.float32)  # sum over Gaussians behind of c_j w_j
        vC = np.zeros((TILE * TILE, C), dtype=np.float32)
        v_alpha_T = np.zeros(TILE * TILE, dtype=np.float32)  # T_final (dL/dA - bg . dL/dC)
        max_last = -1
        row_last = np.full(TILE, -1, dtype=np.int32)  # per row: the furthest Gaussian any pixel used
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * TILE + (px - x0)
                T[p] = T_final[py, px]
                last[p] = last_idx[py, px]
                row_last[py - y0] = max(row_last[py - y0], last[p])
                max_last = max(max_last, last[p])
                bgdot = ZERO
                for ch in range(C):
                    vC[p, ch] = grad_out[py, px, ch]
                    bgdot += background[ch] * grad_out[py, px, ch]
                v_alpha_T[p] = T_final[py, px] * (grad_alpha[py, px] - bgdot)
        gacc = np.zeros(6 + C, dtype=np.float32)
        for k in range(end - 1, start - 1, -1):
            for j in range(6 + C):
                gacc[j] = 0.0
            if k > max_last:
                for j in range(6 + C):
                    grad_isect[k, j] = 0.0
                continue
            g = tile_ids[k]
            u = feat[g, 0]
            v = feat[g, 1]
            ca = feat[g, 2]
            cb = feat[g, 3]
            cc = feat[g, 4]
            op = feat[g, 5]
            smax = feat[g, 6] + SIGMA_SLACK
            py0, py1 = _pixel_span(v, feat[g, 8], y0, y1)
            for py in range(py0, py1 + 1):
                if k > row_last[py - y0]:
                    continue
                dy = v - np.float32(py)
                px0, px1 = _row_span(u, dy, ca, cb, cc, smax, x0, x1)
                row = (py - y0) * TILE - x0
                for px in range(px0, px1 + 1):
                    p = row + px
                    if k > last[p]:
                        continue
                    dx = u - np.float32(px)
                    sigma = HALF * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < ZERO or sigma > smax:
                        continue
                    G = exp_neg(sigma)
                    raw = op * G
                    alpha = min(ALPHA_MAX, raw)
                    if alpha < ALPHA_MIN:
                        continue
                    inv_one_minus = ONE / (ONE - alpha)
                    Ti = T[p] * inv_one_minus
                    w = alpha * Ti
                    v_alpha = v_alpha_T[p] * inv_one_minus
                    for ch in range(C):
                        c = feat[g, FEAT + ch]
                        gacc[6 + ch] += w * vC[p, ch]
                        v_alpha += (c * Ti - buf[p, ch] * inv_one_minus) * vC[p, ch]
                        buf[p, ch] += c * w
                    T[p] = Ti
                    if raw <= ALPHA_MAX:  # alpha was not clamped: it depends on opacity and sigma
                        v_sigma = -raw * v_alpha
                        gacc[0] += (ca * dx + cb * dy) * v_sigma
                        gacc[1] += (cb * dx + cc * dy) * v_sigma
                        gacc[2] += HALF * dx * dx * v_sigma
                        gacc[3] += dx * dy * v_sigma
                        gacc[4] += HALF * dy * dy * v_sigma
                        gacc[5] += G * v_alpha
            for j in range(6 + C):
                grad_isect[k, j] = gacc[j]


@njit(cache=True, nogil=True)
def reduce_isect_grads(tile_ids, grad_isect, M):
    """Sum per-entry gradients (n_isect, D) into per-Gaussian rows (M, D)."""
    D = grad_isect.shape[1]
    out = np.zeros((M, D), dtype=np.float32)
    for k in range(tile_ids.shape[0]):
        g = tile_ids[k]
        for j in range(D):
            out[g, j] += grad_isect[k, j]
    return out
