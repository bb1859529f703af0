"""Procedural albedo textures painted in a head's UV space.

The painter never works in 2D texture space directly: every paint layer is a smooth function of the
texels' canonical 3D position, normal and region weights (`perse.synth.uv_atlas.TexelAtlas`), so two
texels on either side of a UV seam, which map to the same 3D point, get the same colour: the textures
are seam-free by construction.

Layers (bottom to top): skin with low-frequency tone variation, warmer cheeks/nose/ears and fine pore
noise; lips; eyes (sclera, iris with radial fibres, pupil; lash line on the upper lid); eyebrows made
of hair strokes; beard (stubble dots, goatee, full); scalp hair with strand-like stripes that flow
from the crown and a soft, irregular hairline. Everything is deterministic in the seed.

Given a person's texture, the painter paints the look over it instead (`perse.synth.paint_portrait`).
"""

from __future__ import annotations

import numpy as np

from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.landmarks import (BROW_LOWER, BROW_UPPER, CHEEKBONE, CHIN_BOTTOM, EYE_LOWER_LID, EYE_UPPER_LID, FACE_SIDE,
                             FOREHEAD_TOP, LIPS_INNER, LIPS_OUTER, LOWER_LIP_BOTTOM, MOUTH_CORNER, NOSE_TIP,
                             SUBNASALE)
from perse.synth.anatomy import HeadAnatomy, eye_coordinates, head_anatomy
from perse.synth.paint_portrait import BaseTextureFields
from perse.synth.palette import (BROW_COLORS, HAIR_COLORS, LIP_COLORS, SCLERA_COLOR, SKIN_TONES, TEXTURE_CATEGORIES,
                                 eye_albedo, mix, texture_variants)
from perse.synth.uv_atlas import build_atlas, check_base_texture, resample_coverage, resample_texture

# Procedural only: brow width per variant, the beard's colour, the iris colours one is drawn from (per seed).
BROW_WIDTH_SCALE = {"natural": 1.15, "thick": 1.7, "thin": 0.65, "light": 1.15}
BEARD_COLOR = (0.16, 0.10, 0.06)
IRIS_COLORS = [(0.33, 0.20, 0.10), (0.25, 0.42, 0.60), (0.30, 0.42, 0.22), (0.45, 0.32, 0.16)]


# --------------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------------
def sine_noise(points: np.ndarray, rng: np.random.Generator, wavelength: float, waves: int = 24) -> np.ndarray:
    """Smooth, roughly unit-variance 3D noise: a sum of plane waves with random directions and phases.

    points: (N, 3) metres. wavelength: typical feature size in metres. Returns (N,).
    """
    dirs = rng.normal(size=(waves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freq = (2 * np.pi / wavelength) * rng.uniform(0.6, 1.5, size=waves)
    phase = rng.uniform(0, 2 * np.pi, size=waves)
    out = np.sin(points @ (dirs * freq[:, None]).T + phase).sum(axis=1)
    return (out / np.sqrt(waves / 2)).astype(np.float32)



def goatee_shape(xy: np.ndarray, mouth_y: float, mouth_hw: float, lower_lip_y: float, chin_y: float) -> np.ndarray:
    """(N,) in [0, 1]: a circle beard on the face's front, from template positions xy (N, 2) in metres.

    A moustache over the upper lip that narrows toward the mouth corners, a rounded tuft from under the
    lower lip to the chin, and thin bars past the mouth corners joining the two. The caller limits it to
    the full beard's area (below the nose, above the neck, no lips). mouth_y, lower_lip_y, chin_y: rows
    of the mouth corners, the lower lip's bottom and the chin's bottom; mouth_hw: half the mouth width."""
    x, y = np.abs(xy[:, 0]), xy[:, 1]
    moustache = smoothstep(mouth_hw + 0.004, mouth_hw - 0.001, x) * smoothstep(mouth_y - 0.001, mouth_y + 0.003, y)
    top, bottom = lower_lip_y - 0.002, chin_y - 0.004
    centre, half_h = 0.5 * (top + bottom), 0.5 * (top - bottom)
    radius = np.hypot(x / (0.85 * mouth_hw + 0.004), (y - centre) / max(half_h, 1e-6))
    tuft = smoothstep(1.0, 0.85, radius)
    bars = smoothstep(0.004, 0.002, np.abs(x - mouth_hw - 0.002)) * smoothstep(centre, centre + 0.004, y) \
        * smoothstep(mouth_y + 0.004, mouth_y, y)
    return np.clip(np.maximum(np.maximum(moustache, tuft), bars), 0.0, 1.0)


def hash01(cells: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic uniform [0, 1) value per integer cell. cells: (N, D) int -> (N,)."""
    primes = np.array([73856093, 19349663, 83492791, 2654435761], dtype=np.uint64)
    h = np.full(cells.shape[0], (seed * 2246822519 + 374761393) & 0xFFFFFFFF, dtype=np.uint64)
    for d in range(cells.shape[1]):
        h ^= (cells[:, d].astype(np.int64).astype(np.uint64) * primes[d % 4]) & np.uint64(0xFFFFFFFF)
        h = (h * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
        h ^= h >> np.uint64(15)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


def polyline_distance(points: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to a polyline and the arc-length fraction of the closest point.

    points: (N, D); line: (K, D). Returns dist (N,), s (N,) in [0, 1] along the polyline.
    """
    a, b = line[:-1], line[1:]                                   # (K-1, D)
    ab = b - a
    seg_len = np.linalg.norm(ab, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    rel = points[:, None, :] - a[None]                           # (N, K-1, D)
    t = np.clip((rel * ab[None]).sum(-1) / np.maximum(seg_len ** 2, 1e-12)[None], 0.0, 1.0)
    d = np.linalg.norm(rel - t[..., None] * ab[None], axis=-1)  # (N, K-1)
    k = d.argmin(axis=1)
    rows = np.arange(points.shape[0])
    s = (cum[k] + t[rows, k] * seg_len[k]) / max(cum[-1], 1e-12)
    return d[rows, k], s


def polygon_signed_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """2D signed distance to a closed polygon, negative inside. points: (N, 2); polygon: (K, 2)."""
    closed = np.concatenate([polygon, polygon[:1]], axis=0)
    dist, _ = polyline_distance(points, closed)
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = closed[None, :-1, 0], closed[None, :-1, 1]
    x1, y1 = closed[None, 1:, 0], closed[None, 1:, 1]
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / np.where(y1 == y0, 1e-12, y1 - y0) + x0)
    inside = (crosses.sum(axis=1) % 2) == 1
    return np.where(inside, -dist, dist)


# --------------------------------------------------------------------------------------------------
# The painter
# --------------------------------------------------------------------------------------------------
class TexturePainter:
    """Paints albedo textures of one head for any look, deterministically from `seed`.

    Masks and noise fields that do not depend on the look are computed once here; `paint(look)` only
    mixes colours. Usage::

        painter = TexturePainter(anatomy, size=512, seed=0)
        tex = painter.paint({"hair": "blonde", "beard": "full"})   # (512, 512, 3) uint8
    """

    def __init__(self, anatomy: HeadAnatomy, size: int = 512, seed: int = 0,
                 base_texture: np.ndarray | None = None, hair_coverage: np.ndarray | None = None):
        if size not in (256, 512, 1024, 2048):
            raise PerseError(f"texture size {size} is not supported; use 512 or 1024")
        base_img = None if base_texture is None else resample_texture(check_base_texture(base_texture), size)
        self.anatomy = anatomy
        self.size = size
        self.seed = int(seed)
        self.atlas = build_atlas(anatomy, size)
        self._cache: dict[tuple, np.ndarray] = {}
        rng = np.random.default_rng([self.seed, 7])
        # Metres per texel on the skin (for patterns that must stay above the texture's Nyquist limit).
        v, f = anatomy.vertices, anatomy.faces
        area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1).sum()
        self.texel = float(np.sqrt(area / self.atlas.num_texels))
        a, P, N = anatomy, self.atlas.position.astype(np.float64), self.atlas.normal.astype(np.float64)
        W = self.atlas.region_weights
        reg = {name: W[:, i] for i, name in enumerate(a.region_names)}
        self.reg = reg

        # Skin: low-frequency tone variation, fine pores, warm areas.
        self.skin_low = sine_noise(P, rng, wavelength=0.05)
        self.skin_mid = sine_noise(P, rng, wavelength=0.012)
        self.skin_fine = sine_noise(P, rng, wavelength=0.0015, waves=32)
        cheeks = a.lmk(CHEEKBONE["R"], CHEEKBONE["L"])
        d_cheek = np.min(np.linalg.norm(P[:, None] - cheeks[None], axis=-1), axis=1)
        d_nose = np.linalg.norm(P - a.landmarks[NOSE_TIP], axis=1)
        self.warm = np.clip(0.55 * np.exp(-(d_cheek / 0.022) ** 2) + 0.45 * np.exp(-(d_nose / 0.012) ** 2)
                            + 0.5 * reg["ears"] + 0.25 * reg["eyelids"], 0.0, 1.0)
        self.neck = np.clip(reg["neck"], 0.0, 1.0)

        # Lips: a soft polygon through the outer-lip landmarks, on the front of the face only.
        lips_outer = a.lmk(*LIPS_OUTER)
        sd = polygon_signed_distance(P[:, :2], lips_outer[:, :2])
        front = smoothstep(lips_outer[:, 2].min() - 0.015, lips_outer[:, 2].min() - 0.005, P[:, 2])
        self.lips = smoothstep(0.0012, -0.0008, sd) * front * (1.0 - reg["eyeballs"])
        inner = a.lmk(*LIPS_INNER)
        d_inner, _ = polyline_distance(P[:, :2], np.concatenate([inner, inner[:1]])[:, :2])
        # Mouth cavity: behind the inner lip line (seen when the jaw opens); dark, darker with depth.
        # The cavity lies behind the inner lip contour, whose depth is taken as a function of |x|.
        order = np.argsort(np.abs(inner[:, 0]))
        z_inner = np.interp(np.abs(P[:, 0]), np.abs(inner[order, 0]), inner[order, 2])
        depth = z_inner - P[:, 2]
        sd_out = polygon_signed_distance(P[:, :2], lips_outer[:, :2])
        self.cavity = (smoothstep(0.004, 0.0, sd_out) * smoothstep(0.0015, 0.004, depth)
                       * np.clip(reg["lips"] + reg["beard"] + reg["face"], 0, 1))
        self.cavity_depth = np.clip(depth, 0.0, 0.05)
        self.lips = self.lips * (1.0 - self.cavity)
        self.lip_inner_shade = self.lips * np.exp(-(d_inner / 0.0025) ** 2)
        self.lip_lines = sine_noise(P * np.array([6.0, 0.4, 1.0]), rng, wavelength=0.01)

        # Eyes: sclera / iris / pupil by the angle from each eyeball's gaze axis (+z).
        self.iris_color = np.array(IRIS_COLORS[int(rng.integers(len(IRIS_COLORS)))])
        self._paint_eyes_fields(P, rng)

        # Lash line: distance to the upper-lid landmark curves (3D), a thinner one on the lower lids.
        d_up = np.minimum(polyline_distance(P, a.lmk(*EYE_UPPER_LID["R"]))[0],
                          polyline_distance(P, a.lmk(*EYE_UPPER_LID["L"]))[0])
        d_lo = np.minimum(polyline_distance(P, a.lmk(*EYE_LOWER_LID["R"]))[0],
                          polyline_distance(P, a.lmk(*EYE_LOWER_LID["L"]))[0])
        lid_skin = np.clip(1.0 - reg["eyeballs"], 0.0, 1.0)
        self.lash = np.clip(np.exp(-(d_up / 0.0011) ** 2) + 0.45 * np.exp(-(d_lo / 0.0007) ** 2), 0, 1) * lid_skin
        self.lid_shadow = np.exp(-(d_up / 0.004) ** 2) * lid_skin

        # Brows: coordinates along / across each brow's centre curve.
        self._brow_fields(P, rng)
        # Hair and beard.
        self._hair_fields(P, N, rng)
        self._beard_fields(P, rng)
        # A person's texture to paint over (after every procedural field, so the procedural path and
        # its random stream are untouched by it).
        self.base_texture: np.ndarray | None = base_img
        coverage = None
        if base_img is not None and hair_coverage is not None:
            coverage = resample_coverage(hair_coverage, size).ravel()[self.atlas.index]
        self.base: BaseTextureFields | None = None if base_img is None else BaseTextureFields.build(
            self, base_img, coverage)

    # -- field builders ----------------------------------------------------------------------------
    def _paint_eyes_fields(self, P: np.ndarray, rng: np.random.Generator) -> None:
        eye_w = self.reg["eyeballs"]
        self.eye_theta, self.eye_azimuth, self.iris_angle = eye_coordinates(self.anatomy, P)
        self.eye_w = eye_w
        self.iris = smoothstep(self.iris_angle * 1.03, self.iris_angle * 0.93, self.eye_theta) * eye_w
        self.pupil = smoothstep(self.iris_angle * 0.42, self.iris_angle * 0.36, self.eye_theta) * eye_w

    def _brow_fields(self, P: np.ndarray, rng: np.random.Generator) -> None:
        a = self.anatomy
        self.brow_s = np.zeros(P.shape[0])
        self.brow_t = np.full(P.shape[0], 1.0)     # signed offset across the brow / its half width
        self.brow_half = np.full(P.shape[0], 1e-3)
        best = np.full(P.shape[0], np.inf)
        for upper_ids, lower_ids in ((BROW_UPPER["R"], BROW_LOWER["R"]), (BROW_UPPER["L"], BROW_LOWER["L"])):
            up, lo = a.lmk(*upper_ids), a.lmk(*lower_ids)
            centre = 0.5 * (up + lo)
            # Extend the curve a little beyond both ends so the brow tapers naturally.
            line = np.concatenate([centre[:1] + 0.25 * (centre[:1] - centre[1:2]), centre,
                                   centre[-1:] + 0.15 * (centre[-1:] - centre[-2:-1])])
            d, s = polyline_distance(P[:, :2], line[:, :2])
            half = 0.5 * np.linalg.norm(up - lo, axis=1).mean()
            z_ok = P[:, 2] > centre[:, 2].min() - 0.02
            closer = (d < best) & z_ok
            # Sign: + above the curve.
            y_line = np.interp(s, np.linspace(0, 1, line.shape[0]), line[:, 1])
            best = np.where(closer, d, best)
            self.brow_s = np.where(closer, s, self.brow_s)
            self.brow_t = np.where(closer, np.sign(P[:, 1] - y_line) * d / half, self.brow_t)
            self.brow_half = np.where(closer, half, self.brow_half)
        # Hair strokes: stripes slanted along the brow (outward and slightly up), jittered.
        period = max(2.5 * self.texel, 0.0008)
        jitter = sine_noise(P, rng, wavelength=0.004)
        q = (self.brow_s * 0.06 * 0.25 - self.brow_t * self.brow_half * 0.9)  # metres across strokes
        stripes = np.sin(2 * np.pi * q / period + 2.0 * jitter)
        dropout = hash01(np.floor(np.stack([q / period, self.brow_s * 12], 1)).astype(np.int64), self.seed + 11)
        self.brow_strokes = np.clip(0.5 + 0.5 * stripes, 0, 1) * (0.5 + 0.5 * (dropout > 0.3))
        self.brow_ok = (1.0 - self.reg["eyeballs"]) * (1.0 - self.reg["scalp"]) * (1.0 - self.reg["ears"])

    def brow_mask(self, variant: str) -> np.ndarray:
        """(N,) eyebrow coverage for a variant: thickness tapers from the inner end to the tail."""
        scale = BROW_WIDTH_SCALE[variant]
        s = self.brow_s
        # Profile along the brow: s=0 at the outer tail, s=1 at the inner head (curve order outer->inner).
        profile = (0.55 + 0.45 * smoothstep(0.0, 0.6, s)) * scale
        profile = profile * smoothstep(0.0, 0.12, s) * smoothstep(1.0, 0.9, s)
        body = smoothstep(1.0, 0.5, np.abs(self.brow_t) / np.maximum(profile, 1e-3))
        # Solid in the middle, broken into strokes toward the edges.
        cover = smoothstep(0.0, 0.3, body - 0.55 * (1.0 - self.brow_strokes))
        return cover * self.brow_ok

    def brow_zone(self) -> np.ndarray:
        """(N,) soft area around both eyebrows, wider than the thickest variant (a person's brows)."""
        s = self.brow_s
        along = smoothstep(0.0, 0.08, s) * smoothstep(1.0, 0.94, s)
        return smoothstep(2.6, 1.8, np.abs(self.brow_t)) * along * self.brow_ok

    def _hair_fields(self, P: np.ndarray, N: np.ndarray, rng: np.random.Generator) -> None:
        a = self.anatomy
        c = a.head_center
        rel = P - c
        azim = np.degrees(np.arctan2(rel[:, 0], rel[:, 2]))        # 0 = front, +-180 = back
        y_front = a.landmarks[FOREHEAD_TOP][1]
        ears = a.vertices[a.vertex_mask(["ears"])]
        ear_top = ears[:, 1].max() if ears.size else y_front - 0.05
        ear_bottom = ears[:, 1].min() if ears.size else y_front - 0.1
        eye_y = a.eye_centers[:, 1].mean()
        # Hairline height as a function of azimuth (|deg|): forehead, temples, sideburns, over the
        # ears, nape. Linear interpolation of a small table, then a jagged noise of a few millimetres.
        table_deg = np.array([0, 25, 45, 62, 72, 80, 95, 120, 150, 180])
        table_y = np.array([y_front + 0.004, y_front - 0.001, y_front - 0.006, y_front - 0.018,
                            0.5 * (eye_y + ear_top), ear_top + 0.004, ear_top + 0.008,
                            0.5 * (ear_top + ear_bottom), ear_bottom - 0.012, ear_bottom - 0.02])
        y_line = np.interp(np.abs(azim), table_deg, table_y)
        y_line = y_line + 0.0015 * sine_noise(P, rng, wavelength=0.006)
        allowed = np.clip(self.reg["scalp"] + self.reg["back_of_head"] + self.reg["forehead"], 0, 1)
        self.hair_allowed = allowed
        # Strands flow from the crown: stripes across the flow are a function of the arc length around
        # the crown axis, made wavy by low-frequency noise; clumps are noise stretched along the flow.
        crown = c + np.array([0.0, 0.9, -0.35]) / np.linalg.norm([0.0, 0.9, -0.35]) * 0.09
        axis = (crown - c) / np.linalg.norm(crown - c)
        e1 = np.cross(axis, [1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(axis, e1)
        rc = P - crown
        across = np.arctan2(rc @ e2, rc @ e1) * 0.08          # metres around the crown (at 8 cm)
        along = np.linalg.norm(rc, axis=1)
        period = max(3.0 * self.texel, 0.0015)
        wave = sine_noise(P, rng, wavelength=0.015)
        s1 = np.sin(2 * np.pi * across / period + 2.5 * wave)
        s2 = np.sin(2 * np.pi * across / (0.57 * period) + 4.0 * sine_noise(P, rng, wavelength=0.01))
        flow = np.stack([across / (4 * period), along / 0.02, np.zeros_like(along)], 1)
        clump = sine_noise(flow, rng, wavelength=1.0)
        self.hair_strands = np.clip(0.5 + 0.22 * s1 + 0.12 * s2 + 0.18 * clump, 0, 1)
        # Density rises over ~8 mm above the hairline: near it, only the brighter strands remain.
        density = smoothstep(y_line - 0.001, y_line + 0.008, P[:, 1])
        self.hair_density = density * allowed   # smooth hairline (no strands): where a base's hair is
        self.hair_cover = smoothstep(0.0, 0.25, density - 0.5 * (1.0 - self.hair_strands)) * allowed
        self.hair = self.hair_cover

    def _beard_fields(self, P: np.ndarray, rng: np.random.Generator) -> None:
        a = self.anatomy
        mouth_l, mouth_r = a.landmarks[MOUTH_CORNER["L"]], a.landmarks[MOUTH_CORNER["R"]]
        subnasal = a.landmarks[SUBNASALE]
        chin = a.landmarks[CHIN_BOTTOM]
        side = a.landmarks[FACE_SIDE["L"]]
        mouth_y = 0.5 * (mouth_l[1] + mouth_r[1])
        mouth_hw = 0.5 * abs(mouth_l[0] - mouth_r[0])
        ax = np.abs(P[:, 0])
        jag = 0.0015 * sine_noise(P, rng, wavelength=0.006)
        # Upper edge of the beard: along the moustache under the nose, down to the mouth corner, then up
        # the cheek to the height of the nose's base at the jaw's side (a full beard without sideburns,
        # which would run into the hair).
        y_top = np.interp(ax, [0.0, mouth_hw + 0.004, mouth_hw + 0.016, abs(side[0]) - 0.012, abs(side[0])],
                          [subnasal[1] - 0.003, subnasal[1] - 0.006, mouth_y + 0.006, subnasal[1] - 0.004,
                           subnasal[1] - 0.002])
        below_top = smoothstep(y_top + 0.002, y_top - 0.003, P[:, 1] + jag)
        # Lower edge: just under the jaw, fading out on the neck; only the front half of the head.
        above_neck = smoothstep(chin[1] - 0.030, chin[1] - 0.015, P[:, 1] + jag)
        front = smoothstep(side[2] - 0.03, side[2] - 0.01, P[:, 2])
        skin_ok = np.clip(self.reg["beard"] + self.reg["face"] + self.reg["neck"], 0, 1)
        no_lips = 1.0 - smoothstep(0.0, 0.5, self.lips)
        self.beard_full = below_top * above_neck * front * skin_ok * no_lips
        self.beard_goatee = self.beard_full * goatee_shape(P[:, :2] + jag[:, None], mouth_y, mouth_hw,
                                                           a.landmarks[LOWER_LIP_BOTTOM][1], chin[1])
        cells = np.floor(P / max(1.5 * self.texel, 0.0009)).astype(np.int64)
        self.stubble_dots = (hash01(cells, self.seed + 3) > 0.55).astype(np.float64)
        period = max(3.0 * self.texel, 0.0012)
        self.beard_strands = np.clip(0.55 + 0.45 * np.sin(P[:, 0] * 2 * np.pi / period
                                                          + 3.0 * sine_noise(P, rng, wavelength=0.006)), 0, 1)
        # Beard density thins toward its edges (strand-broken edge like the hairline).
        self.beard_edge = np.clip(below_top * above_neck, 0, 1)

    # -- painting ----------------------------------------------------------------------------------
    def paint_flat(self, look: dict[str, str]) -> np.ndarray:
        """(N, 3) float colours of the covered texels for `look` (missing categories: reference).

        With a base texture the look is painted over it (`BaseTextureFields.paint`), else procedurally.
        """
        hair_v, beard_v, brow_v, lips_v, skin_v = texture_variants(look)
        if self.base is not None:
            return self.base.paint(hair_v, beard_v, brow_v, lips_v, skin_v)

        skin = np.array(SKIN_TONES[skin_v])
        col = np.broadcast_to(skin, (self.atlas.num_texels, 3)).copy()
        col *= (1.0 + 0.045 * self.skin_low + 0.02 * self.skin_mid + 0.025 * self.skin_fine)[:, None]
        warm_tint = np.array([1.04, 0.86, 0.84])
        col = col * (1.0 + self.warm[:, None] * 0.55 * (warm_tint - 1.0))
        col = col * (1.0 - 0.06 * self.neck[:, None])
        col = col * (1.0 - 0.12 * self.lid_shadow[:, None])

        # Lips.
        lip = LIP_COLORS[lips_v]
        lip_col = skin * np.array([0.88, 0.60, 0.60]) if lip is None else np.array(lip)
        lip_col = lip_col[None] * (1.0 + 0.06 * self.lip_lines[:, None]) * (1 - 0.35 * self.lip_inner_shade[:, None])
        col = mix(col, lip_col, self.lips)

        # Mouth cavity.
        cavity_col = np.array([0.42, 0.14, 0.14])[None] * np.exp(-self.cavity_depth / 0.012)[:, None]
        col = mix(col, cavity_col, self.cavity)

        # Beard under the hair layers.
        col = self.apply_beard(col, beard_v)

        # Eyebrows.
        col = self.apply_brows(col, np.array(BROW_COLORS[brow_v]), brow_v)

        # Scalp hair.
        hair = np.array(HAIR_COLORS[hair_v])
        hair_col = hair[None] * (0.45 + 1.1 * self.hair_strands[:, None])
        col = mix(col, hair_col, self.hair_cover)

        # Eyes.
        col = mix(col, eye_albedo(self.eye_theta, self.eye_azimuth, self.iris_angle, SCLERA_COLOR, self.iris_color),
                  self.eye_w)
        # Lash line on the lids.
        col = mix(col, np.array([0.06, 0.045, 0.04]), 0.9 * self.lash)
        return np.clip(col, 0.0, 1.0)

    def apply_beard(self, col: np.ndarray, beard_v: str) -> np.ndarray:
        """Paint beard variant `beard_v` over colours col (N, 3): stubble darkens and dots the skin,
        goatee / full lay strands over it."""
        if beard_v == "none":
            return col
        beard = np.array(BEARD_COLOR)
        if beard_v == "stubble":
            shadow = self.beard_full * 0.35
            col = mix(col, col * np.array([0.72, 0.72, 0.76]), shadow)
            return mix(col, beard, self.beard_full * self.stubble_dots * 0.7)
        m = self.beard_full if beard_v == "full" else self.beard_goatee
        cover = smoothstep(0.0, 0.3, m - 0.5 * (1.0 - self.beard_strands))
        strands = beard[None] * (0.6 + 0.8 * self.beard_strands[:, None])
        return mix(col, strands, cover)

    def apply_brows(self, col: np.ndarray, color: np.ndarray, brow_v: str) -> np.ndarray:
        """Paint stroked eyebrows of shape `brow_v` and colour `color` (3,) over col (N, 3)."""
        return mix(col, color[None] * (0.8 + 0.4 * self.brow_strokes[:, None]), 0.92 * self.brow_mask(brow_v))

    def paint(self, look: dict[str, str]) -> np.ndarray:
        """(S, S, 3) uint8 albedo texture for `look` (cached per texture-relevant variants).

        Gutter texels (outside every UV island) copy their nearest covered texel, also over a base
        texture: recoloured islands must not bleed the base's original colours at their borders.
        """
        key = tuple(look.get(c) for c in TEXTURE_CATEGORIES)
        if key not in self._cache:
            flat = self.paint_flat(look)
            S = self.size
            img = np.zeros((S * S, 3), dtype=np.float64)
            img[self.atlas.index] = flat
            img = img[self.atlas.fill_from]  # gutter texels copy their nearest covered texel
            self._cache[key] = np.round(img.reshape(S, S, 3) * 255.0).astype(np.uint8)
        return self._cache[key]


def paint_texture(head, look: dict[str, str] | None = None, size: int = 512, seed: int = 0) -> np.ndarray:
    """Convenience: (S, S, 3) uint8 albedo of `head` (a HeadModel) for `look` (None = reference)."""
    return TexturePainter(head_anatomy(head), size=size, seed=seed).paint(look or {})
