"""The hair curtain: hair that falls below the scalp shell, down the sides and the back of the head.

The hair shell (`perse.synth.hair`) offsets the scalp and the back of the head, so it ends where those
regions end, above the ears. Hair that hangs lower (a bob down to the jaw, long hair behind the neck) is
a *curtain*: a sheet of columns from beside the face (in front of the ears, or as far forward as the
portrait's hair frames the cheeks: `hair_front_azimuths`) round the back, each hanging straight down
(along the head's up axis) from the shell's widest point, so it continues the shell's outer surface and
hides its lower edge. (Tucked behind the ears instead, a draft
avatar showed bare skin from the cheek to the back of the ear at 45 and 90 degrees.)

Fitting it to the portrait (`build_curtain`), in the reference view:

1. Radius. A column starts at the shell's radius and never comes closer to the head than `CLEARANCE_M`
   (ears, cheeks and neck stay inside). Row by row, each side's radii are scaled so that the curtain's
   outermost projected point meets the outline of head ∪ hair mask at that image row; the unseen back
   blends the two sides' scales.
2. Length. Each side hangs down to the lowest image row, contiguous from the shell, where the hair mask
   shows hair outside the rendered head; the back ends at the mean of the two sides (hair ends roughly
   level), with a few millimetres of smooth raggedness (strand ends). Sides without hair below the
   shell (short hair, bald heads) give no curtain at all.

The curtain is bound to the rigid hair triangles of the head (`perse.synth.binding`), so it follows any
pose; its texture coordinates run down the shell's own texture below each column's top
(`column_sources`), so it takes the hair's texture (and every hair-colour variant's recolouring) as
strands that continue the shell's. A per-vertex shade darkens the strand
ends and varies strand brightness a little; where the portrait sees the curtain, the shade takes the
photo's own light and dark locks (`perse.synth.curtain_locks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from perse.geometry.easing import smoothstep
from perse.geometry.rotations import best_rotation
from perse.geometry.triangles import barycentric, closest_point_on_triangles
from perse.synth.binding import Binding, apply_binding, bind_to_mesh
from perse.synth.mesh_primitives import grid_faces
from perse.synth.noise import periodic_value_noise

FRONT_AZIMUTH_RAD = np.radians(75.0)   # columns run from here (beside the face, over the ears) round the back,
FRONT_MIN_RAD = np.radians(55.0)       # or from as far forward as this where the portrait's hair frames the face
CLEARANCE_M = 0.004                    # closest approach of the curtain to the head surface
MAX_REACH_M = 0.08                     # farthest the curtain stands off the head
MAX_DROP_M = 0.25                      # longest curtain, below the skull centre
MIN_LENGTH_M = 0.02                    # a side whose hair ends within this of the shell has no curtain
RAGGED_M = 0.006                       # amplitude of the strand ends' raggedness
COLUMNS, ROWS = 96, 28
FRONT_TUCK, FRONT_TUCK_RAD = 0.7, np.radians(15.0)   # how far, and over what angle, the front edges turn in
TUCK_UNDER_M = 0.001                   # a column starts this far inside the shell's surface
SOURCE_REACH = 0.8                     # of the shell below its widest point whose texture a column runs down
TEXELS_PER_CELL = 4                    # curtain texture resolution: texels per grid cell, each way


def grid_shape(num_vertices: int) -> tuple[int, int]:
    """(rows, columns) of a curtain grid of `num_vertices` vertices (ROWS rows)."""
    if num_vertices % ROWS:
        raise ValueError(f"a curtain has {ROWS} rows of vertices, not {num_vertices} vertices")
    return ROWS, num_vertices // ROWS


@dataclass
class HairCurtain:
    """A bound sheet of hair with a texture of its own, read from the head's.

    binding: per-vertex `Binding` to the head mesh (N = ROWS * COLUMNS vertices, row-major); faces:
    (M, 3) int64 into those vertices; shade: (N,) albedo multiplier in (0, `perse.synth.curtain_locks.LOCK_SHADE_RANGE`[1]] (above 1
    where the photo shows a lock lighter than the texture above it); sources: (H, W, 2) for every texel
    of the curtain's texture, the head-texture uv it shows (`texture`).

    The curtain's texels come from several UV islands of the head's layout (scalp and back of the head,
    both sides of the seam down the back); a curtain triangle whose corners pointed into different
    islands would interpolate across everything between them, so the curtain keeps its own texture and
    the head texture is resampled into it, texel by texel."""

    binding: Binding
    faces: np.ndarray
    shade: np.ndarray
    sources: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.shade.shape[0])

    @property
    def uvs(self) -> np.ndarray:
        """(N, 2) the vertices' coordinates in the curtain's own texture: the grid's corners on the
        corner texels' centres."""
        h, w = self.sources.shape[:2]
        rows, cols = grid_shape(self.num_vertices)
        y, x = np.meshgrid(np.linspace(0, h - 1, rows), np.linspace(0, w - 1, cols), indexing="ij")
        return np.stack([(x.ravel() + 0.5) / w, 1.0 - (y.ravel() + 0.5) / h], axis=1)

    def texture(self, head_texture: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8: the curtain's texture, `head_texture` (S, S, 3) uint8 at its sources."""
        from perse.geometry.sampling import bilinear_sample
        from perse.synth.uv_atlas import uv_to_texel

        h, w = self.sources.shape[:2]
        px = uv_to_texel(self.sources.reshape(-1, 2), head_texture.shape[0])
        rgb = bilinear_sample(head_texture[..., :3], px)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8).reshape(h, w, 3)

    def texel_colors(self, head_texture: np.ndarray) -> np.ndarray:
        """(N, 3) float64 in [0, 1]: the head texture's colour at each vertex (unshaded), read at the
        vertex's own source (the vertices sit on texel centres of `sources`)."""
        from perse.geometry.sampling import bilinear_sample
        from perse.synth.uv_atlas import uv_to_texel

        h, w = self.sources.shape[:2]
        rows, cols = grid_shape(self.num_vertices)
        vertex_sources = self.sources[np.linspace(0, h - 1, rows).round().astype(int)][
            :, np.linspace(0, w - 1, cols).round().astype(int)].reshape(-1, 2)
        return bilinear_sample(head_texture[..., :3], uv_to_texel(vertex_sources, head_texture.shape[0])) / 255.0

    def posed(self, head_vertices: np.ndarray, head_faces: np.ndarray) -> np.ndarray:
        """(N, 3) curtain vertices on a posed head (V, 3) with the bound mesh's faces (F, 3)."""
        return np.asarray(apply_binding(self.binding, np.asarray(head_vertices, np.float64), head_faces))


    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays `from_arrays` reads, with a ``curtain_`` prefix (for the hair layer's .npz)."""
        return {"curtain_face": self.binding.face.astype(np.int64),
                "curtain_local": self.binding.local.astype(np.float32),
                "curtain_faces": self.faces.astype(np.int64), "curtain_sources": self.sources.astype(np.float32),
                "curtain_shade": self.shade.astype(np.float32)}

    @classmethod
    def from_arrays(cls, z) -> "HairCurtain | None":
        """Inverse of `arrays` on a mapping (an open .npz); None when it holds no curtain."""
        if "curtain_face" not in z:
            return None
        if "curtain_local" not in z or "curtain_sources" not in z:
            raise ValueError("its curtain was made by an older build")
        return cls(Binding(z["curtain_face"].astype(np.int64), z["curtain_local"].astype(np.float64)),
                   z["curtain_faces"].astype(np.int64), z["curtain_shade"].astype(np.float64),
                   z["curtain_sources"].astype(np.float64))

    def check(self, num_faces: int | None = None) -> str:
        """'' when consistent (with a head of `num_faces` triangles, if given), else what is wrong."""
        n = self.num_vertices
        b = self.binding
        if b.face.shape != (n,) or b.local.shape != (n, 3) or self.shade.shape != (n,):
            return "its curtain arrays disagree in length"
        if n and (b.face.min() < 0 or (num_faces is not None and b.face.max() >= num_faces)):
            return "its curtain is bound to triangles the head does not have"
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= n):
            return "its curtain faces index missing vertices"
        if n % ROWS:
            return f"its curtain is not a grid of {ROWS} rows"
        if self.sources.ndim != 3 or self.sources.shape[2] != 2 or min(self.sources.shape[:2]) < 2:
            return "its curtain texture sources are not an (H, W, 2) grid"
        if not all(np.isfinite(a).all() for a in (b.local, self.sources, self.shade)):
            return "its curtain holds non-finite values"
        return ""


# --------------------------------------------------------------------------------------------------
# Head frame
# --------------------------------------------------------------------------------------------------
def to_head_frame(points: np.ndarray, centre: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, 3) (side, up, front) coordinates of world points in the frame of the posed head."""
    return (points - centre) @ rotation


def from_cylinder(azimuth: np.ndarray, height: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(..., 3) head-frame points at azimuth (0 = front, +pi/2 = +side), height and horizontal radius."""
    return np.stack([radius * np.sin(azimuth), height, radius * np.cos(azimuth)], axis=-1)


def angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| wrapped to [0, pi]."""
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------
def column_tops(shell: np.ndarray, thickness: np.ndarray, azimuths: np.ndarray, bin_rad: float = np.radians(6.0),
                min_thickness: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Start height and radius (J,) of each column: the widest point (largest horizontal radius) of the
    shell near the column's azimuth, shell (N, 3 head-frame surface points, `thickness` (N,) m), just
    inside its surface, so the curtain leaves the shell where it curves back in (hair falls from its
    widest point) and the junction stays hidden. NaN where the shell is thinner than `min_thickness`."""
    az = np.arctan2(shell[:, 0], shell[:, 2])
    r = np.hypot(shell[:, 0], shell[:, 2])
    top_y = np.full(len(azimuths), np.nan)
    top_r = np.full(len(azimuths), np.nan)
    for j, a in enumerate(azimuths):
        near = angle_gap(az, a) < bin_rad
        if not near.any() or thickness[near].max() < min_thickness:
            continue
        widest = np.nonzero(near)[0][np.argmax(r[near])]
        top_y[j], top_r[j] = shell[widest, 1], r[widest] - TUCK_UNDER_M
    return top_y, top_r


def column_sources(shell: np.ndarray, thickness: np.ndarray, azimuth: np.ndarray, top_y: np.ndarray,
                   top_r: np.ndarray, t: np.ndarray, reach: float = SOURCE_REACH, bin_rad: float = np.radians(6.0),
                   min_thickness: float = 0.002) -> np.ndarray:
    """(I, J, 3) head-frame points whose shell texture each curtain vertex takes: down each column's
    meridian of the shell, from its top (`top_y`, `top_r` (J,)) at t = 0 to `reach` of the way to the
    shell's lowest point at least `min_thickness` thick near that azimuth (J,) at t = 1 (t: (I, 1)).

    The curtain then continues the texture the shell would show below its widest point, strands that
    change along their length, instead of repeating one texel down every column (which read as straight
    cut strips with a seam where they leave the shell). Points lie on chords of the shell; the caller
    snaps them to its surface. shell: (N, 3) head-frame surface points, thickness: (N,) m."""
    az = np.arctan2(shell[:, 0], shell[:, 2])
    r = np.hypot(shell[:, 0], shell[:, 2])
    low_y, low_r = top_y.copy(), top_r.copy()
    for j, a in enumerate(azimuth):
        near = (angle_gap(az, a) < bin_rad) & (thickness >= min_thickness)
        if near.any():
            lowest = np.nonzero(near)[0][np.argmin(shell[near, 1])]
            low_y[j], low_r[j] = min(shell[lowest, 1], top_y[j]), r[lowest]
    u = reach * t                                                              # (I, 1)
    return from_cylinder(azimuth[None], top_y[None] + u * (low_y - top_y)[None],
                         top_r[None] + u * (low_r - top_r)[None])


def clearance_radius(head: np.ndarray, azimuth: np.ndarray, height: np.ndarray, bin_rad: float = np.radians(5.0),
                     bin_m: float = 0.008) -> np.ndarray:
    """(I, J) smallest curtain radius at each (height row, azimuth column) grid point that clears the
    head (N, 3 head-frame vertices) by CLEARANCE_M; 0 where no head vertex is near."""
    az = np.arctan2(head[:, 0], head[:, 2])
    r = np.hypot(head[:, 0], head[:, 2])
    out = np.zeros(height.shape)
    for j in range(height.shape[1]):
        near = angle_gap(az, azimuth[j]) < bin_rad
        if not near.any():
            continue
        close = np.abs(height[:, j, None] - head[near, 1][None]) < bin_m           # (I, n)
        out[:, j] = np.where(close, r[near][None], 0.0).max(axis=1)
    return np.where(out > 0, out + CLEARANCE_M, 0.0)


def side_column(azimuth: np.ndarray, side: int) -> int:
    """Index of the column nearest the middle of the +side (side 0, azimuth pi/2) or -side (1, 3 pi/2)."""
    return int(np.argmin(angle_gap(azimuth, np.pi / 2 if side == 0 else 3 * np.pi / 2)))


def side_weights(azimuth: np.ndarray) -> np.ndarray:
    """(J, 2) weights of the +side and -side fits for columns at azimuths in [0, 2 pi): each side alone
    on its own half, blended across the back."""
    plus = 1.0 - smoothstep(np.pi - 0.6, np.pi + 0.6, azimuth)
    return np.stack([plus, 1.0 - plus], axis=1)


# --------------------------------------------------------------------------------------------------
# The reference view
# --------------------------------------------------------------------------------------------------
class ViewProjector:
    """Projection of head-frame points into the reference image (pixels), in float64."""

    def __init__(self, camera, centre: np.ndarray, rotation: np.ndarray):
        self.camera = camera.float64()
        self.centre, self.rotation = centre, rotation

    def __call__(self, head_points: np.ndarray) -> np.ndarray:
        """(..., 3) head-frame points -> (..., 2) pixels."""
        world = head_points @ self.rotation.T + self.centre
        px = self.camera.project(torch.from_numpy(world.reshape(-1, 3))).numpy()
        return px.reshape(world.shape[:-1] + (2,))

    def metres_per_px(self) -> float:
        """Metres one pixel spans at the skull centre's depth."""
        return float(self.camera.to_camera(torch.from_numpy(self.centre[None]))[0, 2] / self.camera.K[0, 0])

    def side_sign(self) -> int:
        """+1 when the head's +side lies toward larger image x, else -1."""
        side = self(from_cylinder(np.array([np.pi / 2]), np.zeros(1), np.full(1, 0.1)))[0, 0]
        return int(np.sign(side - self(np.zeros((1, 3)))[0, 0]) or 1)


def outline_extent(outline: np.ndarray, rows: np.ndarray, axis_x: np.ndarray, side: int) -> np.ndarray:
    """(K,) distance in px from `axis_x` (K,) to the outermost `outline` (H, W) pixel on `side` (+1 =
    toward larger x) of each image row `rows` (K,); 0 where the row holds none (or lies off the image)."""
    h, w = outline.shape
    out = np.zeros(len(rows))
    for k, (y, x0) in enumerate(zip(np.round(rows).astype(int), axis_x)):
        if not 0 <= y < h:
            continue
        xs = np.nonzero(outline[y])[0]
        xs = xs[(xs - x0) * side > 0]
        if xs.size:
            out[k] = np.abs(xs - x0).max()
    return out


def hair_bottom_row(hair_outside: np.ndarray, top_row: float, axis_x: float, side: int, gap_px: int) -> float:
    """The lowest image row of the run of rows, contiguous (gaps up to `gap_px`) from `top_row` down,
    holding pixels of `hair_outside` (H, W: hair not covered by the head) on `side` of `axis_x`."""
    h, w = hair_outside.shape
    cols = np.arange(w)
    half = (cols - axis_x) * side > 0
    has = (hair_outside[:, half].sum(axis=1) >= 2)
    row, last, gap = int(max(top_row, 0)), top_row, 0
    while row < h and gap <= gap_px:
        if has[row]:
            last, gap = row, 0
        else:
            gap += 1
        row += 1
    return float(last)


def ragged_ends(azimuth: np.ndarray, seed: int) -> np.ndarray:
    """(J,) smooth offsets in [-RAGGED_M, RAGGED_M]: uneven strand ends, periodic around the head."""
    turn = azimuth / (2 * np.pi) * 40.0
    return RAGGED_M * (2.0 * periodic_value_noise(turn, np.zeros_like(turn), 40, seed) - 1.0)


def strand_shade(azimuth: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
    """(I, J) albedo multiplier: strands of slightly varying brightness, darker toward their ends."""
    turn = azimuth / (2 * np.pi) * 300.0
    grain = periodic_value_noise(turn, np.zeros_like(turn), 300, seed + 1)           # (J,)
    return (0.88 + 0.12 * grain)[None] * (1.0 - 0.15 * smoothstep(0.6, 1.0, t))


def build_curtain(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
                  canonical: np.ndarray, shell_mask: np.ndarray, thickness: np.ndarray, normals: np.ndarray,
                  centre: np.ndarray, camera, head_alpha: np.ndarray, hair: np.ndarray,
                  person_outline: np.ndarray | None = None, exclude: np.ndarray | None = None,
                  seed: int = 0) -> HairCurtain | None:
    """Fit the curtain to the portrait's hair (see the module docstring); None without hair below the shell.

    vertices: (V, 3) posed reference-view head (world); faces: (F, 3); uvs / uv_faces: the head's
    texture layout; canonical: (V, 3) the head's canonical vertices (gives the head's orientation);
    shell_mask: (V,) bool vertices of the shell regions; thickness: (V,) shell thickness (m); normals:
    (V, 3) unit vertex normals; centre: (3,) posed skull centre; camera: the fitted `Camera`;
    head_alpha: (H, W) coverage of the head render (no shell); hair: (H, W) hair mask in [0, 1];
    person_outline: (H, W) bool, the person's own outline where it is the head's (above the mouth
    corners): the radius fit takes it too, as the colour-modelled hair mask stops short of soft hair
    edges; exclude: (V,) bool vertices the clearance ignores (eyeballs).
    """
    rotation = best_rotation(canonical[shell_mask], vertices[shell_mask])
    head = to_head_frame(vertices if exclude is None else vertices[~exclude], centre, rotation)
    on = shell_mask & (thickness > 0)
    shell_world = vertices + thickness[:, None] * normals
    shell = to_head_frame(shell_world[on], centre, rotation)
    project = ViewProjector(camera, centre, rotation)
    head_px = head_alpha > 0.5
    outline = head_px | (hair > 0.5) | (False if person_outline is None else person_outline)
    view = _View(project, outline, outline & ~head_px, hair > 0.5, project.metres_per_px(), project.side_sign())
    sheet = _fit_sheet(shell, thickness[on], head, view, (FRONT_AZIMUTH_RAD, FRONT_AZIMUTH_RAD), seed)
    if sheet is None:
        return None
    # Where the portrait's hair frames the face, the sheet starts further forward, over the cheeks' sides.
    sheet = _fit_sheet(shell, thickness[on], head, view, hair_front_azimuths(sheet, view), seed) or sheet
    azimuth, top_y, top_r, height, radius, t = (sheet[k] for k in ("azimuth", "top_y", "top_r", "height",
                                                                    "radius", "t"))
    points = from_cylinder(azimuth[None], height, radius).reshape(-1, 3)
    world = points @ rotation.T + centre
    shell_faces = shell_mask[faces].all(axis=1)
    binding = bind_to_mesh(world, vertices, faces, face_mask=shell_faces)
    # Texture: the shell's own, run down each column's meridian (`column_sources`), TEXELS_PER_CELL
    # texels to a grid cell.
    h, w = (ROWS - 1) * TEXELS_PER_CELL + 1, (COLUMNS - 1) * TEXELS_PER_CELL + 1
    fine_az = np.interp(np.linspace(0, COLUMNS - 1, w), np.arange(COLUMNS), azimuth)
    fine = [np.interp(fine_az, azimuth, x) for x in (top_y, top_r)]
    sources = column_sources(shell, thickness[on], fine_az, *fine, np.linspace(0.0, 1.0, h)[:, None])
    sources = sources.reshape(-1, 3) @ rotation.T + centre
    source_uv = surface_uvs(sources, shell_world, faces, uvs, uv_faces, shell_faces).reshape(h, w, 2)
    shade = strand_shade(azimuth, t, seed).reshape(-1)
    return HairCurtain(binding=binding, faces=grid_faces(ROWS, COLUMNS, wrap_cols=False).astype(np.int64),
                       shade=shade, sources=source_uv)


def surface_uvs(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
                face_mask: np.ndarray) -> np.ndarray:
    """(P, 2) texture coordinates of the closest point to each of `points` (P, 3) on the mesh
    (`vertices` (V, 3), `faces` (F, 3), `uvs` / `uv_faces` its layout), among the triangles of `face_mask`."""
    face = bind_to_mesh(points, vertices, faces, face_mask=face_mask).face
    a, b, c = (vertices[faces[face, i]] for i in range(3))
    bary = np.clip(barycentric(closest_point_on_triangles(points, a, b, c), a, b, c), 0.0, None)
    bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
    return (bary[..., None] * uvs[uv_faces[face]]).sum(axis=1)


@dataclass
class _View:
    """The reference view as the sheet fit reads it: projection, outline (head ∪ hair ∪ person), hair
    outside the head, the hair mask, metres per pixel at the skull centre, and the image x direction
    (+1 / -1) of the head's +side."""

    project: ViewProjector
    outline: np.ndarray
    hair_outside: np.ndarray
    hair: np.ndarray
    mpp: float
    plus_side: int


def _fit_sheet(shell: np.ndarray, thickness: np.ndarray, head: np.ndarray, view: _View,
               front: tuple[float, float], seed: int) -> dict | None:
    """Columns from azimuth front[0] (the +side) round the back to 2 pi - front[1], fitted to the view:
    {"azimuth" (J,), "top_y", "top_r" (J,), "height", "radius" (I, J), "t" (I, 1)}; None without hair
    below the shell."""
    azimuth = np.linspace(front[0], 2 * np.pi - front[1], COLUMNS)
    top_y, top_r = column_tops(shell, thickness, azimuth)
    if np.isnan(top_y).all():
        return None
    top_y, top_r = _fill_nan_nearest(top_y), _fill_nan_nearest(top_r)
    project, mpp = view.project, view.mpp
    signs = (view.plus_side, -view.plus_side)
    weights = side_weights(azimuth)

    # Length: per side, from the image; the back in between.
    bottoms, lengths = [], []
    for s, sign in enumerate(signs):
        j = side_column(azimuth, s)
        top_px = project(from_cylinder(azimuth[j:j + 1], top_y[j:j + 1], top_r[j:j + 1]))[0]
        axis_x = project(np.array([[0.0, top_y[j], 0.0]]))[0, 0]
        bottom_row = hair_bottom_row(view.hair_outside, top_px[1], axis_x, sign, gap_px=max(2, int(0.005 / mpp)))
        bottoms.append(top_y[j] - (bottom_row - top_px[1]) * mpp)
        lengths.append(top_y[j] - bottoms[-1])
    if max(lengths) < MIN_LENGTH_M:
        return None
    bottom = weights @ np.array(bottoms) + ragged_ends(azimuth, seed)
    bottom = np.minimum(np.clip(bottom, -MAX_DROP_M, None), top_y)     # zero-length columns stay at the top

    t = np.linspace(0.0, 1.0, ROWS)[:, None]
    height = top_y[None] + t * (bottom - top_y)[None]                    # (I, J)
    # Hair that falls over an ear does not tuck back in below it: the clearance only grows downward.
    lo = np.maximum.accumulate(clearance_radius(head, azimuth, height), axis=0)
    radius = np.maximum(top_r[None].repeat(ROWS, 0), lo)
    hi = np.maximum(lo, top_r[None]) + MAX_REACH_M

    # Radius: scale each side's rows until the outermost projected point meets the outline.
    for _ in range(3):
        px = project(from_cylinder(azimuth[None], height, radius))       # (I, J, 2)
        axis = project(from_cylinder(azimuth[None], height, np.zeros_like(radius)))
        lateral = px[..., 0] - axis[..., 0]
        scale = np.ones((ROWS, 2))
        for s, sign in enumerate(signs):
            reach = np.where((weights[:, s] > 0.5)[None], lateral * sign, -np.inf)
            jj = np.argmax(reach, axis=1)
            cur = reach[np.arange(ROWS), jj]
            target = outline_extent(view.outline, px[np.arange(ROWS), jj, 1], axis[np.arange(ROWS), jj, 0], sign)
            ok = (cur > 1.0) & (target > 0)
            scale[ok, s] = target[ok] / cur[ok]
        radius = np.clip(radius * np.exp(np.log(np.clip(scale, 0.5, 2.0)) @ weights.T), lo, hi)
    # The front edges turn in toward the face, so the sheet reads as a lock, not a card seen edge-on.
    from_front = np.minimum(azimuth - front[0], 2 * np.pi - front[1] - azimuth)
    tuck = FRONT_TUCK * (1.0 - smoothstep(0.0, FRONT_TUCK_RAD, from_front))
    radius = _smooth_rows(radius + tuck[None] * (lo - radius))
    return {"azimuth": azimuth, "top_y": top_y, "top_r": top_r, "height": height, "radius": radius, "t": t}


def hair_front_azimuths(sheet: dict, view: _View) -> tuple[float, float]:
    """Per side, the azimuth where the portrait's hair begins beside the face, from the sheet's lower
    rows: the innermost hair pixel of each row, seen on a cylinder of the sheet's radius there; clipped
    to [FRONT_MIN_RAD, FRONT_AZIMUTH_RAD]."""
    out = []
    azimuth, height, radius = sheet["azimuth"], sheet["height"], sheet["radius"]
    lower = sheet["t"][:, 0] >= 0.35
    for s, sign in enumerate((view.plus_side, -view.plus_side)):
        j = side_column(azimuth, s)
        pts = from_cylinder(np.full(lower.sum(), azimuth[j]), height[lower, j], radius[lower, j])
        px = view.project(pts)
        axis = view.project(from_cylinder(np.zeros(lower.sum()), height[lower, j], np.zeros(lower.sum())))
        angles = []
        for (x, y), (x0, _), r in zip(px, axis, radius[lower, j]):
            row = int(round(y))
            if not 0 <= row < view.hair.shape[0]:
                continue
            xs = np.nonzero(view.hair[row])[0]
            xs = xs[((xs - x0) * sign > 0) & (np.abs(xs - x0) <= abs(x - x0))]
            if xs.size:
                angles.append(np.arcsin(np.clip(np.abs(xs - x0).min() * view.mpp / r, 0.0, 1.0)))
        out.append(float(np.clip(np.median(angles), FRONT_MIN_RAD, FRONT_AZIMUTH_RAD)) if angles
                   else FRONT_AZIMUTH_RAD)
    return out[0], out[1]


def _fill_nan_nearest(values: np.ndarray) -> np.ndarray:
    """Fill NaNs of a (J,) column signal from the nearest valid column."""
    ok = ~np.isnan(values)
    idx = np.arange(len(values))
    near = idx[ok][np.argmin(np.abs(idx[:, None] - idx[ok][None]), axis=1)]
    return values[near]


def _smooth_rows(radius: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Light smoothing of an (I, J) radius grid along both axes (ends held by edge padding)."""
    r = radius.copy()
    for _ in range(iterations):
        p = np.pad(r, 1, mode="edge")
        r = 0.5 * r + 0.125 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])
    return r
