"""The built-in synthetic attribute dataset generator.

For every frame it picks a *look* (one variant per attribute category), a sparse random expression, a
head pose and a camera, then renders the head (procedurally painted texture, or a person's texture with
the look painted over it, `perse.synth.texture`)
with the look's accessories (`perse.synth.accessories`, bound to the head so they follow the pose) with
the offscreen GL `MeshRenderer`. Region labels of the same render give per-category visibility masks.

Looks. Most frames switch ONE category away from its reference variant (every non-reference variant
gets `num_frames_per_variant` such frames), `num_frames_per_variant` frames are fully reference, and
about `double_fraction` of the training frames switch two categories at once.

Train / test split. About `test_fraction` of the frames are marked ``"test"``. Their looks cycle
through the reference and every single-category variant (so every variant is evaluated), but their
expression, pose and camera come from an independent random stream (seeded by ``(seed, 1)`` instead of
``(seed, 0)``), and their camera orbit is drawn from a wider band (|yaw| up to 30 degrees instead of 20)
so the held-out views are partly outside the training views.

DATASET FORMAT (version 1; `perse.synth.dataset.AttributeDataset` reads it, the trainer relies on it)::

    DATASET/dataset.json = {
      "format": "perse-dataset", "version": 1,
      "head": {"kind": "builtin" | "flame", "name": str, "sha256": str | null},
      "image_size": [H, W],
      "categories": [{"name", "variants": [...], "reference", "none": str | null, "regions": [...]}],
                    # fixed order; category index c = bit c of the region masks
      "frames": [{"image": "images/000000.png", "regions": "regions/000000.png",
                  "split": "train" | "test",
                  "camera": Camera.to_dict(),
                  "params": HeadParams.to_dict() with batch size 1 (all 8 fields),
                  "variants": {category_name: variant_name, ...},    # every category present
                  "reference": true,     # only on frames at the portrait's own view (see below)
                  "wide": true}],        # only on views from any angle around the head (sides, back)
      "generator": {settings, seed, ..., "base_texture": {"file", "size", "sha256"} | null,
                    "identity_shape": [S floats] | null, "reference_frames": int}
    }
    seeds.npz           surface samples of every accessory variant and of the mouth, bound to head
                        triangles, for the avatar's initial Gaussians (`perse.avatar.seeds`).
    base_texture.png    only with a base texture: the texture the looks were painted over (RGB uint8).
    hair_layer.npz      only with a hair layer (`perse.synth.hair.HairLayer`): per-vertex shell thickness
                        and texture-space hair coverage of the person.
    variant_textures/CATEGORY_VARIANT.png  only with variant textures (an attribute editor's edits): used
                        instead of painting for that variant, inside the category's UV region;
                        listed in generator["variant_textures"] as {"category", "variant", "file", "sha256"}.
    images/NNNNNN.png   RGBA uint8; alpha = coverage of head + accessories; RGB is straight (not
                        premultiplied) colour, 0 on the background.
    regions/NNNNNN.png  uint16 single channel; bit c set where category c's region (its head regions plus
                        its accessory geometry, from the label render) is visible, dilated a few pixels.

A person (`perse create`): `base_texture` replaces the procedural albedo, `identity_shape` is every
frame's params.identity, and with the portrait's camera and parameters a few training frames repeat the
portrait's own view in the reference look (exact duplicates: they weight that view in training).
With an attribute editor (`perse create --editor diffusers:PATH`), `variant_textures` gives edited
variants their own texture (the edited portrait projected on the head) instead of the painted one.

The folder is built as ``OUT.partial`` and renamed to ``OUT`` at the very end; any error or Ctrl-C
removes the partial folder, so ``OUT`` only ever holds a complete dataset.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from perse.avatar.seeds import SEEDS_FILE, save_seeds
from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.geometry.rotations import axis_angle_to_matrix, euler_to_axis_angle
from perse.head.model import HeadModel, HeadParams
from perse.landmarks import CHIN_BOTTOM
from perse.mesh_ops import vertex_normals
from perse.render.camera import Camera, orbit_camera
from perse.synth.accessories import ACCESSORY_LABEL_BASE, AccessoryCache
from perse.synth.anatomy import HeadAnatomy, head_anatomy
from perse.synth.hair import HairLayer
from perse.synth.mouth import build_mouth
from perse.synth.paint_procedural import TexturePainter
from perse.synth.reference import ReferenceView, with_photo_features
from perse.synth.reference import frame_camera as reference_crop
from perse.synth.seeding import dataset_seeds
from perse.synth.variants import CATEGORIES, Category, category_by_name, reference_look

FORMAT_NAME = "perse-dataset"
FORMAT_VERSION = 1
HAIR_LAYER_FILE = "hair_layer.npz"
WIDE_VIEW_CATEGORIES = ("hair", "hat")   # categories whose variants are seen from behind too
NECK_FADE_M = (0.03, 0.08)   # the neck fades out from this far below the chin to this far

# ARKit expression units used for random expressions (those the head has are used).
EXPRESSION_POOL = (
    "jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthPucker",
    "mouthFunnel", "mouthLeft", "mouthRight", "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft",
    "mouthPressRight", "mouthShrugUpper", "mouthShrugLower", "mouthRollUpper", "mouthRollLower",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "jawLeft", "jawRight", "jawForward",
)
# Units that usually act in left/right pairs: sampled together most of the time.
_PAIRS = {"mouthSmileLeft": "mouthSmileRight", "eyeBlinkLeft": "eyeBlinkRight", "browDownLeft": "browDownRight",
          "browOuterUpLeft": "browOuterUpRight", "eyeWideLeft": "eyeWideRight", "eyeSquintLeft": "eyeSquintRight",
          "mouthFrownLeft": "mouthFrownRight", "cheekSquintLeft": "cheekSquintRight",
          "noseSneerLeft": "noseSneerRight", "mouthStretchLeft": "mouthStretchRight"}


@dataclass
class SynthSettings:
    """Generator settings (all recorded in dataset.json["generator"])."""

    num_frames_per_variant: int = 8
    image_size: int = 256
    texture_size: int = 512
    seed: int = 0
    test_fraction: float = 0.1
    double_fraction: float = 0.1
    categories: list[str] = field(default_factory=lambda: [c.name for c in CATEGORIES])
    head_yaw_deg: float = 35.0
    head_pitch_deg: float = 15.0
    head_roll_deg: float = 8.0
    neck_deg: float = 6.0
    camera_yaw_deg: float = 20.0
    camera_yaw_test_deg: float = 30.0
    # Share of the training frames that show only whole-head categories (`WIDE_VIEW_CATEGORIES`, or the
    # reference look) seen from anywhere around the head, back included: without them the back of the
    # head is never in a training image and the avatar shows noise there. Face variants stay in front.
    wide_view_fraction: float = 0.5
    neck_fade_m: tuple[float, float] | None = NECK_FADE_M   # None: a hard-edged neck
    camera_pitch_deg: float = 10.0
    fov_deg: tuple[float, float] = (14.0, 22.0)
    fill: float = 0.7
    max_expression_units: int = 4
    region_dilation_px: int = -1   # -1: max(2, image_size // 64)

    def validate(self) -> None:
        if self.num_frames_per_variant < 1:
            raise PerseError(f"num_frames_per_variant must be >= 1, got {self.num_frames_per_variant}")
        if not 16 <= self.image_size <= 4096:
            raise PerseError(f"image size {self.image_size} is out of range; use 64 to 1024 (256 is typical)")
        if not 0.0 <= self.test_fraction < 0.9:
            raise PerseError(f"test fraction {self.test_fraction} must be in [0, 0.9)")
        if not 0.0 <= self.wide_view_fraction <= 1.0:
            raise PerseError(f"wide view fraction {self.wide_view_fraction} must be in [0, 1]")
        if not 0.0 <= self.double_fraction <= 1.0:
            raise PerseError(f"double fraction {self.double_fraction} must be in [0, 1]")
        for name in self.categories:
            category_by_name(name)
        if len(self.categories) > 16:
            raise PerseError("at most 16 categories fit the uint16 region masks")
        if len(set(self.categories)) != len(self.categories):
            raise PerseError(f"categories listed twice: {self.categories}")


# --------------------------------------------------------------------------------------------------
# Sampling (pure functions of a numpy Generator)
# --------------------------------------------------------------------------------------------------
@dataclass
class FramePlan:
    look: dict[str, str]
    split: str


def plan_frames(categories: list[Category], settings: SynthSettings, rng: np.random.Generator) -> list[FramePlan]:
    """The looks and splits of all frames, in a shuffled but seed-determined order."""
    n = settings.num_frames_per_variant
    ref = reference_look(categories)
    singles = [(c.name, v) for c in categories for v in c.non_reference]
    train: list[dict[str, str]] = [dict(ref) for _ in range(n)]
    for cat, var in singles:
        train += [{**ref, cat: var} for _ in range(n)]
    n_double = int(round(settings.double_fraction * len(train))) if len(categories) >= 2 else 0
    switchable = [c for c in categories if c.non_reference]
    for _ in range(n_double):
        if len(switchable) < 2:
            break
        ca, cb = rng.choice(len(switchable), size=2, replace=False)
        look = dict(ref)
        for ci in (ca, cb):
            cat = switchable[int(ci)]
            look[cat.name] = cat.non_reference[int(rng.integers(len(cat.non_reference)))]
        train.append(look)
    frac = settings.test_fraction
    n_test = int(round(frac / (1.0 - frac) * len(train))) if frac > 0 else 0
    cycle = [dict(ref)] + [{**ref, cat: var} for cat, var in singles]
    test = [dict(cycle[i % len(cycle)]) for i in range(n_test)]
    plans = [FramePlan(lk, "train") for lk in train] + [FramePlan(lk, "test") for lk in test]
    order = rng.permutation(len(plans))
    return [plans[i] for i in order]


def sample_expression(names: list[str], rng: np.random.Generator, max_units: int) -> np.ndarray:
    """(E,) sparse expression coefficients: a few ARKit units in [0, 1] (Gaussian PCA coefficients for
    heads without ARKit names, e.g. FLAME)."""
    E = len(names)
    out = np.zeros(E, dtype=np.float32)
    pool = [n for n in EXPRESSION_POOL if n in names]
    if not pool:  # PCA expression space: small Gaussian coefficients on the leading directions
        k = min(E, 10)
        out[:k] = rng.normal(0.0, 0.7, size=k) * (rng.random() < 0.85)
        return out
    k = int(rng.integers(0, max_units + 1))
    for name in rng.choice(pool, size=min(k, len(pool)), replace=False):
        value = float(rng.uniform(0.15, 1.0))
        out[names.index(name)] = value
        partner = _PAIRS.get(str(name))
        if partner in names and rng.random() < 0.75:
            out[names.index(partner)] = float(np.clip(value + rng.normal(0, 0.1), 0, 1))
    return out


def sample_params(head: HeadModel, rng: np.random.Generator, s: SynthSettings) -> HeadParams:
    """Random expression, jaw, gaze, neck and head pose (batch 1, every field filled)."""
    deg = math.radians
    expr = sample_expression(head.expression_names, rng, s.max_expression_units)
    jaw = np.zeros(3)
    if rng.random() < 0.4:
        jaw[0] = rng.uniform(0.0, 0.22)   # opening: rotation about +x
        if "jawOpen" in head.expression_names:  # the built-in head's jawOpen is the same opening: not both
            expr[head.expression_names.index("jawOpen")] = 0.0
    gaze = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.3, 0.3), 0.0])  # pitch, yaw
    head_rot = euler_to_axis_angle(deg(rng.uniform(-s.head_yaw_deg, s.head_yaw_deg)),
                                   deg(rng.uniform(-s.head_pitch_deg, s.head_pitch_deg)),
                                   deg(rng.uniform(-s.head_roll_deg, s.head_roll_deg)))
    neck = rng.uniform(-deg(s.neck_deg), deg(s.neck_deg), size=3) * np.array([1.0, 1.0, 0.5])
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(1, -1)  # noqa: E731
    return HeadParams(identity=torch.zeros(1, head.num_shape), expression=t(expr), global_rot=t(head_rot),
                      neck_rot=t(neck), jaw_rot=t(jaw), eye_left_rot=t(gaze), eye_right_rot=t(gaze),
                      translation=torch.zeros(1, 3))


def frame_camera(vertices: np.ndarray, rng: np.random.Generator, s: SynthSettings, test: bool,
                 wide: bool = False) -> Camera:
    """Orbit camera around the posed head so that it fills about `s.fill` of the frame height; `wide`
    views come from any yaw around the head (sides and back)."""
    y = vertices[:, 1]
    lo, hi = float(y.min()), float(y.max())
    upper = vertices[y > lo + 0.2 * (hi - lo)]  # ignore the bottom of the neck for centring
    centre = 0.5 * (upper.max(0) + upper.min(0))
    radius = float(np.linalg.norm(upper - centre, axis=1).max())
    fov = float(rng.uniform(*s.fov_deg))
    yaw_max = s.camera_yaw_test_deg if test else s.camera_yaw_deg
    yaw = float(rng.uniform(-yaw_max, yaw_max))
    if wide:
        yaw = float(rng.uniform(-180.0, 180.0))
    pitch = float(rng.uniform(-s.camera_pitch_deg, s.camera_pitch_deg))
    distance = radius / math.tan(math.radians(fov) / 2) / s.fill * float(rng.uniform(0.95, 1.05))
    target = centre + rng.uniform(-0.03, 0.03, size=3) * radius
    return orbit_camera(yaw, pitch, distance, tuple(float(v) for v in target), fov, s.image_size, s.image_size)


# --------------------------------------------------------------------------------------------------
# Rendering one frame
# --------------------------------------------------------------------------------------------------
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
        self._chin_vertex = int(np.argmin(np.linalg.norm(self.anatomy.vertices - self.anatomy.landmarks[CHIN_BOTTOM],
                                                         axis=1)))
        self.variant_textures = check_variant_textures(variant_textures, categories, texture_size)
        self._composed: dict[tuple, np.ndarray] = {}
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
        if self.hair_layer is not None:   # the scalp carries the hair layer's volume
            vertices = self.hair_layer.shell_vertices(vertices, vertex_normals(vertices, a.faces))
        out = [Mesh(vertices=vertices.astype(np.float32), faces=a.faces, uvs=a.uvs.astype(np.float32),
                    uv_faces=a.uv_faces, texture=self.texture(look), face_labels=self.face_labels,
                    specular=0.06, unlit=self.photo_texture)]
        if self.mouth is not None:  # its own cavity replaces the head's pocket (see perse.synth.mouth)
            out = [self.mouth.open_head(out[0])] + self.mouth.meshes(vertices)
        for acc in self.accessories.get(look):
            label = ACCESSORY_LABEL_BASE + self._cat_index.get(acc.category, 15)
            out.append(Mesh(vertices=acc.posed(vertices).astype(np.float32), faces=acc.faces,
                            colors=acc.colors.astype(np.float32),
                            face_labels=np.full(acc.faces.shape[0], label, dtype=np.int32),
                            opacity=acc.opacity, specular=acc.specular, smooth=True))
        return out

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
            result.labels = np.where(keep > 1e-3, result.labels, 0)   # nothing left to attribute there
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
    """(H, W) float32 opacity factor: 1 everywhere but on neck pixels, where it falls from 1 at
    fade_m[0] to 0 at fade_m[1] metres below the chin (along the head's up axis `up` (3,); chin: (3,)
    posed world point). The avatar thus learns a neck that ends softly instead of a cut cylinder."""
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


# --------------------------------------------------------------------------------------------------
# The dataset writer
# --------------------------------------------------------------------------------------------------
def head_identity(head: HeadModel) -> dict:
    """The "head" entry of dataset.json."""
    kind = head.kind if head.kind in ("builtin", "flame") else "builtin"
    return {"kind": kind, "name": str(head.meta.get("name", kind)), "sha256": head.meta.get("sha256")}


def identity_vector(head: HeadModel, identity_shape, reference_params: HeadParams | None) -> torch.Tensor | None:
    """(1, S) float32 identity of every frame, or None (the template head).

    identity_shape: (S') with S' <= S (missing coefficients are zero). Without it, a reference_params
    shape is the identity. Both given and different is an error: the frames would show two people.
    """
    ref_shape = None if reference_params is None else reference_params.identity
    if identity_shape is None and ref_shape is None:
        return None
    vecs = []
    for name, value in (("identity_shape", identity_shape), ("reference_params.identity", ref_shape)):
        if value is None:
            vecs.append(None)
            continue
        v = torch.as_tensor(value, dtype=torch.float32).detach().cpu()
        if name == "reference_params.identity":
            if v.ndim != 2 or v.shape[0] != 1:
                raise PerseError(f"reference_params must have batch size 1, its shape is {tuple(v.shape)}")
            v = v[0]
        if v.ndim != 1 or v.shape[0] > head.num_shape:
            raise PerseError(f"{name} has shape {tuple(v.shape)}; expected ({head.num_shape},) identity "
                             "coefficients of this head model")
        if not torch.isfinite(v).all():
            raise PerseError(f"{name} contains NaN or infinite values; refit the portrait")
        vecs.append(torch.cat([v, torch.zeros(head.num_shape - v.shape[0])]))
    ident, ref = vecs
    if ident is not None and ref is not None and (ident - ref).abs().max() > 1e-4:
        raise PerseError("identity_shape differs from reference_params.identity; pass the portrait fit's identity to both")
    return (ident if ident is not None else ref)[None]


def reference_frame_camera(camera: Camera, image_size: int) -> Camera:
    """The portrait's camera at the dataset's square resolution; PerseError if it is not square."""
    if camera.width != camera.height:
        raise PerseError(f"reference camera is {camera.width}x{camera.height}; the dataset is square: crop the "
                         "portrait to a square before fitting")
    return camera.resized(image_size, image_size) if camera.width != image_size else camera


def _write_png(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, array, extension=".png")


def generate_dataset(out_dir: str | os.PathLike, head: HeadModel, num_frames_per_variant: int = 8,
                     image_size: int = 256, seed: int = 0, progress: bool = True, overwrite: bool = False,
                     texture_size: int = 512, test_fraction: float = 0.1, double_fraction: float = 0.1,
                     categories: list[str] | None = None, renderer=None,
                     on_frame: Callable[[int, int], None] | None = None,
                     base_texture: np.ndarray | None = None, identity_shape: torch.Tensor | None = None,
                     reference_camera: Camera | None = None, reference_params: HeadParams | None = None,
                     reference_frames: int = 4,
                     variant_textures: dict[tuple[str, str], np.ndarray] | None = None,
                     hair_layer: HairLayer | None = None, reference: ReferenceView | None = None) -> Path:
    """Render a synthetic attribute dataset into `out_dir` (format: see the module docstring).

    Args:
        out_dir: target folder; must not exist or be empty unless `overwrite`.
        head: a HeadModel with uvs, uv_faces, vertex_regions and the 478-landmark embedding (built-in head).
        num_frames_per_variant: frames per non-reference variant (and fully-reference frames).
        image_size: square image size in pixels. texture_size: albedo texture size (512 or 1024).
        seed: everything (looks, textures, poses, cameras) is determined by it.
        progress: show tqdm bars (stage and ETA).
        test_fraction: share of frames in the "test" split. double_fraction: share of extra training
            frames with two categories switched.
        categories: names of the categories to use (default: the whole catalogue, in catalogue order).
        renderer: an existing `MeshRenderer` to reuse (else one is created and closed).
        on_frame: called as on_frame(done, total) after every written frame (GUIs, tests).
        base_texture: (T, T, 3) uint8 albedo in the head's UV layout (e.g. projected from a portrait):
            the reference look is this texture and every other variant is painted over it (see
            `perse.synth.texture.BaseTextureFields`). None: the procedural texture.
        identity_shape: (S,) identity coefficients used as params.identity of every frame (the person's
            head shape). None: reference_params.identity if given, else the template head.
        reference_camera, reference_params: the portrait's camera and fitted parameters (batch 1), a
            `reference` view without a photo showing `reference_frames` frames.
        reference: the portrait's view (`perse.synth.reference.ReferenceView`; instead of the three
            arguments above). Its frames (training, reference look, marked ``"reference": true``)
            alternate between the portrait's framing and a crop on the head; with the photo they show its
            eyes and open mouth (the person's own teeth), so the avatar learns the person as photographed.
        variant_textures: {(category, variant): (T, T, 3) uint8} textures used instead of painting for
            those variants (e.g. portraits edited by `perse.create.editors`, projected on the head),
            composited inside the category's UV region (`FrameRenderer.texture`); accessory geometry
            still follows the look. Saved as ``variant_textures/CATEGORY_VARIANT.png``.
        hair_layer: the person's hair layer (`perse.synth.hair`): the scalp is drawn offset by its
            thickness and its coverage tells hair-colour variants which texels are hair. Saved as
            ``hair_layer.npz`` (the trainer seeds Gaussians on the shell).
    Returns:
        The dataset folder.
    """
    settings = SynthSettings(num_frames_per_variant=int(num_frames_per_variant), image_size=int(image_size),
                             texture_size=int(texture_size), seed=int(seed), test_fraction=float(test_fraction),
                             double_fraction=float(double_fraction),
                             categories=list(categories) if categories is not None else [c.name for c in CATEGORIES])
    settings.validate()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise PerseError(f"{out} already exists and is not empty: choose another folder or pass overwrite")
    if not out.parent.exists():
        raise PerseError(f"cannot write {out}: folder {out.parent} does not exist (create it first)")
    cats = [category_by_name(n) for n in settings.categories]
    if (reference_camera is None) != (reference_params is None):
        raise PerseError("reference_camera and reference_params go together: pass both (the portrait's fit) or neither")
    if reference_camera is not None:
        if reference is not None:
            raise PerseError("pass the portrait's view once: as reference, or as reference_camera and reference_params")
        reference = ReferenceView(reference_camera, reference_params, frames=int(reference_frames))
    if reference is not None:
        reference.validate()
    identity = identity_vector(head, identity_shape, None if reference is None else reference.params)
    ref_camera = None if reference is None else reference_frame_camera(reference.camera, settings.image_size)
    if base_texture is not None:
        from perse.synth.uv_atlas import check_base_texture

        check_base_texture(base_texture)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    dilation = settings.region_dilation_px if settings.region_dilation_px >= 0 else max(2, settings.image_size // 64)
    t_start = time.perf_counter()
    frame_renderer = None
    try:
        (partial / "images").mkdir(parents=True)
        (partial / "regions").mkdir()
        plans = plan_frames(cats, settings, np.random.default_rng([settings.seed, 2]))
        frame_renderer = FrameRenderer(head, cats, settings.texture_size, settings.seed, renderer,
                                       base_texture=base_texture, variant_textures=variant_textures,
                                       hair_layer=hair_layer, neck_fade_m=settings.neck_fade_m,
                                       teeth_color=None if reference is None else reference.teeth_color())
        if hair_layer is not None:
            hair_layer.save(partial / HAIR_LAYER_FILE)
        _paint_all(frame_renderer, plans, progress)
        if base_texture is not None:
            _write_png(partial / "base_texture.png", base_texture)
        variant_files = []
        if frame_renderer.variant_textures:
            (partial / "variant_textures").mkdir()
        for (cat, var), tex in frame_renderer.variant_textures.items():
            rel = f"variant_textures/{cat}_{var}.png"
            _write_png(partial / rel, tex)
            variant_files.append({"category": cat, "variant": var, "file": rel, "sha256": texture_sha256(tex)})
        # Jobs: (plan, fixed params and camera or None to sample); reference views come last so the
        # sampled frames keep the numbering they have without them.
        jobs: list[tuple[FramePlan, HeadParams | None, Camera | None]] = [(pl, None, None) for pl in plans]
        if reference is not None:
            ref_params = _complete_params(head, reference.params)
            # Every other frame is cropped on the head (None: framed once the head is posed).
            jobs += [(FramePlan(reference_look(cats), "train"), ref_params, ref_camera if k % 2 == 0 else None)
                     for k in range(int(reference.frames))]
        rng_train = np.random.default_rng([settings.seed, 0])
        rng_test = np.random.default_rng([settings.seed, 1])
        rng_wide = np.random.default_rng([settings.seed, 3])   # its own stream: other draws keep their values
        frames = []
        bar = _bar(len(jobs), "synth: rendering frames", "frame", progress)
        t_render = time.perf_counter()
        for i, (plan, fixed_params, fixed_camera) in enumerate(jobs):
            if fixed_params is None:
                rng = rng_test if plan.split == "test" else rng_train
                params = sample_params(head, rng, settings)
            else:
                params = fixed_params
            if identity is not None:
                params.identity = identity.clone()
            verts = frame_renderer.posed_vertices(params)
            wide = False
            if fixed_params is not None:
                camera = fixed_camera or reference_crop(reference, verts, settings.image_size)
            else:
                wide = (plan.split == "train" and rng_wide.random() < settings.wide_view_fraction
                        and all(plan.look[c.name] == c.reference for c in cats if c.name not in WIDE_VIEW_CATEGORIES))
                camera = frame_camera(verts, rng, settings, plan.split == "test", wide)
            head_rot = axis_angle_to_matrix(params.global_rot[0].numpy()) @ axis_angle_to_matrix(params.neck_rot[0].numpy())
            rgba, bits, _ = frame_renderer.render(plan.look, verts, camera, dilation, head_rot)
            if fixed_params is not None:
                rgba = with_photo_features(rgba, reference, camera)
            image_rel, region_rel = f"images/{i:06d}.png", f"regions/{i:06d}.png"
            _write_png(partial / image_rel, rgba)
            _write_png(partial / region_rel, bits)
            frame = {"image": image_rel, "regions": region_rel, "split": plan.split,
                     "camera": camera.to_dict(), "params": params.to_dict(),
                     "variants": {c.name: plan.look[c.name] for c in cats}}
            if fixed_params is not None:
                frame["reference"] = True
            if wide:
                frame["wide"] = True
            frames.append(frame)
            if bar is not None:
                bar.update(1)
            if on_frame is not None:
                on_frame(i + 1, len(jobs))
        if bar is not None:
            bar.close()
        render_s = time.perf_counter() - t_render
        # Seeds for the avatar's Gaussians: the accessory and mouth geometry just rendered, sampled on
        # the identity's neutral head (format: perse.avatar.seeds).
        neutral = head.zero_params()
        if identity is not None:
            neutral.identity = identity.clone()
        save_seeds(partial / SEEDS_FILE, dataset_seeds(frame_renderer, frame_renderer.posed_vertices(neutral),
                                                       np.random.default_rng([settings.seed, 4])))
        generator = {**asdict(settings), "generator": "perse.synth.builtin", "region_dilation_px": dilation,
                     "accessory_label_base": ACCESSORY_LABEL_BASE, "frames_per_second": len(jobs) / max(render_s, 1e-9),
                     "base_texture": None if base_texture is None else {
                         "file": "base_texture.png", "size": int(base_texture.shape[0]),
                         "sha256": texture_sha256(base_texture)},
                     "variant_textures": variant_files, "seeds": SEEDS_FILE,
                     "identity_shape": None if identity is None else identity[0].tolist(),
                     "reference_frames": sum(1 for _, fp, _ in jobs if fp is not None),
                     "seconds": time.perf_counter() - t_start,
                     "test_views": "independent random stream (seed, 1); camera yaw up to "
                                   f"{settings.camera_yaw_test_deg} deg vs {settings.camera_yaw_deg} in training"}
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "head": head_identity(head),
                "image_size": [settings.image_size, settings.image_size],
                "categories": [c.to_dict() for c in cats], "frames": frames, "generator": generator}
        (partial / "dataset.json").write_text(json.dumps(meta, indent=1))
        (partial / "README.md").write_text(dataset_readme(meta))
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if frame_renderer is not None:
            frame_renderer.close()
    return out


def texture_sha256(texture: np.ndarray) -> str:
    """sha256 hex of a (T, T, 3) uint8 texture's raw C-order bytes (not of its PNG encoding)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(texture, dtype=np.uint8).tobytes()).hexdigest()


def _complete_params(head: HeadModel, params: HeadParams) -> HeadParams:
    """Batch-1 params with every field filled (None -> zeros, short identity/expression zero-padded), float32."""
    from dataclasses import fields as dc_fields

    zero = head.zero_params()
    out = {}
    for f in dc_fields(HeadParams):
        value, ref = getattr(params, f.name), getattr(zero, f.name)
        if value is None:
            out[f.name] = ref.detach().cpu().float().clone()
            continue
        v = torch.as_tensor(value).detach().cpu().float().reshape(1, -1)
        if v.shape[1] > ref.shape[1]:
            raise PerseError(f"reference_params.{f.name} has {v.shape[1]} values; this head model takes {ref.shape[1]}")
        if not torch.isfinite(v).all():
            raise PerseError(f"reference_params.{f.name} contains NaN or infinite values; refit the portrait")
        out[f.name] = torch.cat([v, torch.zeros(1, ref.shape[1] - v.shape[1])], dim=1)
    return HeadParams(**out)


def _bar(total: int, desc: str, unit: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


def _paint_all(fr: FrameRenderer, plans: list[FramePlan], progress: bool) -> None:
    """Paint every distinct texture up front (its own progress stage)."""
    from perse.synth.palette import TEXTURE_CATEGORIES

    looks = {}
    for p in plans:
        # Edited variants make a texture depend on more than the texture categories.
        edited = tuple(p.look.get(c.name) for c in fr.categories
                       if (c.name, p.look.get(c.name)) in fr.variant_textures)
        looks.setdefault(tuple(p.look.get(c) for c in TEXTURE_CATEGORIES) + edited, p.look)
    bar = _bar(len(looks), "synth: painting textures", "tex", progress)
    for look in looks.values():
        fr.texture(look)
        fr.accessories.get(look)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()


def dataset_readme(meta: dict) -> str:
    """README.md text describing a dataset folder (format and contents)."""
    cats = meta["categories"]
    n = len(meta["frames"])
    n_test = sum(f["split"] == "test" for f in meta["frames"])
    lines = [
        "# PERSE synthetic attribute dataset",
        "",
        f"{n} frames ({n - n_test} train, {n_test} test), {meta['image_size'][1]}x{meta['image_size'][0]} pixels, "
        f"head: {meta['head']['kind']} '{meta['head']['name']}'.",
        "",
        "## Format (perse-dataset, version 1)",
        "",
        "- `dataset.json`: `format`, `version`, `head` {kind, name, sha256}, `image_size` [H, W], `categories`",
        "  (ordered; category index c = bit c of the region masks), `frames`, `generator` (settings, seed).",
        "- Each frame: `image`, `regions` (paths), `split` (train|test), `camera` (OpenCV pinhole: K,",
        "  world_to_cam, width, height, near, far), `params` (head parameters, batch 1: shape, expression,",
        "  global_rot, neck_rot, jaw_rot, eye_left_rot, eye_right_rot, translation), `variants`",
        "  {category: variant} for every category.",
        "- `images/NNNNNN.png`: RGBA uint8. Alpha = coverage of head and accessories. RGB is straight",
        "  (not premultiplied) colour; background pixels are RGB 0.",
        "- `regions/NNNNNN.png`: uint16 single channel. Bit c is set where category c's region (its head",
        "  regions plus its accessory geometry) is visible, dilated by "
        f"{meta['generator'].get('region_dilation_px', '?')} px.",
        "",
        "## Categories (bit: name: variants, reference first marked *)",
        "",
    ]
    for i, c in enumerate(cats):
        vs = ", ".join(("*" if v == c["reference"] else "") + v for v in c["variants"])
        lines.append(f"- bit {i}: `{c['name']}`: {vs}; regions: {', '.join(c['regions'])}")
    lines += ["", "## Split", "", str(meta["generator"].get("test_views", "")), ""]
    return "\n".join(lines)
