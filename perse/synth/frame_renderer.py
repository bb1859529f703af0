"""Rendering one frame of a synthetic dataset: the head with a look, in any pose and from any camera.

`FrameRenderer` holds what every frame shares (the head's anatomy, texture painter, accessory cache,
mouth and GL renderer) and draws a look on posed head vertices: straight-colour RGBA plus per-category
region bits from the same render's labels. Helpers: the studio lights turned with the head
(`head_fixed_lighting`), the soft end of the neck (`neck_fade`), the image encodings (`encode_rgba`,
`region_bits`) and the attribute editor's variant textures (`check_variant_textures`).
The dataset writer (`perse.synth.generator`) renders every frame here; tests and tools render single
looks with it.
"""

from __future__ import annotations

import numpy as np
import torch

from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.head.model import HeadModel, HeadParams
from perse.landmarks import CHIN_BOTTOM
from perse.mesh_ops import vertex_normals
from perse.render.camera import Camera
from perse.synth.accessories import ACCESSORY_LABEL_BASE, AccessoryCache
from perse.synth.anatomy import HeadAnatomy, head_anatomy
from perse.synth.hair import HairLayer
from perse.synth.mouth import build_mouth
from perse.synth.paint_procedural import TexturePainter
from perse.synth.reference import ReferenceView, mouth_opening_mask
from perse.synth.variants import Category, reference_look

NECK_FADE_M = (0.03, 0.08)   # the neck fades out from this far below the chin to this far


class FrameRenderer:
    """Holds the head's painter, accessory cache and GL renderer; renders looks in any pose."""

    def __init__(self, head: HeadModel, categories: list[Category], texture_size: int = 512, seed: int = 0,
                 renderer=None, base_texture: np.ndarray | None = None,
                 variant_textures: dict[tuple[str, str], np.ndarray] | None = None,
                 hair_layer: HairLayer | None = None, neck_fade_m: tuple[float, float] | None = NECK_FADE_M,
                 teeth_color: np.ndarray | None = None):
        self.head = head
        self.categories = categories
        self.anatomy: HeadAnatomy = head_anatomy(head)
        self.hair_layer = hair_layer
        self.painter = TexturePainter(self.anatomy, size=texture_size, seed=seed, base_texture=base_texture,
                                      hair_coverage=None if hair_layer is None else hair_layer.coverage)
        self.neck_fade_m = neck_fade_m
        self._neck_label = self.anatomy.region_id("neck") + 1
        self._curtain_label = self.anatomy.region_id("back_of_head") + 1   # hair: in the hair category's regions
        self._chin_vertex = int(np.argmin(np.linalg.norm(self.anatomy.vertices - self.anatomy.landmarks[CHIN_BOTTOM],
                                                         axis=1)))
        self.variant_textures = check_variant_textures(variant_textures, categories, texture_size)
        self._composed: dict[tuple, np.ndarray] = {}
        self._curtain_textures: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # id(look texture) -> (it, curtain's)
        # A photo texture already holds the portrait's real lighting: the head is drawn unlit (so the
        # reference view reproduces the photo) while accessory geometry is still lit by the rig.
        self.photo_texture = base_texture is not None
        self.accessories = AccessoryCache(self.anatomy)
        self.mouth = build_mouth(head, self.anatomy)  # teeth, tongue, cavity; None without a mouth pocket
        if self.mouth is not None:
            self.mouth.unlit = self.photo_texture
            if teeth_color is not None:   # the person's own teeth (`photo_teeth_color`)
                self.mouth.use_teeth_color(teeth_color)
        self.face_labels = (self.anatomy.face_regions() + 1).astype(np.int32)  # 0 = background
        self._renderer = renderer
        self._own_renderer = renderer is None
        names = self.anatomy.region_names
        # Label ids whose pixels belong to each category's region.
        self.category_labels = [np.array([names.index(r) + 1 for r in c.regions]
                                         + [ACCESSORY_LABEL_BASE + i], dtype=np.int32)
                                for i, c in enumerate(categories)]
        self._cat_index = {c.name: i for i, c in enumerate(categories)}
        self._by_name = {c.name: c for c in categories}

    @property
    def renderer(self):
        if self._renderer is None:
            from perse.render.gl import MeshRenderer

            self._renderer = MeshRenderer()
        return self._renderer

    def close(self) -> None:
        if self._own_renderer and self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def meshes(self, look: dict[str, str], vertices: np.ndarray) -> list:
        """Head + accessories as `Mesh` objects for posed head vertices (V, 3)."""
        from perse.render.gl import Mesh

        a = self.anatomy
        texture = self.texture(look)
        hair_meshes = []
        if self.hair_layer is not None:   # the scalp carries the hair layer's volume, the curtain hangs below
            curtain = self.hair_layer.curtain
            if curtain is not None:
                hair_meshes.append(Mesh(vertices=curtain.posed(vertices, a.faces).astype(np.float32),
                                        faces=curtain.faces, colors=np.repeat(curtain.shade[:, None], 3, 1).astype(np.float32),
                                        uvs=curtain.uvs.astype(np.float32), texture=self.curtain_texture(texture),
                                        face_labels=np.full(curtain.faces.shape[0], self._curtain_label, np.int32),
                                        specular=0.06, unlit=self.photo_texture))
            vertices = self.hair_layer.shell_vertices(vertices, vertex_normals(vertices, a.faces))
        out = [Mesh(vertices=vertices.astype(np.float32), faces=a.faces, uvs=a.uvs.astype(np.float32),
                    uv_faces=a.uv_faces, texture=texture, face_labels=self.face_labels,
                    specular=0.06, unlit=self.photo_texture)]
        if self.mouth is not None:  # its own cavity replaces the head's pocket (see perse.synth.mouth)
            out = [self.mouth.open_head(out[0])] + self.mouth.meshes(vertices)
        for acc in self.accessories.get(look):
            label = ACCESSORY_LABEL_BASE + self._cat_index.get(acc.category, 15)
            out.append(Mesh(vertices=acc.posed(vertices).astype(np.float32), faces=acc.faces,
                            colors=acc.colors.astype(np.float32),
                            face_labels=np.full(acc.faces.shape[0], label, dtype=np.int32),
                            opacity=acc.opacity, specular=acc.specular, smooth=True))
        return out + hair_meshes

    def curtain_texture(self, texture: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8: the hair curtain's own texture for the head texture `texture` of a look,
        made once per texture (`texture` is one of this renderer's cached look textures)."""
        key = id(texture)
        if key not in self._curtain_textures or self._curtain_textures[key][0] is not texture:
            self._curtain_textures[key] = (texture, self.hair_layer.curtain.texture(texture))
        return self._curtain_textures[key][1]

    def texture(self, look: dict[str, str]) -> np.ndarray:
        """(S, S, 3) uint8 albedo of `look`: the painter's, with edited variants composited in.

        For every (category, variant) of the look that has a variant texture (a portrait edited by an
        attribute editor, projected on the head), the painted texture of the look without those edits
        gets the edit's change over the reference texture, inside the category's UV region:
        ``paint(look') + w_c * (variant - paint(reference))``. A look with one edit and the rest
        reference is thus the variant texture inside the region and the reference outside it, and a
        second, painted category in the same look keeps its paint. Cached per look (GL textures are
        cached by object identity)."""
        edits = [(c.name, look[c.name]) for c in self.categories
                 if (c.name, look.get(c.name)) in self.variant_textures]
        if not edits:
            return self.painter.paint(look)
        key = tuple(look.get(c.name) for c in self.categories)
        if key not in self._composed:
            rest = {**look, **{cat: self._by_name[cat].reference for cat, _ in edits}}
            out = self.painter.paint(rest).astype(np.float32)
            ref = self.painter.paint({c.name: c.reference for c in self.categories}).astype(np.float32)
            for cat, var in edits:
                w = self._region_weight(cat)[..., None]
                out += w * (self.variant_textures[(cat, var)].astype(np.float32) - ref)
            self._composed[key] = np.clip(np.round(out), 0, 255).astype(np.uint8)
        return self._composed[key]

    def _region_weight(self, category: str) -> np.ndarray:
        """(S, S) float32 in [0, 1]: the category's head regions in texture space (gutters: nearest texel)."""
        atlas = self.painter.atlas
        names = self.anatomy.region_names
        ids = [names.index(r) for r in self._by_name[category].regions]
        w = np.zeros(atlas.size * atlas.size, np.float32)
        w[atlas.index] = np.clip(atlas.region_weights[:, ids].sum(axis=1), 0.0, 1.0)
        return w[atlas.fill_from].reshape(atlas.size, atlas.size)

    def posed_vertices(self, params: HeadParams) -> np.ndarray:
        """(V, 3) float64 head vertices for `params` (batch 1)."""
        with torch.no_grad():
            return self.head(params).vertices[0].cpu().numpy().astype(np.float64)

    def use_photo_teeth(self, view: ReferenceView) -> int:
        """Make the crowns the portrait shows as long as its teeth (`MouthInterior.fit_photo_show`), give
        the lower lip's inner edge the photo's lip colour (`MouthInterior.use_photo_lining`) and paint
        the crowns with the photo's pixels (`MouthInterior.use_photo_teeth`), the head posed as in the photo.
        Returns the number of crown vertices painted (0 without a mouth or without the photo)."""
        if self.mouth is None or view.image is None:
            return 0
        verts = self.posed_vertices(view.params)
        mask = mouth_opening_mask(view.landmarks, view.image.shape[:2])
        self.mouth.fit_photo_show(view.image, mask, view.camera, verts)
        self.mouth.use_photo_lining(view.image, view.camera, verts)
        _, _, result = self.render(reference_look(self.categories), verts, view.camera, 0)
        return self.mouth.use_photo_teeth(view.image, mask, view.camera, verts, result.depth)

    def render(self, look: dict[str, str], verts: np.ndarray, camera: Camera, dilation: int,
               head_rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, object]:
        """RGBA uint8 (H, W, 4) straight colour, region bits uint16 (H, W), and the raw MeshRender.

        verts: (V, 3) posed head vertices (`posed_vertices`).
        head_rotation: (3, 3) world rotation of the head; the studio lights then turn with the head
            (see `head_fixed_lighting`). None keeps the lights fixed to the camera."""
        lighting = None if head_rotation is None else head_fixed_lighting(camera, head_rotation)
        result = self.renderer.render(self.meshes(look, verts), camera, background=(0.0, 0.0, 0.0),
                                      lighting=lighting)
        if self.neck_fade_m is not None:
            up = np.eye(3)[1] if head_rotation is None else head_rotation[:, 1]
            keep = neck_fade(result, camera, self._neck_label, verts[self._chin_vertex], up, self.neck_fade_m)
            result.rgb, result.alpha = result.rgb * keep[..., None], result.alpha * keep
            # Nothing left to attribute where the fade leaves less alpha than uint8 keeps.
            result.labels = np.where((keep == 1.0) | (result.alpha > 0.5 / 255), result.labels, 0)
        return encode_rgba(result.rgb, result.alpha), region_bits(result.labels, self.category_labels, dilation), result


def check_variant_textures(textures: dict[tuple[str, str], np.ndarray] | None, categories: list[Category],
                           size: int) -> dict[tuple[str, str], np.ndarray]:
    """Validated variant textures at the painter's `size`: keys (category, non-reference variant) of
    `categories` that restrict themselves to head regions; values square RGB uint8 (resampled to size)."""
    from perse.synth.uv_atlas import check_base_texture, resample_texture

    out: dict[tuple[str, str], np.ndarray] = {}
    by_name = {c.name: c for c in categories}
    for key, tex in (textures or {}).items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise PerseError(f"variant_textures keys must be (category, variant) pairs, got {key!r}")
        cat, var = key
        if cat not in by_name:
            raise PerseError(f"variant texture for unknown category '{cat}'; this dataset has {', '.join(by_name)}")
        by_name[cat].index(var)
        if var == by_name[cat].reference:
            raise PerseError(f"variant texture for {cat}/{var}: the reference look is the base texture, not an edit")
        if not by_name[cat].regions:
            raise PerseError(f"category '{cat}' has no head regions to composite its variant texture into")
        out[(cat, var)] = resample_texture(check_base_texture(tex), size)
    return out


def head_fixed_lighting(camera: Camera, head_rotation: np.ndarray, base=None):
    """The default studio rig attached to the head instead of the camera.

    The avatar stores one colour per Gaussian (no view dependence), so the dataset bakes lighting onto
    the head: the rig is defined for a frontal camera on the head's +z axis (camera x = world x, camera
    y = -world y, camera z = -world z), turned with the head, then expressed in this frame's camera axes.
    """
    from dataclasses import replace as dc_replace

    from perse.render.gl import Lighting

    base = base or Lighting()
    frontal = np.diag([1.0, -1.0, -1.0])  # frontal camera axes <-> world axes (its own inverse)
    R_wc = camera.world_to_cam[:3, :3].numpy().astype(np.float64)

    def turn(direction):
        d = R_wc @ (head_rotation @ (frontal @ np.asarray(direction, dtype=np.float64)))
        return tuple(float(x) for x in d)

    return dc_replace(base, key_direction=turn(base.key_direction), fill_direction=turn(base.fill_direction))


def neck_fade(result, camera: Camera, neck_label: int, chin: np.ndarray, up: np.ndarray,
              fade_m: tuple[float, float]) -> np.ndarray:
    """(H, W) float32 opacity factor: 1 everywhere but on neck pixels and their unlabelled rim, where it
    falls from 1 at fade_m[0] to 0 at fade_m[1] metres below the chin (along the head's up axis `up`
    (3,); chin: (3,) posed world point). The avatar thus learns a neck that ends softly instead of a
    cut cylinder."""
    from scipy import ndimage

    neck = result.labels == neck_label
    keep = np.ones(result.labels.shape, np.float32)
    if not neck.any():
        return keep
    ys, xs = np.nonzero(neck)
    z = result.depth[ys, xs].astype(np.float64)
    K = camera.K.numpy().astype(np.float64)
    cam_pts = np.stack([(xs - K[0, 2]) / K[0, 0] * z, (ys - K[1, 2]) / K[1, 1] * z, z], axis=1)
    c2w = np.linalg.inv(camera.world_to_cam.numpy().astype(np.float64))
    world = cam_pts @ c2w[:3, :3].T + c2w[:3, 3]
    below = (chin - world) @ up
    keep[ys, xs] = 1.0 - smoothstep(fade_m[0], fade_m[1], below)
    # The colour pass is multisampled, the labels are not: silhouette pixels a triangle covers only in
    # part can be unlabelled. Those whose nearest labelled pixel is neck take its factor, or the cut
    # cylinder's outline stays drawn below the fade.
    unlabelled = result.labels == 0
    covered_unlabelled = unlabelled & (result.alpha > 0)
    if covered_unlabelled.any():
        _, (near_y, near_x) = ndimage.distance_transform_edt(unlabelled, return_indices=True)
        rim = covered_unlabelled & neck[near_y, near_x]
        keep[rim] = keep[near_y[rim], near_x[rim]]
    return keep


def encode_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight RGBA from a render composited over black: rgb / alpha where covered."""
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    straight = np.where(a > 1e-4, rgb / np.maximum(a, 1e-4), 0.0)
    out = np.concatenate([np.clip(straight, 0, 1), a], axis=-1)
    out = np.round(out * 255.0).astype(np.uint8)
    out[..., :3][out[..., 3] == 0] = 0
    return out


def region_bits(labels: np.ndarray, category_labels: list[np.ndarray], dilation: int) -> np.ndarray:
    """(H, W) uint16 masks: bit c where the label is one of category c's labels, dilated `dilation` px."""
    from scipy import ndimage

    out = np.zeros(labels.shape, dtype=np.uint16)
    struct = ndimage.generate_binary_structure(2, 2)
    for c, ids in enumerate(category_labels):
        m = np.isin(labels, ids)
        if dilation > 0 and m.any():
            m = ndimage.binary_dilation(m, structure=struct, iterations=dilation)
        out[m] |= np.uint16(1 << c)
    return out
