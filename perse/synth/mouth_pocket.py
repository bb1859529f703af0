"""The mouth pocket of a head: where its cavity behind the inner-lip loop lies, and how its lips run.

The built-in head closes its mouth opening with a pocket behind the inner-lip loop (upper half skinned
to the skull, lower half to the jaw; `perse.head.builtin.mouth.mouth_pocket`). `find_mouth_pocket`
locates it from the head's anatomy (lips region, MediaPipe inner-lip landmarks), its jaw skinning
weights and how far the non-jaw expressions move each vertex (`expression_motion`): a `MouthPocket`
holds its triangles (and which of them ride on the skull, on the jaw, and barely move), its walls and
the two chains of the inner-lip loop. The teeth (`perse.synth.teeth`) are fitted inside it and the
mouth interior (`perse.synth.mouth`) is bound to it.

All geometry is numpy float64 in metres in the head's canonical frame (+y up, +z out of the face).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.landmarks import LIPS_INNER
from perse.synth.anatomy import HeadAnatomy

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


def lip_line(chain: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height y (K,) and depth z (K,) of an inner-lip chain (N, 3) at abscissae x (K,)."""
    order = np.argsort(chain[:, 0])
    return np.interp(x, chain[order, 0], chain[order, 1]), np.interp(x, chain[order, 0], chain[order, 2])


def expression_motion(head, exclude_prefixes: tuple[str, ...] = ("jaw", "mouthClose")) -> np.ndarray:
    """(V,) largest vertex displacement (m) over the head's expressions at coefficient 1, leaving out
    the jaw units (the jaw moves the lower teeth rigidly through skinning)."""
    E = head.exprdirs.detach().cpu().numpy()  # (V, 3, E)
    names = list(head.expression_names)
    keep = [i for i, n in enumerate(names) if not str(n).startswith(exclude_prefixes)]
    if not keep:
        return np.zeros(E.shape[0])
    return np.linalg.norm(E[:, :, keep], axis=1).max(axis=1)
