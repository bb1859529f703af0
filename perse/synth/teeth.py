"""The teeth of the synthetic head: two arches of individual crowns fitted inside the mouth pocket.

Upper and lower arches of crowns (incisors, canines, premolars, molars: `UPPER_TEETH`, `LOWER_TEETH`)
along a parabola fitted inside the pocket (`fit_arch`, `arch_frames`; the pocket:
`perse.synth.mouth_pocket`), set back behind the lips (`SETBACK`), enamel-coloured with darker gaps,
translucent incisal edges and yellower necks (`enamel_colors`), darker toward the throat
(`ambient_occlusion`, also used by the gums and tongue); the part of a crown outside the pocket is
inside the head (the gums). `photo_teeth_color` reads the colour of the teeth a portrait shows,
`teeth_like` which of its pixels are teeth and `teeth_reach_px` how far down they reach (the upper
crowns are then lengthened to match: `MouthInterior.fit_photo_show`). The
mouth interior that holds and binds them: `perse.synth.mouth`.

All geometry is numpy float64 in metres in the head's canonical frame (+y up, +z out of the face).
"""

from __future__ import annotations

import numpy as np

from perse.geometry.easing import smoothstep
from perse.landmarks import LIPS_INNER
from perse.synth.mesh_primitives import grid_faces, merge, orient_faces
from perse.synth.mouth_pocket import MouthPocket, lip_line, pocket_half_width
from perse.synth.palette import BT601_LUMA

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
# The incisors sit close behind the lips, so a smile that lifts the upper lip shows the crowns, not the
# cavity above them (4.8 mm and 2.4 mm hid the upper teeth of a smiling portrait behind a dark band).
# Closer still (1.8 mm, 4 mm) MediaPipe tracked the jaw of the rendered head worse: 0.057 rad of error at
# 0.2 rad open against 0.044 here (tests/test_drive_accuracy.py, limit 0.05).
SETBACK = 0.0030         # m from the inner-lip loop's front to the incisors' labial face
SHOW = 0.0030            # m the upper incisal edges hang below the neutral upper lip's inner edge
OVERBITE = 0.0014        # m the lower incisal edges rise above the upper ones (behind them)
LINING_OCCLUSION_M = 0.014  # m of depth over which the light on the mouth's lining, gums and tongue falls off
CROWN_OCCLUSION_M = 0.03    # the same for the crowns, which a smile shows lit almost alike
CROWN_FILL = 0.97         # of its slot along the arch a crown fills (the rest: the gaps between teeth)


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
    faces = grid_faces(rows, cols, wrap_cols=True)
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


def enamel_colors(local: np.ndarray, depth: np.ndarray, blade: bool = True) -> np.ndarray:
    """(N, 3) crown colours from local coordinates (N, 2) (w across, h from the edge) and depth (N,)
    behind the lips (m): slightly darker gaps at the sides, a translucent edge where the crown thins to a
    blade (`blade`: incisors, canines), yellow neck, darker further back.

    Premolars and molars end in cusps of thick enamel, opaque: an open mouth seen from above shows the
    lower arch's biting surfaces, and in the edge's blue-grey they read as a grey wire outline."""
    w, h = np.abs(local[:, 0]), local[:, 1]
    edge = smoothstep(0.18, 0.0, h) if blade else np.zeros_like(h)
    col = ENAMEL[None] + (INCISAL - ENAMEL)[None] * edge[:, None]
    col = col + (CERVICAL - col) * smoothstep(0.55, 1.0, h)[:, None]
    col = col * (1.0 - 0.15 * smoothstep(0.8, 1.0, w))[:, None]  # interproximal gaps
    # The crowns a smile shows are lit almost alike, canines and premolars included: with the lining's
    # occlusion (and 30 % darker gaps) a smile read as braces, grey crowns with black lines between them.
    return col * ambient_occlusion(depth, scale=CROWN_OCCLUSION_M)[:, None]


def ambient_occlusion(depth: np.ndarray, scale: float = LINING_OCCLUSION_M) -> np.ndarray:
    """(N,) light reaching points `depth` (m) behind the lips: 1 down to the front teeth, falling off
    toward the throat."""
    return 0.3 + 0.7 * np.exp(-np.clip(depth - SETBACK, 0.0, None) / scale)


def arch_layout(pocket: MouthPocket, upper: bool) -> tuple[tuple, float, np.ndarray, np.ndarray, np.ndarray, float]:
    """Where one arch's crowns sit: (crown table, size scale, (K, 3) crown centres on the arch at y = 0,
    (K, 3) tangents, (K, 3) outward normals, the neutral biting edge's height y) for one half arch,
    midline to back."""
    table = UPPER_TEETH if upper else LOWER_TEETH
    scale = float(np.clip(pocket.half_width / 0.025, 0.8, 1.2))
    front = pocket.front_z - SETBACK - (0.0 if upper else 0.0016)  # lowers sit behind the uppers
    c = fit_arch(pocket.walls, front, margin=0.0045)
    widths = np.array([t[1] for t in table]) * scale
    centres_s = np.cumsum(widths) - 0.5 * widths
    pts, tangent, normal = arch_frames(c, front, centres_s)
    upper_edge = lip_line(pocket.upper_lip, np.zeros(1))[0][0] - SHOW
    return table, scale, pts, tangent, normal, upper_edge if upper else upper_edge + OVERBITE


def incisal_edge_points(pocket: MouthPocket, extra_show: np.ndarray | float = 0.0) -> np.ndarray:
    """(2K, 3) canonical points on the biting edges of the upper crowns (K per half arch, midline to
    back; the subject's right half, then the left), on their labial faces where a photo sees the edge,
    for crowns lengthened by `extra_show` (K,) metres (see `teeth_arch`)."""
    table, scale, pts, _, normal, edge_y = arch_layout(pocket, upper=True)
    longer = np.broadcast_to(np.asarray(extra_show, np.float64), (len(table),))
    thickness = np.array([t[3] for t in table]) * scale
    # The labial face at the edge: the crown's centre line sits 0.5 t inside the arch, and `crown` thins
    # an incisor's edge to 0.15 t either side of it.
    edge = pts + (edge_y - longer)[:, None] * np.array([0.0, 1.0, 0.0]) - 0.35 * thickness[:, None] * normal
    return np.concatenate([edge * np.array([-1.0, 1.0, 1.0]), edge])


def teeth_arch(pocket: MouthPocket, upper: bool, extra_show: np.ndarray | float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One arch of crowns in canonical space, mirrored about x = 0. `extra_show` (upper arch; scalar or
    (K,) per crown, midline to back): metres the upper crowns reach further down than the head's
    average (`SHOW`), necks kept (a portrait's own smile shows them so: `MouthInterior.fit_photo_show`).

    Returns vertices (M, 3), faces, colours (M, 3) and
    the (K, 3) gum line (the crowns' necks along the arch, right side to left) for the gum ridge.
    """
    table, scale, pts, tangent, normal, edge_y = arch_layout(pocket, upper)
    longer = np.broadcast_to(np.asarray(extra_show if upper else 0.0, np.float64), (len(table),))
    up = np.array([0.0, 1.0 if upper else -1.0, 0.0])
    parts, colors, necks = [], [], []
    for side in (-1.0, 1.0):
        mirror = np.array([side, 1.0, 1.0])
        for (kind, w, h, t), p, tg, nm, more in zip(table, pts, tangent, normal, longer):
            h = h * scale + more
            v, f, local = crown(kind, CROWN_FILL * w * scale, h, t * scale)
            # Crown frame: w along the arch tangent, h away from the biting edge, t labial (outward);
            # mirroring flips the winding, which orient_faces in crown() does not see: re-orient.
            base = p + np.array([0.0, edge_y - more, 0.0]) - 0.5 * t * scale * nm
            world = (base + v[:, :1] * tg + v[:, 1:2] * up + v[:, 2:3] * nm) * mirror
            centre = (base + 0.5 * h * up) * mirror
            f = orient_faces(world, f, np.broadcast_to(centre, (f.shape[0], 3)))
            parts.append((world, f))
            colors.append(enamel_colors(local, pocket.front_z - world[:, 2], blade=kind in ("incisor", "canine")))
            necks.append((base + 0.8 * h * up + 0.1 * t * scale * nm) * mirror)
    verts, faces = merge(parts)
    necks = np.stack(necks)
    half = len(table)
    gum_line = np.concatenate([necks[:half][::-1], necks[half:]])  # right back -> midline -> left back
    return verts, faces, np.concatenate(colors), gum_line


TEETH_MIN_LUMINANCE = 0.42    # darker than this inside the lips is tongue, cavity or shadow
TEETH_MAX_SATURATION = 0.40   # (max - min) / max: lips and gums are redder
TEETH_MIN_FRACTION = 0.12     # of the inner-lip opening, and at least TEETH_MIN_PIXELS, to count as teeth
TEETH_MIN_PIXELS = 12
TEETH_MIN_OPENING = 0.03     # inner-lip area over mouth width squared: below it the lips are closed


def teeth_like(rgb: np.ndarray) -> np.ndarray:
    """(...) bool: colours (..., 3) in [0, 1] bright and unsaturated enough to be teeth (inside the lips)."""
    lum = rgb @ BT601_LUMA
    saturation = (rgb.max(-1) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1e-6)
    return (lum >= TEETH_MIN_LUMINANCE) & (saturation <= TEETH_MAX_SATURATION)


def teeth_reach_px(teeth: np.ndarray, edge_px: np.ndarray, opening: np.ndarray | None = None,
                   max_gap_px: int = 1, past_lip_px: float = 1.5) -> np.ndarray:
    """(K,) pixels a photo's teeth reach below points on the rendered biting edge: for each point
    (K, 2) (x, y) of `edge_px`, how far down its pixel column the run of teeth pixels (`teeth` (H, W)
    bool) that holds the point continues (gaps of up to `max_gap_px` bridged: a dark line between two
    teeth rows is the lower teeth's own edge, a wider one the cavity). A run that reaches the bottom of
    the mouth `opening` ((H, W) bool, pulled in from the lips) ends behind the lower lip: `past_lip_px`
    further. 0 where the photo shows no teeth at the point, or where they end above it."""
    h, w = teeth.shape
    out = np.zeros(len(edge_px))
    for k, (x, y) in enumerate(np.asarray(edge_px, np.float64)):
        col, row = int(round(x)), int(round(y))
        if not (0 <= col < w and 0 <= row < h) or not teeth[max(row - 1, 0):row + 1, col].any():
            continue
        last, gap = row, 0
        for r in range(row + 1, h):
            if teeth[r, col]:
                last, gap = r, 0
            elif (gap := gap + 1) > max_gap_px:
                break
        out[k] = last + 0.5 - y
        if opening is not None and not opening[last + 1:last + 1 + max_gap_px + 1, col].any():
            out[k] += past_lip_px
    return np.maximum(out, 0.0)


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
    teeth = pix[teeth_like(pix)]
    if teeth.shape[0] < max(TEETH_MIN_PIXELS, TEETH_MIN_FRACTION * pix.shape[0]):
        return None
    t_lum = teeth @ BT601_LUMA
    keep = (t_lum >= np.percentile(t_lum, 30)) & (t_lum <= np.percentile(t_lum, 90))  # no shadow, no glint
    return np.median(teeth[keep], axis=0)
