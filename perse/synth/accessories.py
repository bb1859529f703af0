"""Accessory geometry (glasses, hats, earrings) built on a head and bound to its surface.

Every accessory is built once in the head's canonical (neutral) space from its anatomy (landmarks,
regions, eyeballs), out of primitive meshes (`perse.synth.mesh_primitives`). Each accessory vertex is
then *bound* to the nearest allowed head triangle (`perse.synth.binding.bind_to_mesh`); evaluating the
binding on a deformed head (`apply_binding`) moves the accessory with any expression, jaw, neck or
head pose. Hats and glasses bind only to triangles that move rigidly with the skull (scalp, forehead,
nose bridge, ears; `BIND_REGIONS`), so they follow the head without wobbling with the cheeks; earrings
bind to the ears.

All geometry is numpy float64 in metres; faces are wound counter-clockwise seen from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.landmarks import EYE_LOWER_LID, EYE_UPPER_LID, FOREHEAD_TOP, GLABELLA
from perse.synth.anatomy import HeadAnatomy
from perse.synth.binding import Binding, apply_binding, bind_to_mesh
from perse.synth.mesh_primitives import grid_faces, merge, orient_faces, plate, torus, tube, uv_sphere


@dataclass
class Accessory:
    """One accessory mesh in canonical space, bound to the head.

    vertices: (N, 3); faces: (M, 3); colors: (N, 3) in [0, 1]; opacity: 1 = opaque (lenses < 1);
    binding: per-vertex `Binding` to the head mesh.
    """

    name: str
    category: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    opacity: float = 1.0
    specular: float = 0.3
    binding: Binding | None = None

    def posed(self, head_vertices) -> np.ndarray:
        """(N, 3) vertices on a deformed head (V, 3) of the same topology as the bound one."""
        if self.binding is None:
            raise PerseError(f"accessory {self.name} is not bound to a head")
        return np.asarray(apply_binding(self.binding, _np(head_vertices), self._head_faces))

    _head_faces: np.ndarray = field(default=None, repr=False)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if hasattr(x, "detach") else np.asarray(x, np.float64)


def _color(n: int, rgb) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float64), (n, 3)).copy()


def face_mask(anatomy: HeadAnatomy, regions: list[str]) -> np.ndarray:
    """(F,) bool: the head triangles whose three corners all lie in the named regions."""
    ids = [anatomy.region_id(r) for r in regions]
    corner = np.isin(anatomy.regions[anatomy.faces], ids)
    return corner.all(axis=1)


def _side_extent(anatomy: HeadAnatomy, y: np.ndarray, z: np.ndarray, side: int, radius: float = 0.008,
                 exclude: tuple[str, ...] = ("ears", "eyeballs")) -> np.ndarray:
    """Largest side*x of head vertices near each (y, z) (within `radius`); NaN where none."""
    v = anatomy.vertices[~anatomy.vertex_mask(list(exclude))]
    v = v[np.sign(v[:, 0]) == side]
    d = np.hypot(v[None, :, 1] - y[:, None], v[None, :, 2] - z[:, None])
    xs = np.where(d < radius, side * v[None, :, 0], -np.inf).max(axis=1)
    return np.where(np.isfinite(xs), xs, np.nan)


# Frames are 2-4 mm thick (tube diameter = 2 x rim radius), like real acetate and metal frames.
GLASSES_STYLE = {
    #              half-w  half-h  exponent  rim radius  frame colour            lens colour         lens opacity
    "round":       (0.0225, 0.0225, 2.0, 0.0012, (0.78, 0.62, 0.30), (0.85, 0.90, 0.95), 0.12),
    "rectangular": (0.0265, 0.0175, 5.0, 0.0019, (0.04, 0.04, 0.045), (0.85, 0.90, 0.95), 0.12),
    "sunglasses":  (0.0290, 0.0240, 2.6, 0.0018, (0.10, 0.10, 0.11), (0.04, 0.05, 0.07), 0.85),
}


def build_glasses(anatomy: HeadAnatomy, style: str) -> list[Accessory]:
    """Frames (rims, bridge, temples to the ears) and lenses, in canonical space (unbound)."""
    if style not in GLASSES_STYLE:
        raise PerseError(f"unknown glasses style '{style}'; choose one of {', '.join(GLASSES_STYLE)}")
    hw, hh, expo, rim_r, frame_col, lens_col, lens_op = GLASSES_STYLE[style]
    a = anatomy
    verts_all = a.vertices
    eyes = [(a.eye_centers[0], a.lmk(*EYE_UPPER_LID["R"], *EYE_LOWER_LID["R"]), -1),
            (a.eye_centers[1], a.lmk(*EYE_UPPER_LID["L"], *EYE_LOWER_LID["L"]), 1)]
    bridge_pt = a.landmarks[GLABELLA]
    nose = a.vertex_mask(["nose"])
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    frame_parts, lens_parts, rims = [], [], []
    for centre, lid_pts, side in eyes:
        c = np.array([lid_pts[:, 0].mean(), lid_pts[:, 1].mean() + 0.002, 0.0])
        # Lens plane in front of everything inside the outline: eyelids, brows, nose, cheeks.
        # Lens plane: in front of the eye area (lids, brows, cheeks) under the lens ...
        in_rect = (np.abs(verts_all[:, 0] - c[0]) < hw) & (np.abs(verts_all[:, 1] - c[1]) < hh)
        c[2] = verts_all[in_rect & ~nose, 2].max() + 0.006
        # ... and clear of the side of the nose where the lens overlaps it.
        inside = ((np.abs(verts_all[:, 0] - c[0]) / hw) ** expo + (np.abs(verts_all[:, 1] - c[1]) / hh) ** expo) < 0.9
        if (inside & nose).any():
            c[2] = max(c[2], verts_all[inside & nose, 2].max() + 0.002)
        wrap = np.radians(8.0) * side  # outer edge slightly back, like real frames
        ex = np.array([np.cos(wrap), 0.0, -np.sin(wrap)])
        ey = np.array([0.0, 1.0, 0.0])
        cu, su = np.cos(ang), np.sin(ang)
        u = hw * np.sign(cu) * np.abs(cu) ** (2 / expo)
        v = hh * np.sign(su) * np.abs(su) ** (2 / expo)
        if style == "sunglasses":  # aviator drop: the lower outer part hangs lower
            v = np.where(v < 0, v * (1.0 + 0.25 * np.clip(side * u / hw, 0, 1)), v)
        outline = c + u[:, None] * ex + v[:, None] * ey
        rims.append((outline, c, ex))
        frame_parts.append(tube(outline, rim_r, sides=8, closed=True))
        lens_parts.append(plate(c + 0.96 * (u[:, None] * ex + v[:, None] * ey), np.cross(ex, ey), 0.0008))
    # Bridge: from the inner rim points of both lenses, arching over the nose bridge.
    inner = [r[0][np.argmin(np.abs(r[0][:, 0] - bridge_pt[0]) - 0.3 * r[0][:, 1])] for r in rims]
    t = np.linspace(0, 1, 12)[:, None]
    mid = np.array([bridge_pt[0], max(inner[0][1], inner[1][1]) + 0.003,
                    max(bridge_pt[2] + 0.004, 0.5 * (inner[0][2] + inner[1][2]))])
    bridge = (1 - t) ** 2 * inner[0] + 2 * t * (1 - t) * mid + t ** 2 * inner[1]
    frame_parts.append(tube(bridge, rim_r * 1.1, sides=8))
    # Temples: hinge at the outer rim, along the side of the head to the ear root, then down behind it.
    ears = a.vertices[a.vertex_mask(["ears"])]
    for outline, c, ex in rims:
        side = int(np.sign(c[0]))
        hinge = outline[np.argmax(side * outline[:, 0] + 0.2 * outline[:, 1])]
        ear = ears[np.sign(ears[:, 0]) == side]
        if ear.shape[0] == 0:
            raise PerseError("head model has no ear vertices on one side; cannot place glasses temples")
        ear_top = ear[np.argmax(ear[:, 1])]
        ear_y = ear_top[1] - 0.004
        ear_z = ear[:, 2].mean()
        n = 24
        s = np.linspace(0, 1, n)
        y = hinge[1] + (ear_y - hinge[1]) * smoothstep(0.0, 1.0, s)
        z = hinge[2] - 0.004 + (ear_z - hinge[2] + 0.004) * s
        head_x = _side_extent(a, y, z, side)
        head_x = np.where(np.isnan(head_x), side * hinge[0], head_x)  # in front of the face: no constraint
        # Keep clear of the head and never narrower than the hinge (the frame is rigid, not hugging).
        x = np.maximum(head_x + 0.004, side * hinge[0] + 0.002)
        x = np.maximum.accumulate(x)  # the temple only ever widens toward the ear
        x = np.convolve(np.pad(x, 2, mode="edge"), np.ones(5) / 5, mode="valid")  # a straight, rigid arm
        x = np.maximum.accumulate(np.maximum(x, head_x + 0.003))
        path = np.stack([side * x, y, z], 1)
        tail_t = np.linspace(0, 1, 8)[1:, None]
        tail = path[-1] + tail_t * np.array([0.0, -0.022, -0.012]) + (tail_t ** 2) * np.array([0, 0.004, 0])
        tail[:, 0] = side * (np.abs(path[-1, 0]) - 0.002 * tail_t[:, 0])
        path = np.concatenate([hinge[None], path[1:], tail])
        frame_parts.append(tube(path, rim_r * 1.05, sides=6))
    fv, ff = merge(frame_parts)
    lv, lf = merge(lens_parts)
    return [Accessory("glasses_frame", "glasses", fv, ff, _color(fv.shape[0], frame_col), 1.0, 0.6),
            Accessory("glasses_lenses", "glasses", lv, lf, _color(lv.shape[0], lens_col), lens_op, 0.9)]


def _head_radius_grid(anatomy: HeadAnatomy, centre: np.ndarray, dirs: np.ndarray, cone_deg: float = 7.0
                      ) -> np.ndarray:
    """Largest distance from `centre` of head vertices within a cone around each direction.

    dirs: (..., 3) unit directions -> (...,) radii; NaN where no vertex lies in the cone.
    """
    v = anatomy.vertices[~anatomy.vertex_mask(["eyeballs"])] - centre
    r = np.linalg.norm(v, axis=1)
    u = v / r[:, None]
    flat = dirs.reshape(-1, 3)
    cos = flat @ u.T
    within = cos > np.cos(np.radians(cone_deg))
    out = np.where(within, r[None] * cos, -np.inf).max(axis=1)
    out = np.where(np.isfinite(out), out, np.nan)
    return out.reshape(dirs.shape[:-1])


def _smooth_grid(r: np.ndarray, iters: int) -> np.ndarray:
    """Fill NaNs and smooth a (rows, cols) radius grid (cols wrap around)."""
    r = r.copy()
    for _ in range(50):
        if not np.isnan(r).any():
            break
        padded = np.pad(r, ((1, 1), (0, 0)), mode="edge")
        neighbours = np.stack([np.roll(r, 1, 1), np.roll(r, -1, 1), padded[:-2], padded[2:]])
        with np.errstate(all="ignore"):
            fill = np.nanmax(np.where(np.isnan(neighbours), -np.inf, neighbours), axis=0)
        r = np.where(np.isnan(r) & np.isfinite(fill), fill, r)
    r = np.where(np.isnan(r), np.nanmean(r), r)
    for _ in range(iters):
        up = np.pad(r, ((1, 1), (0, 0)), mode="edge")
        r = np.maximum(r, 0.2 * r + 0.2 * (np.roll(r, 1, 1) + np.roll(r, -1, 1) + up[:-2] + up[2:]))
    return r


def _cap_frame(tilt_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal hat frame: pole axis tilted back by `tilt_deg`, e1 toward the face, e2 to the side."""
    t = np.radians(tilt_deg)
    pole = np.array([0.0, np.cos(t), -np.sin(t)])
    e1 = np.array([0.0, np.sin(t), np.cos(t)])      # forward, perpendicular to the pole
    e2 = np.cross(pole, e1)
    return pole, e1, e2


def _shell(anatomy: HeadAnatomy, front_y: float, margin: float, tilt_deg: float, rows: int = 28,
           cols: int = 96, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dome hugging the skull from the crown down to a rim plane through the forehead at `front_y`.

    Returns grid points (rows, cols, 3), polar angles (rows,) and azimuths (cols,) (0 = front).
    """
    centre = anatomy.head_center
    pole, e1, e2 = _cap_frame(tilt_deg)
    # Polar angle of the rim: where the forehead surface reaches height front_y on the midline.
    mid = anatomy.vertices[(np.abs(anatomy.vertices[:, 0]) < 0.006) & (anatomy.vertices[:, 2] > centre[2])]
    front_pt = mid[np.argmin(np.abs(mid[:, 1] - front_y))]
    d = front_pt - centre
    theta_max = np.arccos(np.clip(d @ pole / np.linalg.norm(d), -1, 1))
    theta = np.linspace(0.0, theta_max, rows)
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    T, Pp = np.meshgrid(theta, phi, indexing="ij")
    dirs = (np.cos(T)[..., None] * pole + np.sin(T)[..., None] * (np.cos(Pp)[..., None] * e1
                                                                  + np.sin(Pp)[..., None] * e2))
    r = _head_radius_grid(anatomy, centre, dirs)
    r = _smooth_grid(r, iters=4) + margin
    if extra is not None:
        r = r + extra
    r[0] = r[0].mean()  # a single crown point
    return centre + r[..., None] * dirs, theta, phi


def _double_sided(grid: np.ndarray, thickness: float, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed thin solid from a (rows, cols, 3) dome grid: outer surface, inner surface, rim strip."""
    rows, cols = grid.shape[:2]
    radial = grid - centre
    radial /= np.maximum(np.linalg.norm(radial, axis=-1, keepdims=True), 1e-12)
    outer = grid.reshape(-1, 3)
    inner = (grid - thickness * radial).reshape(-1, 3)
    f = grid_faces(rows, cols, wrap_cols=True)
    n = rows * cols
    c = np.arange(cols)
    last = (rows - 1) * cols
    rim = np.concatenate([np.stack([last + c, n + last + c, n + last + (c + 1) % cols], 1),
                          np.stack([last + c, n + last + (c + 1) % cols, last + (c + 1) % cols], 1)])
    verts = np.concatenate([outer, inner])
    # Orientation: outer faces away from the centre, inner toward it, rim outward-down.
    fo = orient_faces(verts, f, np.broadcast_to(centre, (f.shape[0], 3)))
    fi = orient_faces(verts, f + n, np.broadcast_to(centre, (f.shape[0], 3)))[:, [0, 2, 1]]
    rim_ref = np.broadcast_to(grid[-2].mean(axis=0), (rim.shape[0], 3))
    fr = orient_faces(verts, rim, rim_ref)
    return verts, np.concatenate([fo, fi, fr])


BRIM_HALF_ANGLE_DEG = 45.0   # the cap's brim spans the front +- this (wider, it flaps over the temples)
HAT_COLORS = {"cap": (0.10, 0.17, 0.42), "beanie": (0.58, 0.12, 0.10)}


def build_hat(anatomy: HeadAnatomy, style: str) -> list[Accessory]:
    """A baseball cap (dome + brim + button) or a knitted beanie (thick dome + folded cuff + pompom)."""
    a = anatomy
    y10 = a.landmarks[FOREHEAD_TOP][1]
    brows_top = a.vertices[a.vertex_mask(["brows"]), 1].max()
    centre = a.head_center
    if style == "cap":
        front_y = 0.5 * (y10 + brows_top) + 0.006
        grid, theta, phi = _shell(a, front_y, margin=0.004, tilt_deg=22.0)
        rows, cols = grid.shape[:2]
        dome_v, dome_f = _double_sided(grid, 0.002, centre)
        # Panel seams and a slightly lighter crown: colour by azimuth and height.
        PH = np.concatenate([np.tile(phi, rows), np.tile(phi, rows)])
        seams = np.exp(-((np.mod(PH + np.pi / 6, np.pi / 3) - np.pi / 6) / 0.03) ** 2)
        base = np.array(HAT_COLORS["cap"])
        dome_c = base[None] * (1.0 - 0.35 * seams[:, None])
        # Brim: from the front part of the rim forward and slightly down.
        rim = grid[-1]
        front = np.cos(phi) > np.cos(np.radians(BRIM_HALF_ANGLE_DEG))
        idx = np.nonzero(front)[0]
        idx = idx[np.argsort(np.mod(phi[idx] + np.pi, 2 * np.pi))]
        rim_f = rim[idx]
        outward = rim_f - centre
        outward[:, 1] = 0.0
        outward /= np.linalg.norm(outward, axis=1, keepdims=True)
        fwd = np.cos(np.mod(phi[idx] + np.pi, 2 * np.pi) - np.pi)
        cut = np.cos(np.radians(BRIM_HALF_ANGLE_DEG + 2))
        length = 0.072 * np.clip((fwd - cut) / (1 - cut), 0, 1) ** 0.5
        t = np.linspace(0, 1, 8)
        brim = (rim_f[None] + (t[:, None, None] * length[None, :, None]) * outward[None]
                + (t[:, None, None] ** 2 * length[None, :, None] * np.array([0, -0.22, 0])))
        bv, bf = _brim_solid(brim, 0.003)
        button_v, button_f = uv_sphere(grid[0, 0] + 0.002 * (grid[0, 0] - centre) / np.linalg.norm(grid[0, 0] - centre),
                                       0.005, 6, 10)
        v, f = merge([(dome_v, dome_f), (bv, bf), (button_v, button_f)])
        colors = np.concatenate([dome_c, _color(bv.shape[0], base * 0.85), _color(button_v.shape[0], base)])
        return [Accessory("hat_cap", "hat", v, f, colors, 1.0, 0.15)]
    if style == "beanie":
        front_y = brows_top + 0.018
        rows, cols = 30, 144
        cuff_rows = 7
        extra = np.zeros((rows, cols))
        extra[-cuff_rows:] = 0.005
        grid, theta, phi = _shell(a, front_y, margin=0.009, tilt_deg=14.0, rows=rows, cols=cols, extra=extra)
        # Gather the crown a little higher (a knitted hat does not hug the skull top).
        radial = grid - centre
        crown_lift = 0.012 * np.cos(np.clip(theta / theta[-1] * np.pi / 2, 0, np.pi / 2)) ** 2
        grid = grid + crown_lift[:, None, None] * radial / np.linalg.norm(radial, axis=-1, keepdims=True)
        dome_v, dome_f = _double_sided(grid, 0.003, centre)
        PH = np.concatenate([np.tile(phi, rows), np.tile(phi, rows)])
        row_idx = np.concatenate([np.repeat(np.arange(rows), cols)] * 2)
        ribs = 0.5 + 0.5 * np.sin(PH * 48)
        base = np.array(HAT_COLORS["beanie"])
        cuff = (row_idx >= rows - cuff_rows).astype(np.float64)
        dome_c = base[None] * (0.82 + 0.22 * ribs[:, None]) * (1.0 - 0.12 * cuff[:, None])
        fold = tube(np.concatenate([grid[rows - cuff_rows], grid[rows - cuff_rows, :1]]), 0.003, sides=6)
        top = grid[0, 0] + 0.018 * (grid[0, 0] - centre) / np.linalg.norm(grid[0, 0] - centre)
        pom_v, pom_f = uv_sphere(top, 0.022, 10, 16)
        v, f = merge([(dome_v, dome_f), fold, (pom_v, pom_f)])
        colors = np.concatenate([dome_c, _color(fold[0].shape[0], base * 0.7),
                                 _color(pom_v.shape[0], np.array([0.93, 0.90, 0.85]))])
        return [Accessory("hat_beanie", "hat", v, f, colors, 1.0, 0.05)]
    raise PerseError(f"unknown hat style '{style}'; choose cap or beanie")


def _brim_solid(grid: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """A closed slab from a (rows, cols, 3) open sheet: top sheet, bottom sheet offset down, side strips."""
    rows, cols = grid.shape[:2]
    top = grid.reshape(-1, 3)
    bottom = (grid - np.array([0.0, thickness, 0.0])).reshape(-1, 3)
    n = rows * cols
    f = grid_faces(rows, cols, wrap_cols=False)
    verts = np.concatenate([top, bottom])
    up = np.array([0.0, 1.0, 0.0])
    ft = orient_faces(verts, f, (verts[f].mean(1) - up))
    fb = orient_faces(verts, f + n, (verts[f + n].mean(1) + up))
    ring = np.concatenate([np.arange(cols),                                   # rim row
                           np.arange(1, rows) * cols + cols - 1,              # right edge
                           (rows - 1) * cols + np.arange(cols - 2, -1, -1),   # tip row, back
                           np.arange(rows - 2, 0, -1) * cols])                # left edge
    k = np.arange(ring.size)
    i0, i1 = ring[k], ring[(k + 1) % ring.size]
    side = np.concatenate([np.stack([i0, i1, i1 + n], 1), np.stack([i0, i1 + n, i0 + n], 1)])
    centre = grid.reshape(-1, 3).mean(axis=0) - 0.5 * thickness * up
    fs = orient_faces(verts, side, np.broadcast_to(centre, (side.shape[0], 3)))
    return verts, np.concatenate([ft, fb, fs])


EARRING_COLORS = {"studs": (0.86, 0.86, 0.90), "hoops": (0.85, 0.66, 0.25)}
# A 7 mm stud: a bob that ends at the lobes still leaves it a few pixels at 512 px (a 5.6 mm one kept
# 37 px of the astronaut teacher's 1024 px portrait view, this one 41).
STUD_RADIUS_M = 0.0035


def build_earrings(anatomy: HeadAnatomy, style: str) -> list[Accessory]:
    """Studs (small spheres on the lobes) or hoops (tori hanging from the lobes)."""
    if style not in EARRING_COLORS:
        raise PerseError(f"unknown earrings style '{style}'; choose studs or hoops")
    a = anatomy
    ears = a.vertices[a.vertex_mask(["ears"])]
    parts = []
    for side in (-1, 1):
        ear = ears[np.sign(ears[:, 0]) == side]
        if ear.shape[0] < 4:
            raise PerseError("head model has no ear vertices on one side; cannot place earrings")
        y0 = ear[:, 1].min()
        lobe = ear[(ear[:, 1] > y0 + 0.003) & (ear[:, 1] < y0 + 0.009)]
        if lobe.shape[0] == 0:
            lobe = ear[np.argsort(ear[:, 1])[:4]]
        p = lobe[np.argmax(side * lobe[:, 0])]  # outer face of the lobe
        if style == "studs":
            # On the lobe's outer face, sunk 0.6 mm into it.
            parts.append(uv_sphere(p + np.array([side * (STUD_RADIUS_M - 0.0006), 0.0, 0.0]), STUD_RADIUS_M, 8, 12))
        else:
            R = 0.013   # a 26 mm hoop: its lower half hangs below a bob that ends at the lobes
            pierce = lobe.mean(axis=0)
            centre = pierce + np.array([side * 0.0005, -R + 0.002, 0.0])
            axis = np.array([1.0, 0.0, 0.15 * side])
            parts.append(torus(centre, axis, R, 0.0013, segments=32, sides=8))
    v, f = merge(parts)
    return [Accessory(f"earrings_{style}", "earrings", v, f, _color(v.shape[0], EARRING_COLORS[style]), 1.0, 0.9)]


ACCESSORY_LABEL_BASE = 100   # render label of category c's accessory geometry = ACCESSORY_LABEL_BASE + c
# Which head triangles each category binds to (rigid with the skull / ears).
BIND_REGIONS = {
    "glasses": ["nose", "forehead", "ears", "scalp"],
    "hat": ["scalp", "back_of_head", "forehead"],
    "earrings": ["ears"],
}


def bind_accessories(anatomy: HeadAnatomy, accessories: list[Accessory]) -> list[Accessory]:
    """Bind every accessory's vertices to its category's allowed head triangles (in place; returned)."""
    for acc in accessories:
        mask = face_mask(anatomy, BIND_REGIONS[acc.category])
        acc.binding = bind_to_mesh(acc.vertices, anatomy.vertices, anatomy.faces, face_mask=mask)
        acc._head_faces = anatomy.faces
    return accessories


def build_accessories(anatomy: HeadAnatomy, look: dict[str, str]) -> list[Accessory]:
    """Bound accessories for a look (categories glasses, hat, earrings; "none"/absent = nothing)."""
    out: list[Accessory] = []
    if look.get("glasses", "none") != "none":
        out += build_glasses(anatomy, look["glasses"])
    if look.get("hat", "none") != "none":
        out += build_hat(anatomy, look["hat"])
    if look.get("earrings", "none") != "none":
        out += build_earrings(anatomy, look["earrings"])
    return bind_accessories(anatomy, out)


class AccessoryCache:
    """Builds and binds each (category, variant) accessory once per head."""

    def __init__(self, anatomy: HeadAnatomy):
        self.anatomy = anatomy
        self._cache: dict[tuple[str, str], list[Accessory]] = {}

    def get(self, look: dict[str, str]) -> list[Accessory]:
        out: list[Accessory] = []
        for cat in ("glasses", "hat", "earrings"):
            variant = look.get(cat, "none")
            if variant == "none":
                continue
            key = (cat, variant)
            if key not in self._cache:
                self._cache[key] = build_accessories(self.anatomy, {cat: variant})
            out += self._cache[key]
        return out
