"""Procedural albedo textures painted in a head's UV space.

The painter never works in 2D texture space directly. The UV layout is rasterized once
(`rasterize_uv`) to find, for every texel, the head triangle and barycentric coordinates it samples;
from that come the texel's canonical 3D position, normal and (interpolated) region weights
(`TexelAtlas`). Every paint layer is then a smooth function of those 3D quantities, so two texels on
either side of a UV seam, which map to the same 3D point, get the same colour: the textures are
seam-free by construction.

Layers (bottom to top): skin with low-frequency tone variation, warmer cheeks/nose/ears and fine pore
noise; lips; eyes (sclera, iris with radial fibres, pupil; lash line on the upper lid); eyebrows made
of hair strokes; beard (stubble dots, goatee, full); scalp hair with strand-like stripes that flow
from the crown and a soft, irregular hairline. Everything is deterministic in the seed.

Texture orientation: texel row 0 holds v = 1 (image convention, as in OBJ/glTF exporters); see
`uv_to_texel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.landmarks import (BROW_LOWER, BROW_UPPER, CHEEKBONE, CHIN_BOTTOM, EYE_LOWER_LID, EYE_UPPER_LID, FACE_SIDE,
                             FOREHEAD_TOP, GLABELLA, IRIS, LIPS_INNER, LIPS_OUTER, MOUTH_CORNER, NOSE_TIP, SUBNASALE)
from perse.mesh_ops import vertex_normals
from perse.synth.variants import HEAD_REGIONS, SKIN_REGIONS

# MediaPipe landmarks the painters place features with (`perse.landmarks`).
REQUIRED_LANDMARKS = sorted(set(BROW_UPPER["R"] + BROW_LOWER["R"] + BROW_UPPER["L"] + BROW_LOWER["L"]
                                + EYE_UPPER_LID["R"] + EYE_LOWER_LID["R"] + EYE_UPPER_LID["L"] + EYE_LOWER_LID["L"]
                                + LIPS_OUTER + LIPS_INNER
                                + (NOSE_TIP, GLABELLA, FOREHEAD_TOP, CHIN_BOTTOM, CHEEKBONE["R"],
                                   CHEEKBONE["L"], FACE_SIDE["R"], FACE_SIDE["L"], SUBNASALE)))

# --------------------------------------------------------------------------------------------------
# Colours (linear-ish sRGB in [0, 1]) of the variants.
# --------------------------------------------------------------------------------------------------
SKIN_TONES = {
    "reference": (0.80, 0.60, 0.49),
    "lighter": (0.92, 0.76, 0.68),
    "darker": (0.42, 0.28, 0.20),
    "tan": (0.70, 0.48, 0.33),
}
HAIR_COLORS = {
    "brown": (0.26, 0.16, 0.095),
    "black": (0.055, 0.045, 0.045),
    "blonde": (0.82, 0.66, 0.40),
    "red": (0.58, 0.22, 0.08),
    "gray": (0.66, 0.65, 0.64),
}
LIP_COLORS = {
    "natural": None,  # derived from the skin tone (rosier, darker)
    "red": (0.72, 0.06, 0.10),
    "berry": (0.40, 0.06, 0.20),
    "pale": (0.86, 0.64, 0.60),
}
# Eyebrows and beard keep their own colour so that a hair-colour change repaints only the scalp.
BROW_COLORS = {"natural": (0.17, 0.11, 0.07), "thick": (0.10, 0.07, 0.05), "thin": (0.20, 0.13, 0.09),
               "light": (0.62, 0.50, 0.36)}
BROW_WIDTH_SCALE = {"natural": 1.15, "thick": 1.7, "thin": 0.45, "light": 1.15}
BEARD_COLOR = (0.16, 0.10, 0.06)
# Over a person's texture: thick / thin brows are this much darker than the person's, light brows move
# 75 % of the way to a pale ash blonde, and lighter skin is at least this much brighter than theirs.
THICK_BROW_DARKEN = 0.55
LIGHT_BROW_TARGET = (0.90, 0.82, 0.68)
LIGHTER_GAIN = 1.22
PALE_LIP_GAIN, PALE_LIP_LIFT = 1.06, 0.10  # pale lips: the person's skin, lighter (a lip already close
# to the skin tone must still change visibly)
SCLERA_COLOR = (0.93, 0.91, 0.88)
LID_SHADOW = 0.45  # darkening of the eyeball's top under the upper lid
IRIS_COLORS = [(0.33, 0.20, 0.10), (0.25, 0.42, 0.60), (0.30, 0.42, 0.22), (0.45, 0.32, 0.16)]

TEXTURE_CATEGORIES = ("hair", "beard", "eyebrows", "lips", "skin")


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


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (N, 3) -> (centre (3,), radius)."""
    A = np.concatenate([2 * points, np.ones((points.shape[0], 1))], axis=1)
    b = (points ** 2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(max(sol[3] + centre @ centre, 1e-12)))


# --------------------------------------------------------------------------------------------------
# Head anatomy: where things are on the canonical head
# --------------------------------------------------------------------------------------------------
@dataclass
class HeadAnatomy:
    """Canonical (neutral) head geometry and named feature locations, as numpy arrays.

    vertices: (V, 3) float64; faces: (F, 3) int64; regions: (V,) int64 ids into `region_names`;
    uvs: (T, 2); uv_faces: (F, 3); landmarks: {MediaPipe id: (3,)};
    eye_centers / eye_radii: subject's right (x < 0) then left eye.
    """

    vertices: np.ndarray
    faces: np.ndarray
    regions: np.ndarray
    region_names: list[str]
    uvs: np.ndarray
    uv_faces: np.ndarray
    landmarks: dict[int, np.ndarray]
    eye_centers: np.ndarray
    eye_radii: np.ndarray

    def lmk(self, *ids: int) -> np.ndarray:
        """(K, 3) positions of MediaPipe landmarks `ids`."""
        return np.stack([self.landmarks[i] for i in ids])

    def region_id(self, name: str) -> int:
        return self.region_names.index(name)

    def vertex_mask(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """(V,) bool: vertices in any of the named regions."""
        ids = [self.region_id(n) for n in names]
        return np.isin(self.regions, ids)

    def face_regions(self) -> np.ndarray:
        """(F,) region id per triangle: the majority of its corners (first corner on a three-way tie)."""
        r = self.regions[self.faces]
        return np.where(r[:, 1] == r[:, 2], r[:, 1], r[:, 0])

    @property
    def head_center(self) -> np.ndarray:
        """(3,) centre of the skull: sphere fitted to scalp and back-of-head vertices."""
        centre, _ = fit_sphere(self.vertices[self.vertex_mask(["scalp", "back_of_head"])])
        return centre


def head_anatomy(head) -> HeadAnatomy:
    """Extract a `HeadAnatomy` from a `HeadModel`; PerseError if it lacks what painting needs."""
    missing = [n for n in ("uvs", "uv_faces", "vertex_regions") if getattr(head, n, None) is None]
    if missing:
        raise PerseError(f"head model '{head.meta.get('name', head.kind)}' has no {', '.join(missing)}; "
                         "the synthetic generator needs a textured, segmented head (use the built-in head)")
    names = head.region_names
    absent = [r for r in HEAD_REGIONS if r not in names]
    if absent:
        raise PerseError(f"head model lacks region(s) {absent}; the synthetic generator needs the built-in "
                         "head's regions")
    import torch

    with torch.no_grad():
        verts = head.v_template.detach().cpu().double()
        lmk_pos = head.landmarks(verts[None].to(head.v_template.dtype))[0].double().numpy()
    ids = head.landmark_indices.cpu().numpy().astype(np.int64)
    landmarks = {int(i): lmk_pos[k] for k, i in enumerate(ids)}
    lacking = [i for i in REQUIRED_LANDMARKS if i not in landmarks]
    if lacking:
        raise PerseError(f"head model's landmark embedding lacks MediaPipe landmark(s) {lacking[:6]}...; "
                         "the generator needs the 478-landmark embedding")
    vertices = verts.numpy()
    regions = head.vertex_regions.cpu().numpy().astype(np.int64)
    eyes = regions == names.index("eyeballs")
    centers, radii = [], []
    for side in (-1, 1):
        pts = vertices[eyes & (np.sign(vertices[:, 0]) == side)]
        if pts.shape[0] < 8:
            raise PerseError("head model's eyeball region is missing an eye; cannot paint the eyes")
        c, r = fit_sphere(pts)
        centers.append(c)
        radii.append(r)
    return HeadAnatomy(vertices=vertices, faces=head.faces.cpu().numpy().astype(np.int64), regions=regions,
                       region_names=names, uvs=head.uvs.detach().cpu().double().numpy(),
                       uv_faces=head.uv_faces.cpu().numpy().astype(np.int64), landmarks=landmarks,
                       eye_centers=np.stack(centers), eye_radii=np.array(radii))


def eye_coordinates(anatomy: HeadAnatomy, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical coordinates of points P (N, 3) on the eyeballs around each eye's gaze axis.

    Each point is measured on the eye of its side of the face (x < 0: the subject's right). Returns
    theta (N,) the angle from that eye's gaze axis, azimuth (N,) around it, and the iris half-angle
    (radians) from the embedding's iris landmarks (MediaPipe 468-477)."""
    a = anatomy
    theta = np.full(P.shape[0], np.pi)
    azim = np.zeros(P.shape[0])
    iris_angle = []
    for k, iris_ids in enumerate((IRIS["R"], IRIS["L"])):
        c, r = a.eye_centers[k], a.eye_radii[k]
        pts = a.lmk(*iris_ids)
        gaze = pts[0] - c
        gaze = gaze / max(np.linalg.norm(gaze), 1e-9)
        if np.dot(gaze, [0, 0, 1]) < 0.7:       # embedded iris not in front: trust the model's +z
            gaze = np.array([0.0, 0.0, 1.0])
        iris_r = np.linalg.norm(pts[1:] - pts[0], axis=1).mean()
        iris_angle.append(np.arcsin(np.clip(iris_r / r, 0.2, 0.8)) if np.isfinite(iris_r) else 0.5)
        side = np.sign(P[:, 0]) == (-1 if k == 0 else 1)
        rel = P[side] - c
        rel /= np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-12)
        theta[side] = np.arccos(np.clip(rel @ gaze, -1, 1))
        up = np.array([0.0, 1.0, 0.0]) - gaze[1] * gaze
        up /= np.linalg.norm(up)
        right = np.cross(up, gaze)
        azim[side] = np.arctan2(rel @ up, rel @ right)
    return theta, azim, float(np.clip(np.mean(iris_angle), 0.35, 0.7))


def eye_albedo(theta: np.ndarray, azimuth: np.ndarray, iris_angle: float, sclera, iris_color) -> np.ndarray:
    """(N, 3) eyeball colours from `eye_coordinates`: sclera (3,) reddening toward the corners, an iris
    of `iris_color` (3,) with radial fibres and a dark limbal ring, a black pupil."""
    ia = iris_angle
    sclera = np.asarray(sclera, dtype=np.float64)
    vein = smoothstep(0.9, 1.6, theta)
    col = mix(np.broadcast_to(sclera, (theta.shape[0], 3)), sclera * np.array([0.99, 0.86, 0.84]), 0.5 * vein)
    fibre = 0.5 + 0.5 * np.sin(azimuth * 37 + 3 * np.sin(azimuth * 5)) * np.sin(theta * 40 / ia)
    iris = smoothstep(ia * 1.03, ia * 0.93, theta)
    col = mix(col, np.asarray(iris_color, dtype=np.float64)[None] * (0.6 + 0.7 * fibre[:, None]), iris)
    col = mix(col, np.array([0.05, 0.04, 0.04]), 0.6 * np.exp(-((theta - ia * 0.95) / (ia * 0.08)) ** 2))
    col = mix(col, np.array([0.02, 0.02, 0.02]), smoothstep(ia * 0.42, ia * 0.36, theta))
    # The upper lid and its lashes shade the top of the open eye, the lids' corners its sides: without
    # the shade an eye reads as a stare.
    height = np.sin(np.minimum(theta, np.pi / 2)) * np.sin(azimuth)   # up the eyeball, in eyeball radii
    front = smoothstep(1.8, 1.4, theta)   # behind the lids nothing is seen: the eyeball stays white there
    shade = LID_SHADOW * front * np.maximum(smoothstep(0.0, 0.35, height), smoothstep(0.6, 1.3, theta))
    return col * (1.0 - shade)[:, None]


# --------------------------------------------------------------------------------------------------
# UV rasterization
# --------------------------------------------------------------------------------------------------
def uv_to_texel(uv: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) UVs -> (..., 2) continuous texel coordinates (x = column, y = row; integers = centres)."""
    return np.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], axis=-1)


def rasterize_uv(uvs: np.ndarray, uv_faces: np.ndarray, size: int, priority: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Which triangle covers each texel centre, with barycentric coordinates.

    uvs: (T, 2) in [0, 1]; uv_faces: (F, 3); priority: (F,) optional, where UV triangles overlap the
    one with the highest priority owns the texel (default: the later triangle index).
    Returns face (S, S) int32 (-1 = empty) and bary (S, S, 3) float32. Triangles are processed in
    buckets of equal bounding-box size so the work is vectorized.
    """
    S = int(size)
    tri = uv_to_texel(uvs[uv_faces].astype(np.float64), S)   # (F, 3, 2)
    face = np.full((S, S), -1, dtype=np.int32)
    bary = np.zeros((S, S, 3), dtype=np.float32)
    prio = np.arange(len(tri), dtype=np.float64) if priority is None else np.asarray(priority, np.float64)
    best = np.full((S, S), -np.inf)
    lo = np.ceil(tri.min(axis=1) - 1e-9).astype(np.int64)
    hi = np.floor(tri.max(axis=1) + 1e-9).astype(np.int64)
    lo = np.clip(lo, 0, S - 1)
    hi = np.clip(hi, -1, S - 1)
    extent = (hi - lo + 1).max(axis=1)
    (x0, y0), (x1, y1), (x2, y2) = (tri[:, i].T for i in range(3))
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    valid = (np.abs(area) > 1e-12) & (extent > 0)
    done = ~valid
    for K in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        sel = np.nonzero(~done & (extent <= K))[0]
        if sel.size == 0:
            continue
        done[sel] = True
        # Chunk so the candidate grid stays within a few million entries.
        chunk = max(1, 4_000_000 // (K * K))
        for start in range(0, sel.size, chunk):
            s = sel[start:start + chunk]
            g = np.arange(K)
            px = lo[s, 0, None, None] + g[None, None, :]           # (n, 1, K)
            py = lo[s, 1, None, None] + g[None, :, None]           # (n, K, 1)
            ax, ay = x0[s, None, None], y0[s, None, None]
            bx, by = x1[s, None, None], y1[s, None, None]
            cx, cy = x2[s, None, None], y2[s, None, None]
            ar = area[s, None, None]
            w0 = ((bx - px) * (cy - py) - (cx - px) * (by - py)) / ar
            w1 = ((cx - px) * (ay - py) - (ax - px) * (cy - py)) / ar
            w2 = 1.0 - w0 - w1
            inside = (w0 >= -1e-7) & (w1 >= -1e-7) & (w2 >= -1e-7)
            inside &= (px <= hi[s, 0, None, None]) & (py <= hi[s, 1, None, None])
            n_idx, iy, ix = np.nonzero(inside)
            rows = (lo[s, 1][n_idx] + iy)
            cols = (lo[s, 0][n_idx] + ix)
            p = prio[s[n_idx]]
            # Ascending priority: with repeated (row, col) the last assignment, the highest, wins.
            order = np.argsort(p, kind="stable")
            keep = order[p[order] > best[rows[order], cols[order]]]
            rows, cols, n_idx, iy, ix = rows[keep], cols[keep], n_idx[keep], iy[keep], ix[keep]
            best[rows, cols] = p[keep]
            face[rows, cols] = s[n_idx]
            bary[rows, cols] = np.stack([w0[n_idx, iy, ix], w1[n_idx, iy, ix], w2[n_idx, iy, ix]], axis=-1)
    return face, bary


@dataclass
class TexelAtlas:
    """Per-texel canonical geometry of a head's UV layout (only covered texels are stored, flattened).

    size: S. index: (N,) flat texel indices (row * S + col) of covered texels.
    position: (N, 3); normal: (N, 3) unit; region_weights: (N, R) barycentric blend of one-hot regions;
    region: (N,) hard region id (largest weight); fill_from: (S * S,) flat index of the nearest covered
    texel for every texel (to fill the gutters between UV islands so bilinear sampling has no dark seams).
    """

    size: int
    index: np.ndarray
    position: np.ndarray
    normal: np.ndarray
    region_weights: np.ndarray
    region: np.ndarray
    fill_from: np.ndarray

    @property
    def num_texels(self) -> int:
        return self.index.shape[0]


def build_atlas(anatomy: HeadAnatomy, size: int) -> TexelAtlas:
    """Rasterize the head's UV layout at `size` and gather per-texel canonical geometry."""
    from scipy import ndimage

    # Where UV triangles overlap (e.g. slivers of a disc chart's far pole crossing the island), the
    # texel belongs to the triangle with the most 3D area per UV area: the least stretched one.
    v, t = anatomy.vertices[anatomy.faces], anatomy.uvs[anatomy.uv_faces]
    area3 = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    area2 = 0.5 * np.abs(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]))
    face, bary = rasterize_uv(anatomy.uvs, anatomy.uv_faces, size, priority=area3 / np.maximum(area2, 1e-20))
    covered = face >= 0
    if not covered.any():
        raise PerseError("head model's UV layout covers no texels; check its uvs/uv_faces")
    flat = np.nonzero(covered.ravel())[0]
    f = face.ravel()[flat]
    w = bary.reshape(-1, 3)[flat].astype(np.float64)
    corners = anatomy.faces[f]                                     # (N, 3)
    position = (anatomy.vertices[corners] * w[..., None]).sum(axis=1)
    vn = vertex_normals(anatomy.vertices, anatomy.faces)
    normal = (vn[corners] * w[..., None]).sum(axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    R = len(anatomy.region_names)
    onehot = np.eye(R)[anatomy.regions]                            # (V, R)
    region_weights = (onehot[corners] * w[..., None]).sum(axis=1)
    _, (ri, ci) = ndimage.distance_transform_edt(~covered, return_indices=True)
    fill_from = (ri * size + ci).ravel()
    return TexelAtlas(size=size, index=flat, position=position.astype(np.float32),
                      normal=normal.astype(np.float32), region_weights=region_weights.astype(np.float32),
                      region=region_weights.argmax(axis=1), fill_from=fill_from)


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
        eye_y = a.eye_centers[:, 1].mean()
        ax = np.abs(P[:, 0])
        jag = 0.0015 * sine_noise(P, rng, wavelength=0.006)
        # Upper edge of the beard: from the sideburn in front of the ear down the cheek to above the
        # mouth corner, then along the moustache under the nose.
        y_top = np.interp(ax, [0.0, mouth_hw + 0.004, mouth_hw + 0.016, abs(side[0]) - 0.012, abs(side[0])],
                          [subnasal[1] - 0.003, subnasal[1] - 0.006, mouth_y + 0.006, eye_y - 0.028, eye_y - 0.012])
        below_top = smoothstep(y_top + 0.002, y_top - 0.003, P[:, 1] + jag)
        # Lower edge: under the jaw, fading out on the neck; only the front half of the head.
        above_neck = smoothstep(chin[1] - 0.045, chin[1] - 0.025, P[:, 1] + jag)
        front = smoothstep(side[2] - 0.03, side[2] - 0.01, P[:, 2])
        skin_ok = np.clip(self.reg["beard"] + self.reg["face"] + self.reg["neck"], 0, 1)
        no_lips = 1.0 - smoothstep(0.0, 0.5, self.lips)
        self.beard_full = below_top * above_neck * front * skin_ok * no_lips
        central = smoothstep(mouth_hw + 0.009, mouth_hw + 0.003, ax)
        chin_zone = smoothstep(mouth_y - 0.004, mouth_y - 0.010, P[:, 1])
        moustache = smoothstep(mouth_y - 0.001, mouth_y + 0.004, P[:, 1])
        self.beard_goatee = self.beard_full * central * np.clip(chin_zone + moustache, 0, 1) * above_neck
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


def texture_variants(look: dict[str, str]) -> tuple[str, str, str, str, str]:
    """(hair, beard, eyebrows, lips, skin) variants of `look` (missing: reference); PerseError if unknown."""
    hair_v = look.get("hair", "brown")
    beard_v = look.get("beard", "none")
    brow_v = look.get("eyebrows", "natural")
    lips_v = look.get("lips", "natural")
    skin_v = look.get("skin", "reference")
    for value, table, cat in ((hair_v, HAIR_COLORS, "hair"), (brow_v, BROW_COLORS, "eyebrows"),
                              (lips_v, LIP_COLORS, "lips"), (skin_v, SKIN_TONES, "skin")):
        if value not in table:
            raise PerseError(f"unknown {cat} variant '{value}'; choose one of {', '.join(table)}")
    if beard_v not in ("none", "stubble", "goatee", "full"):
        raise PerseError(f"unknown beard variant '{beard_v}'; choose one of none, stubble, goatee, full")
    return hair_v, beard_v, brow_v, lips_v, skin_v


# --------------------------------------------------------------------------------------------------
# Painting over a person's texture
# --------------------------------------------------------------------------------------------------
LUMA = np.array([0.2126, 0.7152, 0.0722])   # Rec. 709 luminance weights


def luminance(col: np.ndarray) -> np.ndarray:
    """(..., 3) colours -> (...,) luminance."""
    return col @ LUMA


def check_base_texture(texture) -> np.ndarray:
    """A base texture must be a square (S, S, 3) uint8 array; PerseError saying what is wrong otherwise."""
    if not isinstance(texture, np.ndarray):
        raise PerseError(f"base texture must be a numpy array (S, S, 3) uint8, got {type(texture).__name__}")
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.shape[0] != texture.shape[1]:
        raise PerseError(f"base texture has shape {texture.shape}; expected a square RGB image (S, S, 3) "
                         "(drop the alpha channel, pad or crop to a square)")
    if texture.dtype != np.uint8:
        raise PerseError(f"base texture is {texture.dtype}; expected uint8 (multiply [0, 1] floats by 255 and round)")
    if texture.shape[0] < 16:
        raise PerseError(f"base texture is {texture.shape[0]} pixels wide; use at least 256")
    return texture


def resample_texture(texture: np.ndarray, size: int) -> np.ndarray:
    """(S, S, 3) uint8 -> (size, size, 3) uint8 (bilinear, antialiased when shrinking; a copy if equal).

    Texel centres map to texel centres (half-texel convention of `uv_to_texel`), so the UV layout holds.
    """
    if texture.shape[0] == size:
        return np.ascontiguousarray(texture).copy()
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(texture)).permute(2, 0, 1)[None].double()
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                      antialias=size < texture.shape[0])
    return np.clip(np.round(y[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


def resample_coverage(coverage: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float coverage in [0, 1] -> (size, size) float64, by the texture resampler."""
    as_u8 = np.round(np.clip(coverage, 0.0, 1.0) * 255.0).astype(np.uint8)
    return resample_texture(np.repeat(as_u8[..., None], 3, axis=2), size)[..., 0].astype(np.float64) / 255.0


def recolor_keep_luminance(lum: np.ndarray, target, mean_lum: float, eps: float = 0.03) -> np.ndarray:
    """Colours of `target` (3,) modulated by the luminance structure `lum` (N,) of what they replace.

    Each texel gets target * (lum + eps) / (mean_lum + eps), a per-channel gain toward the target
    colour: the mean comes out at the target, highlights and strands keep their relative brightness.
    `eps` damps the gain where the original is very dark (noise in black hair is not blown up); the
    ratio is clipped to [0.2, 3] so that no texel goes pure black or white. Returns (N, 3).
    """
    ratio = np.clip((lum + eps) / (float(mean_lum) + eps), 0.2, 3.0)
    return np.asarray(target, dtype=np.float64)[None] * ratio[:, None]


def hair_likeness(color: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: how unlike skin `skin` (3,) each colour (N, 3) is, as hair is.

    Hair differs from skin either in chromaticity (blonde: yellower, gray: less red, red: redder) or
    by being much darker (brown, black). Brightness changes of skin alone (shading baked into a
    photo, pores) change neither chromaticity nor, within a factor of ~0.6, darkness.
    """
    chroma = color / np.maximum(color.sum(axis=1, keepdims=True), 1e-6)
    skin_chroma = skin / max(float(skin.sum()), 1e-6)
    d_chroma = np.linalg.norm(chroma - skin_chroma[None], axis=1)
    rel_lum = luminance(color) / max(float(luminance(skin)), 1e-6)
    return np.maximum(smoothstep(0.025, 0.06, d_chroma), smoothstep(0.6, 0.4, rel_lum))


def grow(values: np.ndarray, atlas: "TexelAtlas", radius: float) -> np.ndarray:
    """Soft dilation of per-texel values (N,) in [0, 1] by about `radius` texels in texture space."""
    from scipy import ndimage

    S = atlas.size
    img = np.zeros(S * S)
    img[atlas.index] = values
    r = max(1, int(np.ceil(radius)))
    out = ndimage.maximum_filter(img.reshape(S, S), size=2 * r + 1)
    return ndimage.gaussian_filter(out, radius / 2).ravel()[atlas.index].clip(0.0, 1.0)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of values (N, ...) with weights (N,); nan when the weights sum to zero."""
    total = float(weights.sum())
    if total <= 1e-9:
        return np.full(values.shape[1:], np.nan)
    return np.tensordot(weights, values, axes=(0, 0)) / total


@dataclass
class BaseTextureFields:
    """A person's texture (e.g. projected from a portrait) and what painting variants over it needs.

    All per-texel arrays are over the painter's covered texels (N,). color: (N, 3) float in [0, 1];
    lum: (N,); skin_ref: (3,) median skin colour of the face; hair: (N,) how much each texel is the
    person's hair (on the scalp and back of the head, or on the forehead above the procedural hairline,
    weighted by how far its colour is from the skin's); brow_zone: (N,) soft area around both
    eyebrows; brows: (N,) the person's eyebrow hair (darker than the surrounding skin in the zone);
    brow_color: (3,); skin_fill: (N, 3) local skin colour with the brows left out; brows_erase: (N,)
    where the thin variant replaces the person's brows by skin_fill;
    skin: (N,) texels a skin-tone change scales; hair_lum / lips_lum / brow_lum: mean luminance.
    """

    painter: "TexturePainter"
    color: np.ndarray
    lum: np.ndarray
    skin_ref: np.ndarray
    hair: np.ndarray
    hair_lum: float
    lips_lum: float
    brow_zone: np.ndarray
    brows: np.ndarray
    brow_color: np.ndarray
    brow_lum: float
    brows_erase: np.ndarray
    skin_fill: np.ndarray
    skin: np.ndarray

    @classmethod
    def build(cls, painter: "TexturePainter", texture: np.ndarray,
              hair_coverage: np.ndarray | None = None) -> "BaseTextureFields":
        """hair_coverage: (N,) the person's hair per texel from the portrait's hair mask (a hair layer),
        bangs on the forehead included; None: guessed from colour on the hair regions."""
        from scipy import ndimage

        atlas, reg, S = painter.atlas, painter.reg, painter.size
        color = texture.reshape(-1, 3)[atlas.index].astype(np.float64) / 255.0
        lum = luminance(color)
        clip01 = lambda x: np.clip(x, 0.0, 1.0)  # noqa: E731

        # Reference skin: cheeks and nose away from lips, mouth, brows, eyes and hair.
        brow_zone = painter.brow_zone()
        plain = (clip01(reg["face"] + reg["nose"]) > 0.99) & (painter.lips < 0.01) & (painter.cavity < 0.01) \
            & (brow_zone < 0.01) & (painter.eye_w < 0.01) & (painter.lash < 0.05)
        if plain.sum() < 20:
            raise PerseError("the head's face region covers too few texels to read the skin colour from the "
                             "base texture; use a texture size of at least 256")
        skin_ref = np.median(color[plain], axis=0)

        # Hair: what looks like hair (far from the skin colour) on the scalp and back of the head, and on
        # the forehead above the procedural hairline. Skin between strands, a bare nape or temples stay
        # skin, so recolouring never tints skin (and a skin-tone change does reach it).
        if hair_coverage is not None:
            hair = clip01(hair_coverage * (1 - painter.eye_w) * (1 - painter.lips))
        else:
            hairness = hair_likeness(color, skin_ref)
            hair = clip01((clip01(reg["scalp"] + reg["back_of_head"]) + reg["forehead"] * painter.hair_density)
                          * hairness)

        # Skin with the brows left out, by normalized convolution in texture space (brows are small
        # and inside one UV island, so the blur does not mix far-apart surface).
        skin_w = clip01(sum(reg[r] for r in SKIN_REGIONS)) * (1 - painter.eye_w) * (1 - painter.lips) \
            * (1 - painter.cavity) * (1 - hair) * (1 - smoothstep(0.05, 0.3, brow_zone))
        sigma = max(2.0, 0.005 / painter.texel)
        img_w = np.zeros(S * S)
        img_w[atlas.index] = skin_w
        img_c = np.zeros((S * S, 3))
        img_c[atlas.index] = color * skin_w[:, None]
        den = ndimage.gaussian_filter(img_w.reshape(S, S), sigma).ravel()[atlas.index]
        num = np.stack([ndimage.gaussian_filter(img_c[:, k].reshape(S, S), sigma).ravel()[atlas.index]
                        for k in range(3)], axis=1)
        skin_fill = np.where(den[:, None] > 1e-3, num / np.maximum(den, 1e-3)[:, None], skin_ref[None])

        # The person's brows: clearly darker than the local skin (skin shading and pores stay above
        # ~85 % of it), inside the brow zone.
        brows = brow_zone * smoothstep(0.85, 0.65, lum / np.maximum(luminance(skin_fill), 1e-3))
        solid = brows > 0.5
        # Too few brow texels (very light or hidden brows): use the catalogue's natural brow colour.
        brow_color = np.median(color[solid], axis=0) if solid.sum() >= 10 else np.array(BROW_COLORS["natural"])

        # Skin-tone changes reach all skin, bare scalp skin (temples, nape) included, as in the procedural
        # path where the skin colour is the bottom layer everywhere.
        skin = clip01(sum(reg[r] for r in (*SKIN_REGIONS, "scalp", "back_of_head"))) * (1 - painter.eye_w) \
            * (1 - hair) * (1 - painter.cavity)
        return cls(painter=painter, color=color, lum=lum, skin_ref=skin_ref, hair=hair,
                   hair_lum=float(weighted_mean(lum, hair)), lips_lum=float(weighted_mean(lum, painter.lips)),
                   brow_zone=brow_zone, brows=brows, brow_color=brow_color,
                   brow_lum=float(weighted_mean(lum, brows)) if solid.sum() >= 10 else float(luminance(brow_color)),
                   brows_erase=brow_zone * grow(brows, atlas, 1.5), skin_fill=skin_fill, skin=skin)

    def paint(self, hair_v: str, beard_v: str, brow_v: str, lips_v: str, skin_v: str) -> np.ndarray:
        """(N, 3) colours: the base texture with every non-reference variant painted over it.

        Order: skin tone (a gain on the skin), lips, beard, eyebrows, hair; eyes stay the base's.
        """
        p = self.painter
        col = self.color.copy()
        gain = np.ones((col.shape[0], 3))
        if skin_v != "reference":
            # Per-channel gain that takes the person's median skin to the catalogue tone: pores,
            # shading and freckles scale with it (multiplicative detail is kept). A person already near
            # the catalogue's lighter tone still gets visibly lighter skin.
            tone = np.array(SKIN_TONES[skin_v])
            if skin_v == "lighter":
                tone = np.maximum(tone, np.minimum(self.skin_ref * LIGHTER_GAIN, 0.97))
            g = np.clip(tone / np.maximum(self.skin_ref, 1e-3), 0.2, 5.0)
            gain = 1.0 + self.skin[:, None] * (g[None] - 1.0)
            col = col * gain
        if LIP_COLORS[lips_v] is not None:
            target = np.array(LIP_COLORS[lips_v])
            if lips_v == "pale":   # relative to this person's skin: a nude tone, lighter than the skin
                target = np.minimum(self.skin_ref * PALE_LIP_GAIN + PALE_LIP_LIFT, 0.97)
            lips = recolor_keep_luminance(self.lum, target, self.lips_lum)
            col = mix(col, lips, p.lips)
        col = p.apply_beard(col, beard_v)
        # Brow variants are defined against this person's brows, so that light brows can still get
        # visibly thicker (and darker) and dark ones lighter.
        if brow_v == "thick":
            col = p.apply_brows(col, self.brow_color * THICK_BROW_DARKEN, "thick")
        elif brow_v == "thin":
            # Erase the person's brows (a little beyond their hairs) with the surrounding skin, then draw
            # thin, defined ones; the skin around them keeps its own detail.
            col = mix(col, self.skin_fill * gain, self.brows_erase)
            col = p.apply_brows(col, self.brow_color * THICK_BROW_DARKEN, "thin")
        elif brow_v == "light":
            target = self.brow_color + 0.75 * (np.array(LIGHT_BROW_TARGET) - self.brow_color)
            light = recolor_keep_luminance(self.lum, target, self.brow_lum)
            col = mix(col, light, self.brows_erase)
        if hair_v != "brown":
            col = mix(col, recolor_keep_luminance(self.lum, HAIR_COLORS[hair_v], self.hair_lum), self.hair)
        return np.clip(col, 0.0, 1.0)


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-texel lerp: a, b (N, 3) or (3,), t (N,) -> (N, 3)."""
    return a + (np.asarray(b) - a) * np.asarray(t)[:, None]


def paint_texture(head, look: dict[str, str] | None = None, size: int = 512, seed: int = 0) -> np.ndarray:
    """Convenience: (S, S, 3) uint8 albedo of `head` (a HeadModel) for `look` (None = reference)."""
    return TexturePainter(head_anatomy(head), size=size, seed=seed).paint(look or {})
