"""The mouth interior of the synthetic head: teeth arches, gums, a tongue and a dark cavity lining.

The built-in head closes its mouth opening with a pocket behind the inner-lip loop (upper half skinned
to the skull, lower half to the jaw; `perse.head.builtin.mouth.mouth_pocket`, found on a head by
`perse.synth.mouth_pocket`). This module fills it:

- upper and lower teeth arches (`perse.synth.teeth`: individual crowns along a parabola fitted inside
  the pocket); the part of a crown outside the pocket is inside the head (the gums);
- a gum ridge along each arch and a tongue on the floor of the cavity;
- its own cavity (`cavity_bag`, drawn instead of the head's pocket, see `MouthPocket`) with a dark
  red-brown gradient that darkens with depth (the GL renderer has no occlusion: the darkness of a
  cavity has to be in the albedo), and a thin seal behind the slit of the neutral lips.

Upper teeth bind to skull-skinned pocket triangles, lower teeth and the tongue to jaw-skinned ones
(`perse.synth.binding.bind_to_mesh`), and only to triangles that barely move with the non-jaw
expressions, so the teeth stay rigid while the lips smile and pucker. Everything is inside the head's
closed surface and the seal closes the lips' slit, so closed lips hide it in every view (only the slit's
colour changes); `jawOpen` shows it.

All geometry is numpy float64 in metres in the head's canonical frame (+y up, +z out of the face).
"""

from __future__ import annotations

import numpy as np
import torch

from perse import mesh_ops as mo
from perse.geometry.easing import smoothstep
from perse.synth.accessories import Accessory
from perse.synth.anatomy import HeadAnatomy
from perse.synth.binding import Binding, bind_to_mesh
from perse.synth.mesh_primitives import grid_faces, orient_faces, tube, uv_sphere
from perse.synth.mouth_pocket import MouthPocket, expression_motion, find_mouth_pocket, lip_line
from perse.synth.teeth import ENAMEL, SETBACK, UPPER_TEETH, ambient_occlusion, incisal_edge_points, teeth_arch, \
    teeth_like, teeth_reach_px

GUM = np.array([0.66, 0.30, 0.32])
TONGUE = np.array([0.72, 0.36, 0.36])
CAVITY_SHALLOW = np.array([0.34, 0.11, 0.10])
CAVITY_DEEP = np.array([0.06, 0.02, 0.02])
SEAL_DEPTH = 0.0006      # m behind the lip loop: the seal must stay behind the lower lip's surface
SEAL_OVERLAP = 0.0003    # m the seal reaches past each lip line into the lips
SEAL = np.array([0.30, 0.10, 0.10])
LOWER_LIP_LINING = np.array([0.62, 0.32, 0.32])   # the lower lip's wet inner edge, without a photo
LINING_SHADE = 0.85     # the inner edge of a photo's lower lip, a little darker than the lip it shows


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
    return np.concatenate([top, bottom]), grid_faces(2, samples, wrap_cols=False)


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
    faces = np.concatenate([grid_faces(len(rings), K, wrap_cols=True),
                            mo.fan(np.arange(K) + (len(rings) - 1) * K, len(rings) * K)])
    return (verts, faces, np.concatenate([np.tile(side, len(rings)), [0.0]]),
            np.concatenate(depths + [[CAVITY_CAP]]))


def lining_colors(depth: np.ndarray, side: np.ndarray | None = None, lip: np.ndarray = LOWER_LIP_LINING
                  ) -> np.ndarray:
    """(N, 3) cavity colours at depth (N,) metres behind the lips: red-brown at the lips to near black.
    side (N,): > 0 on the upper half, where the first ring is the gum above the upper teeth (a smile that
    lifts the upper lip shows gum there, not a dark gap); < 0 on the lower half, whose first ring is the
    lower lip's wet inner edge, `lip` (3,) (seen above the lip in front of the teeth: a smile's lower
    lip, not a dark crescent)."""
    t = smoothstep(0.004, 0.030, depth)[:, None]
    col = CAVITY_SHALLOW[None] + (CAVITY_DEEP - CAVITY_SHALLOW)[None] * t
    if side is not None:
        gum = (np.asarray(side) > 0) * smoothstep(SETBACK + 0.005, SETBACK + 0.001, depth)
        col = col + (GUM[None] * 0.8 - col) * gum[:, None]
        inner_lip = (np.asarray(side) < 0) & (depth <= 0.0)
        col[inner_lip] = np.asarray(lip, np.float64)
    return col


def facing_cavity(vertices: np.ndarray, faces: np.ndarray, pocket: MouthPocket) -> np.ndarray:
    """Faces (F, 3) of the pocket wall wound so that their normals point into the cavity (toward its
    axis, the line x = 0, y = lip_y), whatever the head's own winding of the pocket."""
    c = vertices[faces].mean(axis=1)
    axis = np.stack([np.zeros(len(c)), np.full(len(c), pocket.lip_y), np.minimum(c[:, 2] + 0.006, pocket.front_z)], 1)
    # orient_faces turns normals away from its reference point: give it the mirror of the axis point.
    return orient_faces(vertices, faces, 2 * c - axis)


TEETH_PARTS = ("teeth_upper", "teeth_lower")  # the parts `use_teeth_color` tints, `use_photo_teeth` paints
MAX_EXTRA_SHOW_M = 0.004   # longest a portrait's teeth may make the upper crowns, past the average
MIN_EXTRA_SHOW_M = 0.0003   # shorter lengthening is within the landmarks' error: crowns kept
PHOTO_DEPTH_TOLERANCE_M = 0.0015  # a crown vertex is what the photo shows if it is this close to the front surface


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
        self.extra_show = np.zeros(len(UPPER_TEETH))   # m each upper crown reaches below the average (`fit_photo_show`)
        self._teeth_gain = np.ones(3)    # the enamel tint (`use_teeth_color`)
        lower_front = pocket.front_z - SETBACK - 0.0016
        tv, tf, tc = tongue_mesh(pocket, lower_front)
        self.parts = (self._arch_parts(upper=True) + self._arch_parts(upper=False)
                      + [self._bound("tongue", tv, tf, tc, self._anchors(False), 0.2)])
        sv, sf = lip_seal(pocket)
        upper_rim = self._anchors(True, rigid=False) | self._touching(pocket.upper_loop, pocket.skull)
        self.seal = self._bound("lip_seal", sv, sf, np.broadcast_to(SEAL, sv.shape), upper_rim, 0.05)
        # The cavity: its first ring is the head's own loop, the others ride on the skull or the jaw.
        bv, bf, side, depth = cavity_bag(anatomy.vertices, pocket.upper_loop, pocket.lower_loop)
        self.bag_loop = np.concatenate([pocket.upper_loop, pocket.lower_loop[1:-1][::-1]])
        lower = side < 0
        self._bag_side, self._bag_depth = side, depth
        bag = Accessory("cavity", "mouth", bv, facing_cavity(bv, bf, pocket), lining_colors(depth, side), 1.0, 0.0)
        upper_b = bind_to_mesh(bv[~lower], anatomy.vertices, F_all, face_mask=self._anchors(True))
        lower_b = bind_to_mesh(bv[lower], anatomy.vertices, F_all, face_mask=self._anchors(False))
        bag.binding = Binding(np.zeros(len(bv), np.int64), np.zeros((len(bv), 3)))
        for rows, b in ((~lower, upper_b), (lower, lower_b)):
            bag.binding.take(rows, b)
        bag._head_faces = F_all
        self.bag = bag

    def use_teeth_color(self, color: np.ndarray) -> None:
        """Tint the teeth so their front enamel has `color` (3,) RGB in [0, 1] (e.g. `photo_teeth_color`),
        keeping the crowns' own shading (edges, necks, gaps, depth)."""
        gain = np.asarray(color, dtype=np.float64) / ENAMEL
        self._teeth_gain = self._teeth_gain * gain
        for part in self.parts:
            if part.name in TEETH_PARTS:
                part.colors = np.clip(part.colors * gain[None], 0.0, 1.0)

    def fit_photo_show(self, photo: np.ndarray, mouth_mask: np.ndarray, camera, head_vertices: np.ndarray
                       ) -> np.ndarray:
        """Lengthen the upper crowns to where the portrait's own teeth end; returns the (K,) lengthening
        of each crown of a half arch (m, midline to back).

        A smile shows the upper teeth from the upper lip down to the lower lip; crowns of the head's
        average length (`SHOW` below the neutral lip) leave a dark band of cavity under them instead,
        which every view but the portrait's own then shows. Each crown's biting edge
        (`incisal_edge_points`), posed like the photo, moves down the photo's run of teeth pixels below
        it (`teeth_reach_px`), the two sides averaged; toward the back a crown never reaches lower than
        the one in front of it (the smile line), and none by more than `MAX_EXTRA_SHOW_M`.
        photo: (H, W, 3) uint8; mouth_mask: (H, W) the photo's mouth opening; camera: the photo's
        `Camera`; head_vertices: (V, 3) the head posed as in the photo. Call before `use_photo_teeth`."""
        from perse.geometry.sampling import bilinear_sample
        from perse.synth.binding import apply_binding

        faces = self.anatomy.faces
        edge = incisal_edge_points(self.pocket, self.extra_show)
        binding = bind_to_mesh(edge, self.anatomy.vertices, faces, face_mask=self._anchors(True))
        posed = torch.from_numpy(np.asarray(apply_binding(binding, np.asarray(head_vertices, np.float64), faces)))
        cam = camera.float64()
        px, z = cam.project(posed).numpy(), cam.to_camera(posed)[:, 2].numpy()
        teeth = teeth_like(photo.astype(np.float64) / 255.0) & (mouth_mask > 0.5)
        inside = bilinear_sample(mouth_mask, px) > 0.5
        reach_m = np.where(inside, teeth_reach_px(teeth, px, mouth_mask > 0.5) * z / float(cam.K[1, 1]), 0.0)
        extra = np.minimum.accumulate(np.clip(reach_m.reshape(2, -1).mean(axis=0), 0.0, MAX_EXTRA_SHOW_M))
        extra = np.where(extra >= MIN_EXTRA_SHOW_M, extra, 0.0)
        # The bound holds for the crowns' total lengthening, however often this is called.
        extra = np.clip(self.extra_show + extra, 0.0, MAX_EXTRA_SHOW_M) - self.extra_show
        if extra.any():
            self.extra_show = self.extra_show + extra
            keep = [p for p in self.parts if p.name not in ("teeth_upper", "gums_upper")]
            self.parts = self._arch_parts(upper=True) + keep
        return extra

    def use_photo_lining(self, photo: np.ndarray, camera, head_vertices: np.ndarray) -> np.ndarray:
        """Give the lower lip's inner edge (the cavity's first ring on the lower half) the colour the
        portrait's lower lip has just below the inner-lip line, a shade darker (`LINING_SHADE`), and
        return it (3,). photo: (H, W, 3) uint8; camera: its fitted `Camera`; head_vertices: (V, 3) the
        head posed as in the photo."""
        from perse.geometry.sampling import bilinear_sample

        loop = np.asarray(head_vertices, np.float64)[self.pocket.lower_loop[1:-1]]
        px = camera.float64().project(torch.from_numpy(loop)).numpy() + np.array([0.0, 1.5])  # onto the lip
        lip = np.median(bilinear_sample(photo, px), axis=0) / 255.0 * LINING_SHADE
        self.bag.colors = lining_colors(self._bag_depth, self._bag_side, lip)
        return lip

    def _arch_parts(self, upper: bool) -> list[Accessory]:
        """The bound crowns and gum ridge of one arch (crowns tinted by `_teeth_gain`)."""
        v, f, colors, gum_line = teeth_arch(self.pocket, upper, self.extra_show)
        gv, gf = tube(gum_line, 0.0022, sides=8)
        gc = GUM[None] * ambient_occlusion(self.pocket.front_z - gv[:, 2])[:, None]
        name = "upper" if upper else "lower"
        anchors = self._anchors(upper)
        return [self._bound(f"teeth_{name}", v, f, colors * self._teeth_gain[None], anchors, 0.35),
                self._bound(f"gums_{name}", gv, gf, gc, anchors, 0.15)]

    def use_photo_teeth(self, photo: np.ndarray, mouth_mask: np.ndarray, camera, head_vertices: np.ndarray,
                        depth: np.ndarray) -> int:
        """Give the crowns a portrait shows as teeth (`teeth_like`) the portrait's own colours (its
        teeth's shade, gaps and light), so every view shows the person's teeth, not only the photo's own
        view; crowns the photo shows in shadow keep their own shading. Returns the number of crown
        vertices painted.

        photo: (H, W, 3) uint8; mouth_mask: (H, W) float in [0, 1], the photo's mouth opening (inside
        its inner lips); camera: the photo's fitted `Camera`; head_vertices: (V, 3) the head posed with
        the photo's fitted parameters; depth: (H, W) camera-space z of the front-most surface of the
        head with its mouth at that pose (0 = background), for the visibility test."""
        from perse.geometry.sampling import bilinear_sample
        from perse.render.camera import seen_points

        painted = 0
        for part in self.parts:
            if part.name not in TEETH_PARTS:
                continue
            posed = part.posed(np.asarray(head_vertices, dtype=np.float64))
            px, visible = seen_points(camera, posed, depth, PHOTO_DEPTH_TOLERANCE_M)
            colors = bilinear_sample(photo, px) / 255.0
            # Only where the photo shows teeth: a crown in the shadow of the mouth's corners painted
            # with that shadow reads as a missing tooth from any other view.
            weight = bilinear_sample(mouth_mask, px) * visible * teeth_like(colors)
            part.colors = np.clip(part.colors * (1.0 - weight[:, None]) + colors * weight[:, None], 0.0, 1.0)
            painted += int((weight > 0.5).sum())
        return painted

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


def build_mouth(head, anatomy: HeadAnatomy) -> MouthInterior | None:
    """The mouth interior for a head model, or None if it has no mouth pocket (e.g. a FLAME head)."""
    from perse.head.model import JOINT_NAMES

    weights = head.lbs_weights.detach().cpu().numpy()
    jaw = weights[:, JOINT_NAMES.index("jaw")]
    pocket = find_mouth_pocket(anatomy, jaw, expression_motion(head))
    return None if pocket is None else MouthInterior(anatomy, pocket)
