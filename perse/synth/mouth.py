"""The mouth interior of the synthetic head: teeth arches, gums, a tongue and a dark cavity lining.

The built-in head closes its mouth opening with a pocket behind the inner-lip loop (upper half skinned
to the skull, lower half to the jaw; `perse.head.builtin.mouth.mouth_pocket`). This module fills it:

- upper and lower teeth arches (individual crowns: incisors, canines, premolars, molars) along a
  parabola fitted inside the pocket, enamel-coloured with darker gaps, translucent incisal edges and
  yellower necks; the part of a crown outside the pocket is inside the head (the gums);
- a gum ridge along each arch and a tongue on the floor of the cavity;
- its own cavity (`cavity_bag`, drawn instead of the head's pocket, see `MouthPocket`) with a dark
  red-brown gradient that darkens with depth (the GL renderer has no occlusion: the darkness of a
  cavity has to be in the albedo), and a thin seal behind the slit of the neutral lips.

Upper teeth bind to skull-skinned pocket triangles, lower teeth and the tongue to jaw-skinned ones
(`perse.synth.accessories.bind_to_mesh`), and only to triangles that barely move with the non-jaw
expressions, so the teeth stay rigid while the lips smile and pucker. Everything is inside the head's
closed surface and the seal closes the lips' slit, so closed lips hide it in every view (only the slit's
colour changes); `jawOpen` shows it.

All geometry is numpy float64 in metres in the head's canonical frame (+y up, +z out of the face).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse import mesh_ops as mo
from perse.synth.accessories import (Accessory, Binding, _grid_faces, bind_to_mesh, merge, orient_faces, tube,
                                     uv_sphere)
from perse.geometry.easing import smoothstep
from perse.landmarks import LIPS_INNER
from perse.synth.anatomy import HeadAnatomy

# Crown sizes per half arch, midline to back (metres): width along the arch, height, labial-lingual
# thickness (adult averages, rounded). Lower incisors are narrower, lower canines taller.
UPPER_TEETH = (("incisor", 0.0085, 0.0105, 0.0068), ("incisor", 0.0066, 0.0090, 0.0060),
               ("canine", 0.0076, 0.0100, 0.0078), ("premolar", 0.0069, 0.0082, 0.0088),
               ("premolar", 0.0066, 0.0076, 0.0088), ("molar", 0.0100, 0.0072, 0.0108))
LOWER_TEETH = (("incisor", 0.0054, 0.0090, 0.0058), ("incisor", 0.0059, 0.0092, 0.0060),
               ("canine", 0.0068, 0.0105, 0.0072), ("premolar", 0.0070, 0.0082, 0.0078),
               ("premolar", 0.0071, 0.0080, 0.0082), ("molar", 0.0110, 0.0075, 0.0102))
ENAMEL = np.array([0.97, 0.95, 0.88])
INCISAL = np.array([0.80, 0.82, 0.84])   # thin enamel at the biting edge lets the dark mouth show
CERVICAL = np.array([0.88, 0.80, 0.62])  # dentine shows through near the gum
GUM = np.array([0.66, 0.30, 0.32])
TONGUE = np.array([0.72, 0.36, 0.36])
CAVITY_SHALLOW = np.array([0.34, 0.11, 0.10])
CAVITY_DEEP = np.array([0.06, 0.02, 0.02])
# The incisors sit right behind the lips, so a smile that lifts the upper lip shows the crowns, not the
# cavity above them (4.8 mm and 2.4 mm hid the upper teeth of a smiling portrait behind a dark band).
SETBACK = 0.0018         # m from the inner-lip loop's front to the incisors' labial face
SHOW = 0.0040            # m the upper incisal edges hang below the neutral upper lip's inner edge
OVERBITE = 0.0014        # m the lower incisal edges rise above the upper ones (behind them)
SEAL_DEPTH = 0.0006      # m behind the lip loop: the seal must stay behind the lower lip's surface
SEAL_OVERLAP = 0.0003    # m the seal reaches past each lip line into the lips
SEAL = np.array([0.30, 0.10, 0.10])
RIGID_MOTION = 0.0010    # m: pocket triangles moving more than this under a non-jaw expression are not anchors


@dataclass
class MouthPocket:
    """The head's mouth cavity in canonical space.

    faces: (P,) indices of the pocket's triangles behind the lips (the head's own cavity, rim
    included); skull / jaw: (P,) bool, all corners on the skull (no jaw weight) / fully on the jaw;
    rigid: (P,) bool, barely moved by the non-jaw expressions; walls: (W, 3) every pocket vertex, the
    inner-lip loop included; upper_loop / lower_loop: head vertex ids of the inner-lip loop's upper and
    lower chains, each from the right corner (x < 0) to the left one, corners in both;
    upper_lip / lower_lip: (K, 3) the same chains' MediaPipe landmarks; front_z: z of the loop's front;
    lip_y: mean height of the loop; half_width: half the loop's width; depth: (V,) metres behind the
    inner-lip contour (any vertex).

    The renderer draws its own cavity (`cavity_bag`) instead of the head's pocket: the built-in head
    splits its pocket into skull and jaw halves by height, and the nearly closed neutral lips put some
    upper-lip vertices on the jaw's side, so the pocket tears across the opening when the jaw opens.
    """

    faces: np.ndarray
    skull: np.ndarray
    jaw: np.ndarray
    rigid: np.ndarray
    walls: np.ndarray
    upper_loop: np.ndarray
    lower_loop: np.ndarray
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    front_z: float
    lip_y: float
    half_width: float
    depth: np.ndarray


def lip_contour_depth(points: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(N,) depth of points (N, 3) behind the inner-lip contour inner (K, 3), as a function of |x|."""
    order = np.argsort(np.abs(inner[:, 0]))
    return np.interp(np.abs(points[:, 0]), np.abs(inner[order, 0]), inner[order, 2]) - points[:, 2]


def polyline_gap(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) distance of points (N, 3) to a polyline (K, 3)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-20), 0, 1)
    return np.linalg.norm(points[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(axis=1)


def split_loop(vertices: np.ndarray, loop: np.ndarray, upper_lip: np.ndarray, lower_lip: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower chains (ids, right corner to left, corners in both) of the loop vertex ids,
    each vertex going to the nearer landmark chain (heights alone fail where the lips nearly touch)."""
    p = vertices[loop]
    upper = polyline_gap(p, upper_lip) <= polyline_gap(p, lower_lip)
    corners = loop[[np.argmin(p[:, 0]), np.argmax(p[:, 0])]]
    chains = []
    for side in (upper, ~upper):
        ids = np.setdiff1d(loop[side], corners)
        ids = ids[np.argsort(vertices[ids, 0])]
        chains.append(np.concatenate([corners[:1], ids, corners[1:]]))
    return chains[0], chains[1]


def find_mouth_pocket(anatomy: HeadAnatomy, jaw_weight: np.ndarray, expression_motion: np.ndarray
                      ) -> MouthPocket | None:
    """Locate the mouth pocket: lips-region vertices behind the inner-lip contour, within its width.

    jaw_weight: (V,) skinning weight of the jaw joint; expression_motion: (V,) largest displacement (m)
    of any non-jaw expression at coefficient 1. None when the head has no such cavity.
    """
    if "lips" not in anatomy.region_names:
        return None
    inner = anatomy.lmk(*LIPS_INNER)
    V, F = anatomy.vertices, anatomy.faces
    depth = lip_contour_depth(V, inner)
    half_width = float(np.abs(inner[:, 0]).max())
    lips = anatomy.vertex_mask(["lips"]) & (np.abs(V[:, 0]) < half_width + 1e-4)
    deep = lips & (depth > 0.001)
    # The loop: vertices where the pocket's rim meets the outer lips.
    rim_faces = deep[F].any(axis=1)
    outer_faces = lips[F].all(axis=1) & ~deep[F].any(axis=1) & (depth[F] < -0.0005).any(axis=1)
    loop = np.intersect1d(np.unique(F[rim_faces]), np.unique(F[outer_faces]))
    loop = loop[~deep[loop]]
    if deep.sum() < 8 or loop.size < 8:
        return None
    # The head's cavity: triangles among pocket and loop vertices that reach into the pocket, plus any
    # sliver of loop vertices joining the skull to the jaw across the slit.
    in_mouth = deep.copy()
    in_mouth[loop] = True
    mixed = jaw_weight[F].max(axis=1) - jaw_weight[F].min(axis=1) > 0.9
    faces = np.nonzero(in_mouth[F].all(axis=1) & (deep[F].any(axis=1) | mixed))[0]
    upper_lip, lower_lip = inner[:11], np.concatenate([inner[10:], inner[:1]])[::-1]  # LIPS_INNER order
    upper_loop, lower_loop = split_loop(V, loop, upper_lip, lower_lip)
    corners = F[faces]
    return MouthPocket(faces=faces, skull=(jaw_weight[corners] < 1e-3).all(axis=1),
                       jaw=(jaw_weight[corners] > 1.0 - 1e-3).all(axis=1),
                       rigid=(expression_motion[corners] < RIGID_MOTION).all(axis=1),
                       walls=V[in_mouth], upper_loop=upper_loop,
                       lower_loop=lower_loop, upper_lip=upper_lip, lower_lip=lower_lip,
                       front_z=float(inner[:, 2].max()), lip_y=float(inner[:, 1].mean()),
                       half_width=half_width, depth=depth)


def pocket_half_width(vertices: np.ndarray, z: np.ndarray, band: float = 0.002) -> np.ndarray:
    """(K,) largest |x| of pocket vertices (N, 3) within `band` of each depth z (K,); 0 where none."""
    near = np.abs(vertices[None, :, 2] - z[:, None]) < band
    return np.where(near, np.abs(vertices[None, :, 0]), 0.0).max(axis=1)


def fit_arch(walls: np.ndarray, front_z: float, margin: float, reach: float = 0.020) -> float:
    """Curvature c of the arch z = front_z - c x^2 that stays `margin` inside the pocket's side walls.

    walls: (N, 3) pocket vertices. The wall at each depth is the pocket's half width there; c is the
    smallest curvature keeping the arch `margin` from the wall over its first `reach` metres of depth
    (the teeth an open mouth shows; further back the crowns may sink into the walls, like gums).
    """
    z = np.linspace(front_z - reach, front_z - 0.003, 24)
    room = pocket_half_width(walls, z) - margin
    ok = room > 0.002
    # The arch passes x = room at depth z when c = (front_z - z) / room^2; a larger c is narrower.
    return float(np.max((front_z - z[ok]) / room[ok] ** 2)) if ok.any() else 60.0


def arch_frames(c: float, front_z: float, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points on the arch z = front_z - c x^2 (x >= 0) at arc lengths s (K,) from the midline.

    Returns (K, 3) points at y = 0, (K, 3) unit tangents (toward the back) and (K, 3) outward normals.
    """
    x = np.linspace(0.0, 0.06, 4000)
    seg = np.hypot(np.diff(x), 2 * c * x[1:] * np.diff(x))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    xs = np.interp(s, arc, x)
    pts = np.stack([xs, np.zeros_like(xs), front_z - c * xs ** 2], 1)
    tangent = np.stack([np.ones_like(xs), np.zeros_like(xs), -2 * c * xs], 1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 2], np.zeros_like(xs), tangent[:, 0]], 1)  # outward: +z at the midline
    return pts, tangent, normal


def crown(kind: str, width: float, height: float, thickness: float, rows: int = 7, cols: int = 14
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed tooth crown in its own frame (w along the arch, h from the biting edge, t labial).

    Cross-sections are superellipses that taper toward the neck; incisors thin to a blade at the edge,
    canines to a point. Returns vertices (rows*cols + 2, 3) as (w, h, t), faces, and (N, 2) local
    coordinates (w in [-1, 1] across the crown, h in [0, 1] from the edge).
    """
    h = np.linspace(0.0, 1.0, rows)
    ang = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    expo = 3.2 if kind == "incisor" else 2.6
    cu, su = np.cos(ang), np.sin(ang)
    u = np.sign(cu) * np.abs(cu) ** (2 / expo)
    v = np.sign(su) * np.abs(su) ** (2 / expo)
    half_w = 0.5 * width * (1.0 - 0.22 * h ** 2)  # narrower at the neck
    if kind == "incisor":
        half_t = 0.5 * thickness * (0.30 + 0.70 * np.sqrt(h))
    elif kind == "canine":
        half_t = 0.5 * thickness * (0.45 + 0.55 * np.sqrt(h))
        half_w = half_w * (0.55 + 0.45 * smoothstep(0.0, 0.35, h))  # the cusp
    else:
        half_t = 0.5 * thickness * (0.9 + 0.1 * h)
    W = half_w[:, None] * u[None]
    T = half_t[:, None] * v[None]
    H = np.broadcast_to(h[:, None] * height, W.shape)
    ring = np.stack([W, H, T], -1).reshape(-1, 3)
    verts = np.concatenate([ring, [[0.0, 0.0, 0.0], [0.0, height, 0.0]]])
    faces = _grid_faces(rows, cols, wrap_cols=True)
    edge, neck = rows * cols, rows * cols + 1
    s = np.arange(cols)
    caps = np.concatenate([np.stack([np.full(cols, edge), s, (s + 1) % cols], 1),
                           np.stack([np.full(cols, neck), (rows - 1) * cols + (s + 1) % cols,
                                     (rows - 1) * cols + s], 1)])
    faces = np.concatenate([faces, caps])
    centre = np.array([0.0, 0.5 * height, 0.0])
    faces = orient_faces(verts, faces, np.broadcast_to(centre, (faces.shape[0], 3)))
    local = np.concatenate([np.stack([np.broadcast_to(u[None], W.shape).ravel(), H.ravel() / height], 1),
                            [[0.0, 0.0], [0.0, 1.0]]])
    return verts, faces, local


def enamel_colors(local: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(N, 3) crown colours from local coordinates (N, 2) (w across, h from the edge) and depth (N,)
    behind the lips (m): dark gaps at the sides, translucent edge, yellow neck, darker further back."""
    w, h = np.abs(local[:, 0]), local[:, 1]
    col = ENAMEL[None] + (INCISAL - ENAMEL)[None] * smoothstep(0.18, 0.0, h)[:, None]
    col = col + (CERVICAL - col) * smoothstep(0.55, 1.0, h)[:, None]
    col = col * (1.0 - 0.30 * smoothstep(0.75, 1.0, w))[:, None]  # interproximal gaps
    return col * ambient_occlusion(depth)[:, None]


def ambient_occlusion(depth: np.ndarray, scale: float = 0.014) -> np.ndarray:
    """(N,) light reaching points `depth` (m) behind the lips: 1 down to the front teeth, falling off
    toward the throat."""
    return 0.3 + 0.7 * np.exp(-np.clip(depth - SETBACK, 0.0, None) / scale)


def teeth_arch(pocket: MouthPocket, upper: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One arch of crowns in canonical space, mirrored about x = 0.

    Returns vertices (M, 3), faces, colours (M, 3) and
    the (K, 3) gum line (the crowns' necks along the arch, right side to left) for the gum ridge.
    """
    table = UPPER_TEETH if upper else LOWER_TEETH
    scale = float(np.clip(pocket.half_width / 0.025, 0.8, 1.2))
    front = pocket.front_z - SETBACK - (0.0 if upper else 0.0016)  # lowers sit behind the uppers
    c = fit_arch(pocket.walls, front, margin=0.0045)
    widths = np.array([t[1] for t in table]) * scale
    ends = np.cumsum(widths)
    centres_s = ends - 0.5 * widths
    pts, tangent, normal = arch_frames(c, front, centres_s)
    upper_edge = lip_line(pocket.upper_lip, np.zeros(1))[0][0] - SHOW
    edge_y = upper_edge if upper else upper_edge + OVERBITE
    up = np.array([0.0, 1.0 if upper else -1.0, 0.0])
    parts, colors, necks = [], [], []
    for side in (-1.0, 1.0):
        mirror = np.array([side, 1.0, 1.0])
        for (kind, w, h, t), p, tg, nm in zip(table, pts, tangent, normal):
            v, f, local = crown(kind, 0.93 * w * scale, h * scale, t * scale)  # 7 % of the width: gaps
            # Crown frame: w along the arch tangent, h away from the biting edge, t labial (outward);
            # mirroring flips the winding, which orient_faces in crown() does not see: re-orient.
            world = (p + np.array([0.0, edge_y, 0.0]) - 0.5 * t * scale * nm
                     + v[:, :1] * tg + v[:, 1:2] * up + v[:, 2:3] * nm) * mirror
            centre = (p + np.array([0.0, edge_y, 0.0]) - 0.5 * t * scale * nm + 0.5 * h * scale * up) * mirror
            f = orient_faces(world, f, np.broadcast_to(centre, (f.shape[0], 3)))
            parts.append((world, f))
            colors.append(enamel_colors(local, pocket.front_z - world[:, 2]))
            necks.append((p + np.array([0.0, edge_y, 0.0]) + 0.8 * h * scale * up - 0.4 * t * scale * nm) * mirror)
    verts, faces = merge(parts)
    necks = np.stack(necks)
    half = len(table)
    gum_line = np.concatenate([necks[:half][::-1], necks[half:]])  # right back -> midline -> left back
    return verts, faces, np.concatenate(colors), gum_line


def lip_line(chain: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height y (K,) and depth z (K,) of an inner-lip chain (N, 3) at abscissae x (K,)."""
    order = np.argsort(chain[:, 0])
    return np.interp(x, chain[order, 0], chain[order, 1]), np.interp(x, chain[order, 0], chain[order, 2])


def lip_seal(pocket: MouthPocket, samples: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """A thin sheet just behind the inner-lip loop spanning the slit between the closed lips.

    The neutral lips of the built-in head are parted by up to half a millimetre and the head's torn
    rim slivers that closed that slit are not drawn (see `MouthPocket`), so this sheet, hanging from the
    upper lip, keeps the cavity out of sight while the mouth is closed. When the jaw opens it stays on the upper
    lip as a thin dark inner edge. Returns vertices (2 * samples, 3), faces.
    """
    x = np.linspace(-1.0, 1.0, samples) * pocket.half_width * 0.995
    yu, zu = lip_line(pocket.upper_lip, x)
    yl, zl = lip_line(pocket.lower_lip, x)
    z = np.minimum(zu, zl) - SEAL_DEPTH
    top = np.stack([x, np.maximum(yu, yl) + SEAL_OVERLAP, z], 1)
    bottom = np.stack([x, np.minimum(yu, yl) - SEAL_OVERLAP, z], 1)
    return np.concatenate([top, bottom]), _grid_faces(2, samples, wrap_cols=False)


def tongue_mesh(pocket: MouthPocket, lower_front_z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flattened ellipsoid on the cavity floor behind the lower incisors; vertices, faces, colours."""
    axes = np.array([0.8 * pocket.half_width, 0.0050, 0.024])
    centre = np.array([0.0, pocket.lip_y - 0.0062, lower_front_z - 0.0075 - axes[2]])
    v, f = uv_sphere(np.zeros(3), 1.0, rings=10, segments=20)
    verts = centre + v * axes
    # Top surface lighter with a faint median groove, darker toward the throat.
    groove = np.exp(-(v[:, 0] / 0.12) ** 2) * (v[:, 1] > 0)
    col = TONGUE[None] * (1.0 - 0.25 * groove)[:, None] * (0.8 + 0.2 * np.clip(v[:, 1], 0, 1))[:, None]
    col = col * ambient_occlusion(pocket.front_z - verts[:, 2])[:, None]
    return verts, f, col


# The cavity's rings behind the inner-lip loop: (depth, shrink toward the loop's centre, extra height),
# the same as the built-in head's pocket (`perse.head.builtin.mouth.mouth_pocket`) so the teeth fitted to
# that pocket fit this one; the last ring closes on a point CAVITY_CAP behind the loop's centre.
CAVITY_RINGS = ((0.006, 0.95, 0.003), (0.014, 0.85, 0.008), (0.022, 0.70, 0.011), (0.030, 0.45, 0.009))
CAVITY_CAP = 0.036


def cavity_bag(vertices: np.ndarray, upper_loop: np.ndarray, lower_loop: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A closed bag behind the inner-lip loop, its halves split by lip chain (not by height).

    vertices: (V, 3) canonical head; upper_loop / lower_loop: chain ids (right corner to left, corners
    in both). Returns bag vertices (N, 3) whose first K rows are the loop vertices (in `loop_ids`
    order), faces (winding arbitrary), side (N,): +1 upper half, -1 lower, 0 on the corners' columns,
    and depth (N,) behind the loop (m). loop_ids = upper_loop then the lower chain's inner vertices
    from left to right.
    """
    loop = np.concatenate([upper_loop, lower_loop[1:-1][::-1]])
    p = vertices[loop]
    K = len(loop)
    side = np.zeros(K)
    side[1:len(upper_loop) - 1] = 1.0
    side[len(upper_loop):] = -1.0
    m = p.mean(axis=0)
    xr = np.clip((p[:, 0] - m[0]) / np.abs(p[:, 0] - m[0]).max(), -1, 1)
    rings, depths = [p], [np.zeros(K)]
    for d, shrink, h in CAVITY_RINGS:
        rings.append(np.stack([m[0] + shrink * (p[:, 0] - m[0]),
                               m[1] + shrink * (p[:, 1] - m[1]) + side * h * np.sqrt(1 - xr ** 2),
                               p[:, 2] - d - 0.004 * (1 - xr ** 2)], 1))
        depths.append(np.full(K, d))
    verts = np.concatenate(rings + [[m - np.array([0.0, 0.0, CAVITY_CAP])]])
    faces = np.concatenate([_grid_faces(len(rings), K, wrap_cols=True),
                            mo.fan(np.arange(K) + (len(rings) - 1) * K, len(rings) * K)])
    return (verts, faces, np.concatenate([np.tile(side, len(rings)), [0.0]]),
            np.concatenate(depths + [[CAVITY_CAP]]))


def lining_colors(depth: np.ndarray, side: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) cavity colours at depth (N,) metres behind the lips: red-brown at the lips to near black.
    side (N,): > 0 on the upper half, where the first ring is the gum above the upper teeth (a smile that
    lifts the upper lip shows gum there, not a dark gap)."""
    t = smoothstep(0.004, 0.030, depth)[:, None]
    col = CAVITY_SHALLOW[None] + (CAVITY_DEEP - CAVITY_SHALLOW)[None] * t
    if side is not None:
        gum = (np.asarray(side) > 0) * smoothstep(SETBACK + 0.005, SETBACK + 0.001, depth)
        col = col + (GUM[None] * 0.8 - col) * gum[:, None]
    return col


def facing_cavity(vertices: np.ndarray, faces: np.ndarray, pocket: MouthPocket) -> np.ndarray:
    """Faces (F, 3) of the pocket wall wound so that their normals point into the cavity (toward its
    axis, the line x = 0, y = lip_y), whatever the head's own winding of the pocket."""
    c = vertices[faces].mean(axis=1)
    axis = np.stack([np.zeros(len(c)), np.full(len(c), pocket.lip_y), np.minimum(c[:, 2] + 0.006, pocket.front_z)], 1)
    # orient_faces turns normals away from its reference point: give it the mirror of the axis point.
    return orient_faces(vertices, faces, 2 * c - axis)


TEETH_PARTS = ("teeth_upper", "teeth_lower")
TEETH_MIN_LUMINANCE = 0.42    # darker than this inside the lips is tongue, cavity or shadow
TEETH_MAX_SATURATION = 0.40   # (max - min) / max: lips and gums are redder
TEETH_MIN_FRACTION = 0.12     # of the inner-lip opening, and at least TEETH_MIN_PIXELS, to count as teeth
TEETH_MIN_PIXELS = 12
TEETH_MIN_OPENING = 0.03     # inner-lip area over mouth width squared: below it the lips are closed


def photo_teeth_color(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """(3,) RGB in [0, 1]: the colour of the teeth a portrait shows between its lips, or None when it
    shows none (closed lips, or nothing bright and unsaturated inside the inner-lip contour).

    image: (H, W, 3) uint8; landmarks: (478, 2) its MediaPipe landmarks in pixels."""
    import cv2

    loop = np.asarray(landmarks, np.float64)[list(LIPS_INNER)]
    x, y = loop[:, 0], loop[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    if area < TEETH_MIN_OPENING * np.ptp(x) ** 2:   # closed lips: the contour is a line
        return None
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(loop).astype(np.int32)], 1)
    pix = image[mask.astype(bool)].astype(np.float64) / 255.0
    if pix.shape[0] == 0:
        return None
    lum = pix @ np.array([0.299, 0.587, 0.114])
    saturation = (pix.max(1) - pix.min(1)) / np.maximum(pix.max(1), 1e-6)
    teeth = pix[(lum >= TEETH_MIN_LUMINANCE) & (saturation <= TEETH_MAX_SATURATION)]
    if teeth.shape[0] < max(TEETH_MIN_PIXELS, TEETH_MIN_FRACTION * pix.shape[0]):
        return None
    t_lum = teeth @ np.array([0.299, 0.587, 0.114])
    keep = (t_lum >= np.percentile(t_lum, 30)) & (t_lum <= np.percentile(t_lum, 90))  # no shadow, no glint
    return np.median(teeth[keep], axis=0)


class MouthInterior:
    """Teeth, gums and tongue bound to the head's pocket, and the cavity lining; built once per head.

    parts: the bound solid parts (`Accessory` records of category "mouth"); `meshes(vertices)` poses
    everything on deformed head vertices (V, 3) for the GL renderer. `unlit`: draw every part with its
    own colour, as a photo-textured head is drawn (its texture already holds the photo's light).
    """

    def __init__(self, anatomy: HeadAnatomy, pocket: MouthPocket):
        self.anatomy = anatomy
        self.pocket = pocket
        self.unlit = False
        F_all = anatomy.faces
        parts = []
        uv, uf, uc, ugum = teeth_arch(pocket, upper=True)
        lv, lf, lc, lgum = teeth_arch(pocket, upper=False)
        parts.append(("teeth_upper", uv, uf, uc, True, 0.35))
        parts.append(("teeth_lower", lv, lf, lc, False, 0.35))
        for name, line, upper in (("gums_upper", ugum, True), ("gums_lower", lgum, False)):
            gv, gf = tube(line, 0.0022, sides=8)
            gc = GUM[None] * ambient_occlusion(pocket.front_z - gv[:, 2])[:, None]
            parts.append((name, gv, gf, gc, upper, 0.15))
        lower_front = pocket.front_z - SETBACK - 0.0016
        tv, tf, tc = tongue_mesh(pocket, lower_front)
        parts.append(("tongue", tv, tf, tc, False, 0.2))
        self.parts = [self._bound(name, v, f, col, self._anchors(upper), spec) for name, v, f, col, upper, spec in parts]
        sv, sf = lip_seal(pocket)
        upper_rim = self._anchors(True, rigid=False) | self._touching(pocket.upper_loop, pocket.skull)
        self.seal = self._bound("lip_seal", sv, sf, np.broadcast_to(SEAL, sv.shape), upper_rim, 0.05)
        # The cavity: its first ring is the head's own loop, the others ride on the skull or the jaw.
        bv, bf, side, depth = cavity_bag(anatomy.vertices, pocket.upper_loop, pocket.lower_loop)
        self.bag_loop = np.concatenate([pocket.upper_loop, pocket.lower_loop[1:-1][::-1]])
        lower = side < 0
        bag = Accessory("cavity", "mouth", bv, facing_cavity(bv, bf, pocket), lining_colors(depth, side), 1.0, 0.0)
        upper_b = bind_to_mesh(bv[~lower], anatomy.vertices, F_all, face_mask=self._anchors(True))
        lower_b = bind_to_mesh(bv[lower], anatomy.vertices, F_all, face_mask=self._anchors(False))
        bag.binding = Binding(np.zeros(len(bv), np.int64), np.zeros((len(bv), 3)), np.zeros(len(bv)))
        for rows, b in ((~lower, upper_b), (lower, lower_b)):
            bag.binding.face[rows], bag.binding.bary[rows], bag.binding.offset[rows] = b.face, b.bary, b.offset
        bag._head_faces = F_all
        self.bag = bag

    def use_teeth_color(self, color: np.ndarray) -> None:
        """Tint the teeth so their front enamel has `color` (3,) RGB in [0, 1] (e.g. `photo_teeth_color`),
        keeping the crowns' own shading (edges, necks, gaps, depth)."""
        gain = np.asarray(color, dtype=np.float64) / ENAMEL
        for part in self.parts:
            if part.name in TEETH_PARTS:
                part.colors = np.clip(part.colors * gain[None], 0.0, 1.0)

    def _touching(self, ids: np.ndarray, among: np.ndarray) -> np.ndarray:
        """(F,) bool: pocket triangles flagged in `among` (P,) that have a corner in `ids`."""
        p = self.pocket
        mask = np.zeros(self.anatomy.faces.shape[0], dtype=bool)
        sel = among & np.isin(self.anatomy.faces[p.faces], ids).any(axis=1)
        mask[p.faces[sel]] = True
        return mask

    def _anchors(self, upper: bool, rigid: bool = True) -> np.ndarray:
        """(F,) bool head triangles the upper (skull) or lower (jaw) parts bind to: the pocket's
        triangles of that side that barely move with the non-jaw expressions (all of the side's if too
        few do)."""
        p = self.pocket
        side = p.skull if upper else p.jaw
        anchors = side & p.rigid if rigid and (side & p.rigid).sum() >= 4 else side
        mask = np.zeros(self.anatomy.faces.shape[0], dtype=bool)
        mask[p.faces[anchors]] = True
        return mask

    def _bound(self, name: str, v, f, colors, mask: np.ndarray, specular: float) -> Accessory:
        """An Accessory of the mouth bound to the head triangles `mask` (F,) bool."""
        acc = Accessory(name, "mouth", v, f, np.clip(colors, 0.0, 1.0), 1.0, specular)
        acc.binding = bind_to_mesh(v, self.anatomy.vertices, self.anatomy.faces, face_mask=mask)
        acc._head_faces = self.anatomy.faces
        return acc

    def bag_vertices(self, head_vertices: np.ndarray) -> np.ndarray:
        """(N, 3) cavity vertices on posed head vertices (V, 3); its rim is the head's own lip loop."""
        out = self.bag.posed(head_vertices)
        out[:len(self.bag_loop)] = head_vertices[self.bag_loop]
        return out

    @property
    def solids(self) -> list[Accessory]:
        """Every bound part (cavity, teeth, gums, tongue, seal) in canonical space, e.g. for seeding."""
        return [self.bag] + self.parts + [self.seal]

    def open_head(self, mesh):
        """The head's GL `Mesh` without its own mouth pocket (the cavity bag replaces it)."""
        from dataclasses import replace

        keep = np.ones(len(np.asarray(mesh.faces)), dtype=bool)
        keep[self.pocket.faces] = False
        pick = lambda a: None if a is None else np.asarray(a)[keep]  # noqa: E731
        return replace(mesh, faces=np.asarray(mesh.faces)[keep], uv_faces=pick(mesh.uv_faces),
                       face_labels=pick(mesh.face_labels))

    def meshes(self, head_vertices: np.ndarray) -> list:
        """GL `Mesh`es of the lining and every part on posed head vertices (V, 3); label 0 (no category:
        the mouth is anatomy, no attribute may claim its pixels)."""
        from perse.render.gl import Mesh

        hv = np.asarray(head_vertices, dtype=np.float64)
        # The lining carries its own baked darkness: unlit, so the rig cannot light up the throat.
        out = [Mesh(vertices=self.bag_vertices(hv).astype(np.float32), faces=self.bag.faces,
                    colors=self.bag.colors.astype(np.float32), specular=0.0, unlit=True)]
        for part in self.parts + [self.seal]:
            out.append(Mesh(vertices=part.posed(hv).astype(np.float32), faces=part.faces,
                            colors=part.colors.astype(np.float32), specular=0.0 if self.unlit else part.specular,
                            smooth=True, unlit=self.unlit))
        return out


def expression_motion(head, exclude_prefixes: tuple[str, ...] = ("jaw", "mouthClose")) -> np.ndarray:
    """(V,) largest vertex displacement (m) over the head's expressions at coefficient 1, leaving out
    the jaw units (the jaw moves the lower teeth rigidly through skinning)."""
    E = head.exprdirs.detach().cpu().numpy()  # (V, 3, E)
    names = list(head.expression_names)
    keep = [i for i, n in enumerate(names) if not str(n).startswith(exclude_prefixes)]
    if not keep:
        return np.zeros(E.shape[0])
    return np.linalg.norm(E[:, :, keep], axis=1).max(axis=1)


def build_mouth(head, anatomy: HeadAnatomy) -> MouthInterior | None:
    """The mouth interior for a head model, or None if it has no mouth pocket (e.g. a FLAME head)."""
    from perse.head.model import JOINT_NAMES

    weights = head.lbs_weights.detach().cpu().numpy()
    jaw = weights[:, JOINT_NAMES.index("jaw")]
    pocket = find_mouth_pocket(anatomy, jaw, expression_motion(head))
    return None if pocket is None else MouthInterior(anatomy, pocket)

