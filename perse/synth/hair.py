"""The hair layer: a person's hair as its own geometry and texture coverage, from one portrait.

A portrait shows hair that stands out of any bald head model: volume at the top and sides, bangs over
the forehead. The built-in head's scalp and back of the head are therefore covered by a *shell*, the
same triangles offset along their normals by a per-vertex thickness, drawn over the head by the
dataset generator (`perse.synth.frame_renderer.FrameRenderer`) with the head's own UV layout and texture.

Pipeline (`build_hair_layer`, called by `perse create` in the texture stage):

1. Hair mask of the photo (`segment_hair`): the person mask minus the face skin. Colour models of skin
   (cheeks) and hair (person pixels around the top of the head, outside the face oval) in Lab seed
   OpenCV's GrabCut, so bangs over the forehead are hair while the face, the shirt and the wall are not.
2. Thickness (`shell_thickness`): in the reference view, the silhouette of head ∪ hair mask (above the
   mouth corners, so shoulders stay out) is compared with the silhouette of the head alone along rays
   from the projected skull centre. Every shell vertex takes the excess, in metres, of the ray through
   its own projection; that extrudes the portrait's outline through the depth of the head (unseen back
   and top get the thickness of the outline at the same angle). It tapers to zero at the hairline and
   is smoothed on the mesh; where the photo shows hair a thin minimum layer remains.
3. Unseen hair (`synthesize_unseen_hair`): texels of the hair regions that the photo does not see take
   the colour of a seen hair texel. Next to the seen hair they copy the texel their azimuth and elevation
   fold back onto (a mirror fold, so strands stay continuous across the border); further away a strand
   pattern combed from the crown down (`strand_field`) picks seen colours by luminance, from the middle
   of their range and a shade darker low on the head (`strand_quantiles`). Every colour of
   the unseen hair therefore occurs in the visible hair, and the back of the head is hair, not a
   kaleidoscope of the front.

A portrait where the hair cannot be separated (a hat, a hood, hair as dark as a busy background)
gives `HairLayer.reliable = False` with the reason, and a thin default layer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perse.errors import PerseError
from perse.io_utils import atomic_write_bytes
from perse.geometry.easing import smoothstep
from perse.landmarks import BROW_UPPER, CHEEK, CHEEK_UPPER, CHEEKBONE, MOUTH_CORNER, eye_corner_distance
from perse.synth.hair_curtain import HairCurtain
from perse.synth.noise import periodic_value_noise
from perse.synth.palette import BT601_LUMA

SHELL_REGIONS = ("scalp", "back_of_head")
MIN_THICKNESS_M = 0.003          # thin layer where the photo shows hair (short hair)
DEFAULT_THICKNESS_M = 0.004      # layer used when the hair cannot be separated
MAX_THICKNESS_M = 0.07
HAIRLINE_TAPER_M = 0.02          # thickness reaches its full value this far from the hairline
UNSEEN_BLEND_RAD = 0.35          # unseen hair this far (radians) from the seen hair is combed strands
SHADOW_FRACTION = 0.15           # darkest seen hair colours left out of the strands (gaps, shadows)
# The strands' share of the lit palette's luminance range. The seen hair's range holds the portrait's
# light (sheen, shadowed locks) besides strand albedo: spanning all of it, the back of the head read as
# pinstripes of highlight and shadow.
STRAND_SPREAD = 0.5
# Palette quantile the strands centre on at the crown and at the lowest unseen hair: hair under the bulk
# of the head gets less sky light (occlusion), so it is a shade darker, as in any photo of a head from behind.
STRAND_CENTRE = (0.6, 0.4)
# Strand pattern octaves: (cells around the head, cells per radian along a strand, weight, seed). Around a
# ~0.6 m head: ~1.5 mm strands, ~5 mm locks, ~2.5 cm clumps.
STRAND_OCTAVES = ((400, 1.5, 0.35, 11), (120, 2.5, 0.35, 12), (24, 1.2, 0.30, 13))


@dataclass
class HairLayer:
    """thickness: (V,) float32 metres along the vertex normal, 0 off the shell regions;
    coverage: (S, S) float32 in [0, 1] texture-space hair coverage (1 = the texel is hair, bangs on the
    forehead included), or None; reliable: whether the portrait's hair could be separated; reason: why
    not (empty when reliable)."""

    thickness: np.ndarray
    coverage: np.ndarray | None = None
    reliable: bool = True
    reason: str = ""
    curtain: HairCurtain | None = None

    def shell_vertices(self, vertices: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """(V, 3) shell positions for posed head vertices (V, 3) and their unit normals (V, 3)."""
        return vertices + self.thickness[:, None].astype(vertices.dtype) * normals

    def save(self, path: str | Path) -> None:
        """Write as a compressed .npz, atomically (coverage quantised to 8 bits)."""
        buf = io.BytesIO()
        arrays = {"thickness": self.thickness.astype(np.float32),
                  "reliable": np.array(self.reliable), "reason": np.array(self.reason)}
        if self.coverage is not None:
            arrays["coverage"] = np.round(np.clip(self.coverage, 0, 1) * 255).astype(np.uint8)
        if self.curtain is not None:
            arrays.update(self.curtain.arrays())
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, num_vertices: int | None = None) -> "HairLayer":
        """Read `save`'s file; PerseError naming the file when it is unreadable, made for a head with
        another vertex count, or holds invalid values."""
        try:
            with np.load(path, allow_pickle=False) as z:
                thickness = z["thickness"].astype(np.float32)
                coverage = z["coverage"].astype(np.float32) / 255.0 if "coverage" in z else None
                reliable, reason = bool(z["reliable"]), str(z["reason"])
                curtain = HairCurtain.from_arrays(z)
        except (OSError, KeyError, ValueError) as e:
            raise PerseError(f"cannot read the hair layer {path}: {e}; delete it and rerun the texture stage")
        if thickness.ndim != 1 or (num_vertices is not None and thickness.shape[0] != num_vertices):
            raise PerseError(f"hair layer {path} has {thickness.shape} thicknesses for a head of {num_vertices} "
                             "vertices; it was made for another head model")
        if not np.isfinite(thickness).all() or (thickness < 0).any() or thickness.max(initial=0) > 1.0:
            raise PerseError(f"hair layer {path} holds invalid thicknesses (negative, non-finite or over 1 m)")
        if coverage is not None and (coverage.ndim != 2 or coverage.shape[0] != coverage.shape[1]):
            raise PerseError(f"hair layer {path} has a coverage map of shape {coverage.shape}; expected square")
        problem = "" if curtain is None else curtain.check()
        if problem:
            raise PerseError(f"hair layer {path} is damaged: {problem}; delete it and rerun the texture stage")
        return cls(thickness=thickness, coverage=coverage, reliable=reliable, reason=reason, curtain=curtain)


# --------------------------------------------------------------------------------------------------
# 1. Hair mask
# --------------------------------------------------------------------------------------------------
def _disc_samples(image_lab: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """(K, 3) Lab pixels within `radius` px of any of the (M, 2) centres."""
    h, w = image_lab.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    near = np.zeros((h, w), bool)
    for cx, cy in centres:
        near |= (xs - cx) ** 2 + (ys - cy) ** 2 <= radius ** 2
    return image_lab[near]


def gaussian_log_likelihood(samples: np.ndarray, pixels: np.ndarray, floor: float = 4.0) -> np.ndarray:
    """Log density (up to a constant) of (N, 3) pixels under a Gaussian fitted to (K, 3) samples; the
    covariance gets `floor` added to its diagonal (Lab units squared) so flat regions do not collapse it."""
    mu = samples.mean(axis=0)
    cov = np.cov(samples.T) + floor * np.eye(3)
    inv = np.linalg.inv(cov)
    d = pixels - mu
    return -0.5 * np.einsum("ni,ij,nj->n", d, inv, d) - 0.5 * np.log(np.linalg.det(cov))


def polygon_mask(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) bool inside the convex hull of (N, 2) pixel points."""
    import cv2

    hull = cv2.convexHull(np.round(points).astype(np.int32))
    out = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)


def segment_hair(image: np.ndarray, landmarks: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, str]:
    """(H, W) float32 hair mask of a portrait and "" or the reason it is unreliable.

    image: (H, W, 3) uint8 RGB; landmarks: (478, 2) MediaPipe pixel coordinates; person: (H, W) float
    person probability (`perse.create.portrait_texture.segment_person`).
    """
    import cv2
    from skimage.color import rgb2lab

    h, w = image.shape[:2]
    iod = eye_corner_distance(landmarks)
    if iod < 8:
        raise PerseError("the face is too small to separate its hair; use a larger portrait")
    lab = rgb2lab(image.astype(np.float64) / 255.0)
    face = polygon_mask(landmarks[:468], w, h)
    person_b = person > 0.5
    brow_y = float(landmarks[list(BROW_UPPER["R"] + BROW_UPPER["L"]), 1].mean())
    mouth_y = float(landmarks[[MOUTH_CORNER["R"], MOUTH_CORNER["L"]], 1].mean())
    ys = np.arange(h)[:, None] * np.ones((1, w))

    skin_samples = _disc_samples(lab, landmarks[[t[s] for t in (CHEEKBONE, CHEEK, CHEEK_UPPER) for s in "RL"]], 0.12 * iod)
    # Hair samples: the person's pixels around the top of the head, outside the (dilated) face oval.
    ring = cv2.dilate(face.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, int(0.08 * iod)))
    hair_zone = person_b & ~ring.astype(bool) & (ys < brow_y)
    if hair_zone.sum() < 0.05 * iod ** 2:
        mask = np.zeros((h, w), np.float32)
        return mask, "the portrait shows almost no hair above the face (cropped at the hairline, or bald)"
    ll_skin = gaussian_log_likelihood(skin_samples, lab.reshape(-1, 3)).reshape(h, w)
    ll_hair = gaussian_log_likelihood(lab[hair_zone], lab.reshape(-1, 3)).reshape(h, w)
    hairlike = ll_hair > ll_skin

    # GrabCut labels: background off the person and below the mouth except hair-coloured side pixels;
    # the inner face (eyes to mouth) is certainly not hair; hair-zone pixels are probably hair.
    inner = polygon_mask(landmarks[[33, 263, 291, 61, 152]], w, h) | polygon_mask(
        landmarks[[33, 133, 362, 263, 1]], w, h)
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[person_b & hairlike] = cv2.GC_PR_FGD
    gc[hair_zone & hairlike] = cv2.GC_FGD
    gc[face & ~hairlike] = cv2.GC_PR_BGD
    gc[inner] = cv2.GC_BGD
    gc[person < 0.2] = cv2.GC_BGD
    gc[(ys > mouth_y) & ~hairlike] = cv2.GC_BGD
    if not (gc == cv2.GC_FGD).any() or not (gc == cv2.GC_BGD).any():
        return np.zeros((h, w), np.float32), "hair and face could not be told apart by colour"
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    scale = min(1.0, 256.0 / max(h, w))  # GrabCut is quadratic-ish in pixels: run at about 256 px
    small = cv2.resize(image, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
    gc_small = cv2.resize(gc, small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), gc_small, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error as e:
        return np.zeros((h, w), np.float32), f"hair segmentation failed ({e.msg if hasattr(e, 'msg') else e})"
    fg = np.isin(gc_small, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    mask = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.01 * iod)) * person_b * ~inner
    mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if (mask > 0.5).sum() < 0.03 * iod ** 2:
        return mask, "no hair was found around the face"
    # Hair the colour of the skin (very blonde hair on pale skin) or a hat: colour models overlap.
    sep = float(np.linalg.norm(lab[hair_zone].mean(0) - skin_samples.mean(0)))
    if sep < 8.0:
        return mask, f"hair and skin colours are too close to separate (ΔE {sep:.1f})"
    return mask, ""


# --------------------------------------------------------------------------------------------------
# 2. Thickness
# --------------------------------------------------------------------------------------------------
def ray_extent(mask: np.ndarray, centre: np.ndarray, angles: np.ndarray, max_radius: float,
               step: float = 1.0) -> np.ndarray:
    """(A,) largest radius (px) from `centre` (2,) along each angle at which (H, W) bool `mask` holds
    (0 where it never does). Angles in radians, image axes (x right, y down)."""
    h, w = mask.shape
    r = np.arange(0.0, max_radius, step)
    xs = centre[0] + np.cos(angles)[:, None] * r[None]
    ys = centre[1] + np.sin(angles)[:, None] * r[None]
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    hit = np.zeros_like(inside)
    hit[inside] = mask[np.round(ys[inside]).astype(int), np.round(xs[inside]).astype(int)]
    last = np.where(hit.any(axis=1), r.shape[0] - 1 - np.argmax(hit[:, ::-1], axis=1), -1)
    return np.where(last >= 0, r[np.maximum(last, 0)], 0.0)


def circular_smooth(values: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Gaussian smoothing of a periodic (A,) signal."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(values, sigma_bins, mode="wrap")


def hairline_taper(vertices: np.ndarray, on_shell: np.ndarray, taper: float = HAIRLINE_TAPER_M) -> np.ndarray:
    """(V,) in [0, 1]: 0 at shell vertices next to the rest of the head, 1 from `taper` metres inside."""
    from scipy.spatial import cKDTree

    out = np.zeros(vertices.shape[0])
    if not on_shell.any() or on_shell.all():
        return on_shell.astype(np.float64)
    d, _ = cKDTree(vertices[~on_shell]).query(vertices[on_shell])
    out[on_shell] = smoothstep(0.0, taper, d)
    return out


def shell_thickness(vertices: np.ndarray, faces: np.ndarray, on_shell: np.ndarray, skull_centre: np.ndarray,
                    camera, head_alpha: np.ndarray, hair: np.ndarray, mouth_y: float,
                    hair_present: bool) -> np.ndarray:
    """(V,) metres of shell thickness from the reference view (see the module docstring, step 2).

    vertices: (V, 3) posed world positions; on_shell: (V,) bool; skull_centre: (3,) posed world point;
    camera: the fitted `Camera`; head_alpha: (H, W) coverage of the head render; hair: (H, W) hair mask;
    mouth_y: image row of the mouth corners (outlines below it are ignored).
    """
    from perse.mesh_ops import smooth_field

    import torch

    camera = camera.float64()
    centre = torch.from_numpy(np.asarray(skull_centre, np.float64)[None])
    px = camera.project(torch.from_numpy(np.asarray(vertices, np.float64))).numpy()
    c_px = camera.project(centre).numpy()[0]
    h, w = head_alpha.shape
    rows = np.arange(h)[:, None]
    above = np.broadcast_to(rows < mouth_y, (h, w))
    head = (head_alpha > 0.5) & above
    outline = (head | (hair > 0.5)) & above
    angles = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    reach = float(np.hypot(h, w))
    excess_px = np.maximum(ray_extent(outline, c_px, angles, reach) - ray_extent(head, c_px, angles, reach), 0)
    excess_px = circular_smooth(excess_px, 3.0)
    metres_per_px = float(camera.to_camera(centre)[0, 2]) / float(camera.K[0, 0])
    d = px - c_px
    bins = np.round((np.arctan2(d[:, 1], d[:, 0]) + np.pi) / (2 * np.pi) * 360).astype(int) % 360
    thick = excess_px[bins] * metres_per_px
    floor = MIN_THICKNESS_M if hair_present else 0.0
    thick = np.clip(np.maximum(thick, floor), 0.0, MAX_THICKNESS_M) * on_shell
    thick = smooth_field(thick, faces, iterations=8) * on_shell
    return (thick * hairline_taper(vertices, on_shell)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# 3. Unseen hair
# --------------------------------------------------------------------------------------------------
def fold_into(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold values into [lo, hi] by mirroring at the ends, repeatedly (a triangle wave): continuous,
    so neighbouring texels map to neighbouring sources."""
    span = max(hi - lo, 1e-6)
    t = np.mod(x - lo, 2.0 * span)
    return lo + np.where(t <= span, t, 2.0 * span - t)


def strand_field(position: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: a hair-strand pattern on the head, combed from the crown down its meridians.

    Strands are cells around the vertical axis (by azimuth, so they meet at the crown as hair does), of a
    few widths: fine strands, locks and clumps; along a strand (elevation) the pattern changes only slowly
    and the strands wave a little. Pure in the positions (N, 3) around `centre` (3,)."""
    rel = position - centre
    azimuth = np.arctan2(rel[:, 0], rel[:, 2])
    elevation = np.arctan2(rel[:, 1], np.hypot(rel[:, 0], rel[:, 2]))
    turn = (azimuth + 0.04 * np.sin(5.0 * elevation) + np.pi) / (2 * np.pi)     # [0, 1) around the head
    value = np.zeros(len(position))
    for cells, along, weight, seed in STRAND_OCTAVES:
        value += weight * periodic_value_noise(turn * cells, elevation * along, cells, seed)
    return np.clip(value / sum(o[2] for o in STRAND_OCTAVES), 0.0, 1.0)


def synthesize_unseen_hair(position: np.ndarray, centre: np.ndarray, colors: np.ndarray, seen: np.ndarray,
                           target: np.ndarray, blend_rad: float = UNSEEN_BLEND_RAD) -> np.ndarray:
    """Colours (M, 3) for the `target` texels (M indices), every one the colour of a `seen` hair texel (K).

    position: (N, 3) canonical texel positions; centre: (3,) skull centre; colors: (N, 3).
    Next to the seen hair (within `blend_rad` of it, in direction from the centre) a target copies the
    texel its azimuth and elevation fold back onto (`fold_into`: a mirror fold, so strands stay continuous
    across the border). Further away it follows `strand_field`, whose value picks the seen colour of that
    luminance quantile (shadow gaps, the darkest SHADOW_FRACTION, left out): combed strands in the seen
    hair's palette instead of a kaleidoscope of the front hair's shapes. The border between the two is
    dithered by the field itself, so it shows no seam.
    """
    from scipy.spatial import cKDTree

    rel = position - centre
    azimuth = np.arctan2(rel[:, 0], rel[:, 2])
    elevation = np.arctan2(rel[:, 1], np.hypot(rel[:, 0], rel[:, 2]))
    az_lo, az_hi = np.percentile(azimuth[seen], [3, 97])
    el_lo, el_hi = np.percentile(elevation[seen], [3, 97])
    az = fold_into(azimuth[target], float(az_lo), float(az_hi))
    el = fold_into(elevation[target], float(el_lo), float(el_hi))

    def direction(a, e):
        return np.stack([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)], axis=1)

    seen_tree = cKDTree(direction(azimuth[seen], elevation[seen]))
    _, idx = seen_tree.query(direction(az, el))
    out = colors[seen][idx]
    gap, _ = seen_tree.query(direction(azimuth[target], elevation[target]))
    # Equalised, so the strands take the seen luminances in their proportions (the field itself
    # crowds around its middle).
    strands = np.argsort(np.argsort(strand_field(position[target], centre))) / max(len(target) - 1, 1)
    far = np.clip(gap / max(blend_rad, 1e-6), 0.0, 1.0) > strands   # dithered border
    if far.any():
        palette = colors[seen]
        order = np.argsort(palette @ BT601_LUMA)
        lit = order[int(SHADOW_FRACTION * len(order)):] if len(order) > 10 else order
        quantile = strand_quantiles(strands[far], elevation[target][far])
        out[far] = palette[lit[np.round(quantile * (len(lit) - 1)).astype(int)]]
    return out


def strand_quantiles(strands: np.ndarray, elevation: np.ndarray, spread: float = STRAND_SPREAD,
                     centre: tuple[float, float] = STRAND_CENTRE) -> np.ndarray:
    """(M,) palette luminance quantiles in [0, 1] of combed strands: the strand pattern `strands` (M,) in
    [0, 1] spans `spread` of the palette around a centre that falls from `centre[0]` at the highest to
    `centre[1]` at the lowest `elevation` (M,) radians: strand albedo varies less than the lit front hair,
    and the lower hair is in the head's shadow."""
    lo, hi = (float(elevation.min()), float(elevation.max())) if elevation.size else (0.0, 1.0)
    height = (elevation - lo) / max(hi - lo, 1e-6)                       # 0 lowest .. 1 highest
    mid = centre[1] + (centre[0] - centre[1]) * height
    return np.clip(mid + spread * (strands - 0.5), 0.0, 1.0)


def build_hair_thickness(head_vertices: np.ndarray, faces: np.ndarray, regions: np.ndarray,
                         region_names: list[str], skull_centre: np.ndarray, camera, head_alpha: np.ndarray,
                         hair: np.ndarray, landmarks: np.ndarray, reliable: bool) -> np.ndarray:
    """(V,) shell thickness for the posed reference-view head; a thin default layer when not reliable."""
    on_shell = np.isin(regions, [region_names.index(r) for r in SHELL_REGIONS])
    if not reliable:
        return (DEFAULT_THICKNESS_M * on_shell * hairline_taper(head_vertices, on_shell)).astype(np.float32)
    mouth_y = float(landmarks[[MOUTH_CORNER["R"], MOUTH_CORNER["L"]], 1].mean())
    return shell_thickness(head_vertices, faces, on_shell, skull_centre, camera, head_alpha, hair, mouth_y,
                           hair_present=True)
