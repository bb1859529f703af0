"""Albedo texture of a head from one portrait: project what the photo sees, complete what it cannot.

Pipeline (`portrait_texture`):

1. Person mask: MediaPipe selfie segmentation (bundled in mediapipe 0.10.21) -> foreground (H, W).
2. Projection: the head is posed with the fit's parameters; every covered texel of the UV atlas
   (`perse.synth.uv_atlas.build_atlas`) gets its posed 3D point (barycentric interpolation of the posed
   vertices) and normal, is projected with the fitted camera and sampled from the photo bilinearly.
   Its confidence is the product of: a depth test against a GL depth render of the posed head (a few
   mm of tolerance, more on grazing surfaces where one pixel spans more depth), facing
   (smoothstep of normal . view from 0.2 up, so confidence grows as the surface turns to the camera),
   the foreground mask, and being inside the image.
3. Completion: (a) mirror - the built-in head is symmetric about x = 0, so a texel the photo misses
   takes the colour of its mirror texel (nearest atlas texel to (-x, y, z)) where that one was seen;
   (b) small holes and seams inside the seen area (depth-test dropouts, UV island borders) are filled
   with OpenCV's inpainting; (c) the rest gets a prior colour per region: the median observed hair
   colour on scalp / back of head (with subtle low-frequency variation so it is not flat), the median
   observed skin colour on skin regions (ears, neck, face...), a plain sclera on unseen eyeball.
   Observed and completed colours are blended by the confidence, feathered on the mesh (a few
   Laplacian smoothing steps in 3D, so the blend does not break at UV seams).

Hair standing out of the head surface (decision for this version): the texture lives only on the head
surface. Hair colour is painted on the scalp and back of the head, which is where short hair lies;
hair volume that stands out of the surface (and the head's silhouette in the photo) is NOT
reconstructed here. It is left to the avatar: its Gaussians bound to scalp triangles may move off the
surface (an offset shell) and learn volume from the training images, of which the portrait itself is
the reference view. `PortraitTexture.outside_head` marks the photo's person pixels that the fitted
head surface does not cover (hair volume, clothes) so later stages can weight or use them.

Texture orientation: texel row 0 holds v = 1, as in `perse.synth.uv_atlas` (OBJ convention for uvs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from perse.create.skin_gate import (beside_face_weight, below_jaw_weight, gate_weights, hair_beside_face,
                                    photo_skin_gate, skin_likeness)
from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.geometry.sampling import bilinear_sample
from perse.head.model import HeadModel
from perse.landmarks import EYE_INNER, EYE_OUTER, IRIS, MOUTH_CORNER
from perse.mesh_ops import uniform_laplacian, vertex_normals
from perse.synth.anatomy import eye_coordinates, fit_sphere, head_anatomy
from perse.synth.hair import SHELL_REGIONS, HairLayer, build_hair_thickness, segment_hair, synthesize_unseen_hair
from perse.synth.curtain_locks import photo_lock_shade
from perse.synth.hair_curtain import build_curtain
from perse.synth.paint_procedural import sine_noise
from perse.synth.palette import SCLERA_COLOR, eye_albedo, luminance
from perse.synth.reference import eye_opening_polygon
from perse.synth.uv_atlas import TexelAtlas, build_atlas, rasterize_uv
from perse.synth.variants import category_by_name

SUPPORTED_SIZES = (256, 512, 1024, 2048)
SKIN_REGIONS = ("face", "nose")              # where the skin median is measured (cheeks, nose)
HAIR_REGIONS = ("scalp",)                    # where the hair median is measured
HAIR_FILL_REGIONS = ("scalp", "back_of_head")
EYE_REGION = "eyeballs"
SCLERA = np.array([0.86, 0.83, 0.80])        # plain sclera for unseen eyeball texels
IRIS_ANGLE_RANGE = (0.35, 0.70)              # radians on the eyeball: irises from small to large
FACING_MIN, FACING_FULL = 0.2, 0.55          # normal . view where confidence starts / is full
DEPTH_TOLERANCE_M = 0.003                    # depth test tolerance at a frontal surface


@dataclass
class PortraitTexture:
    """texture: (S, S, 3) uint8 albedo; observed: (S, S) float32 in [0, 1], confidence that a texel's
    colour comes from the photo (before completion; 0 on gutters and unseen texels);
    foreground: (H, W) float32 person mask of the photo; outside_head: (H, W) bool person pixels not
    covered by the fitted head (hair volume, clothes); skin_color, hair_color: (3,) float in [0, 1],
    the medians used for completion; hair: the hair layer (shell thickness, texture-space hair
    coverage), when the portrait's landmarks were given; notes: one line per thing the user should know
    (hair that could not be separated, closed eyes)."""

    texture: np.ndarray
    observed: np.ndarray
    foreground: np.ndarray
    outside_head: np.ndarray
    skin_color: np.ndarray
    hair_color: np.ndarray
    hair: "HairLayer | None" = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Small pure functions
# --------------------------------------------------------------------------------------------------
def segment_person(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 person probability (MediaPipe selfie segmentation)."""
    import mediapipe as mp

    from perse.track.landmarks import quiet_native_stderr

    with quiet_native_stderr():
        # model 0: the general 256x256 model, better than the landscape one for head-and-shoulders.
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
            result = seg.process(np.ascontiguousarray(image))
    mask = result.segmentation_mask
    if mask is None:
        raise PerseError("MediaPipe selfie segmentation returned no mask for the portrait; check the image")
    return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)


def texel_faces(anatomy, atlas: TexelAtlas) -> tuple[np.ndarray, np.ndarray]:
    """Triangle (N,) and barycentrics (N, 3) of every covered atlas texel, in `atlas.index` order.

    Rasterizes the UV layout again with `build_atlas`'s ownership rule (least stretched triangle wins
    where UV triangles overlap), since `TexelAtlas` keeps positions but not the triangle indices."""
    v, t = anatomy.vertices[anatomy.faces], anatomy.uvs[anatomy.uv_faces]
    area3 = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    area2 = 0.5 * np.abs(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]))
    face, bary = rasterize_uv(anatomy.uvs, anatomy.uv_faces, atlas.size, priority=area3 / np.maximum(area2, 1e-20))
    flat_face = face.ravel()
    if not np.array_equal(np.nonzero(flat_face >= 0)[0], atlas.index):
        raise RuntimeError("UV rasterization disagrees with the texel atlas (build_atlas changed its rule?)")
    return flat_face[atlas.index].astype(np.int64), bary.reshape(-1, 3)[atlas.index].astype(np.float64)


def mirror_texels(position: np.ndarray) -> np.ndarray:
    """(N,) index of each texel's mirror texel: the nearest texel to (-x, y, z). position: (N, 3)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(position).query(position * np.array([-1.0, 1.0, 1.0]), k=1)
    return idx.astype(np.int64)


def smooth_on_mesh(values: np.ndarray, corners: np.ndarray, bary: np.ndarray, num_verts: int, faces: np.ndarray,
                   steps: int) -> np.ndarray:
    """Low-pass a per-texel scalar on the mesh surface (seam-free, unlike a blur in texture space).

    values: (N,) per texel; corners: (N, 3) vertex ids of each texel's triangle; bary: (N, 3).
    Splats to vertices (barycentric-weighted mean), runs `steps` Jacobi steps of uniform Laplacian
    smoothing, interpolates back. Returns (N,)."""
    num = np.bincount(corners.ravel(), weights=(bary * values[:, None]).ravel(), minlength=num_verts)
    den = np.bincount(corners.ravel(), weights=bary.ravel(), minlength=num_verts)
    vert = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    L = uniform_laplacian(num_verts, faces)
    degree = np.maximum(L.diagonal(), 1.0)
    for _ in range(steps):
        vert = 0.5 * vert + 0.5 * (degree * vert - L @ vert) / degree  # lazy step toward the neighbour mean
    return (vert[corners] * bary).sum(axis=1)


def weighted_median(colors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-channel weighted median of (N, 3) colours with (N,) non-negative weights -> (3,)."""
    out = np.empty(3)
    for c in range(3):
        order = np.argsort(colors[:, c])
        cum = np.cumsum(weights[order])
        out[c] = colors[order[np.searchsorted(cum, 0.5 * cum[-1])], c]
    return out


# --------------------------------------------------------------------------------------------------
# The projector
# --------------------------------------------------------------------------------------------------
def _check_inputs(image: np.ndarray, fit, size: int) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise PerseError(f"portrait must be an RGB uint8 (H, W, 3) array, got {got}; load it with "
                         "perse.track.load_image")
    h, w = image.shape[:2]
    if (int(fit.camera.width), int(fit.camera.height)) != (w, h):
        raise PerseError(f"the fit's camera is {fit.camera.width}x{fit.camera.height} but the portrait is {w}x{h}; "
                         "fit the head on this very image (perse track)")
    if fit.params.batch_size != 1:
        raise PerseError(f"the fit must hold one set of head parameters, got a batch of {fit.params.batch_size}")
    if size not in SUPPORTED_SIZES:
        raise PerseError(f"texture size {size} is not supported; use one of {SUPPORTED_SIZES}")


def portrait_texture(image: np.ndarray, head: HeadModel, fit, size: int = 512, renderer=None,
                     seed: int = 0, landmarks: np.ndarray | None = None) -> PortraitTexture:
    """Texture `head` from the portrait `image` it was fitted to (`fit`: perse.track.FitResult).

    image: (H, W, 3) uint8 RGB, the same size as fit.camera. renderer: a `MeshRenderer` to reuse for
    the depth render (one is created and closed otherwise). seed: the hair-variation noise.
    landmarks: (478, 2) the portrait's MediaPipe landmarks (pixels). Given them, the hair is its own
    layer (`perse.synth.hair`): scalp texels are projected from the hair shell that matches the
    portrait's outline, unseen hair is synthesized from the seen hair, and the eyes take their iris
    and sclera colours from the photo.
    Deterministic for equal inputs. See the module docstring for the method.
    """
    from perse.render.gl import Mesh, MeshRenderer

    _check_inputs(image, fit, size)
    anatomy = head_anatomy(head)
    atlas = build_atlas(anatomy, size)
    tri, bary = texel_faces(anatomy, atlas)
    corners = anatomy.faces[tri]                                               # (N, 3)
    foreground = segment_person(image)

    # Posed geometry per texel, in camera coordinates.
    with torch.no_grad():
        verts = head(fit.params).vertices[0].detach().cpu().double().numpy()    # (V, 3) world
    w2c = fit.camera.world_to_cam.detach().cpu().double().numpy()
    K = fit.camera.K.detach().cpu().double().numpy()
    R, t = w2c[:3, :3], w2c[:3, 3]
    vn = vertex_normals(verts, anatomy.faces)
    own = renderer is None
    renderer = MeshRenderer() if own else renderer
    try:
        hair = curtain_view = None
        if landmarks is not None:
            hair, hair_mask = _hair_layer(image, landmarks, foreground, verts, vn, anatomy, fit, renderer)
            curtain_posed = None if hair.curtain is None else hair.curtain.posed(verts, anatomy.faces)
            verts = hair.shell_vertices(verts, vn)                              # the scalp moves out to the hair
        head_mesh = Mesh(vertices=verts.astype(np.float32), faces=anatomy.faces)
        render = renderer.render([head_mesh], fit.camera)
        if hair is not None and hair.curtain is not None:   # what the photo sees of the curtain, for its locks
            curtain_mesh = Mesh(vertices=curtain_posed.astype(np.float32), faces=hair.curtain.faces)
            curtain_view = (curtain_posed, renderer.render([head_mesh, curtain_mesh], fit.camera).depth)
    finally:
        if own:
            renderer.close()
    P = (verts[corners] * bary[..., None]).sum(axis=1) @ R.T + t              # (N, 3) camera frame
    N = (vn[corners] * bary[..., None]).sum(axis=1) @ R.T
    N /= np.maximum(np.linalg.norm(N, axis=1, keepdims=True), 1e-12)
    z = P[:, 2]
    in_front = z > 1e-6
    zs = np.where(in_front, z, 1.0)
    uv = np.stack([K[0, 0] * P[:, 0] / zs + K[0, 2], K[1, 1] * P[:, 1] / zs + K[1, 2]], axis=1)

    H, W = image.shape[:2]
    inside = in_front & (uv[:, 0] >= -0.5) & (uv[:, 0] <= W - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= H - 0.5)
    px = np.clip(np.round(uv).astype(np.int64), 0, [W - 1, H - 1])
    depth = render.depth[px[:, 1], px[:, 0]].astype(np.float64)
    facing = (N * (-P / np.linalg.norm(P, axis=1, keepdims=True))).sum(axis=1)   # normal . view
    # One pixel spans z / f metres; on a surface turned by theta that is z / f * tan(theta) of depth.
    tan = np.sqrt(np.maximum(1.0 - facing ** 2, 0.0)) / np.maximum(facing, 0.05)
    tol = DEPTH_TOLERANCE_M + 1.0 * (z / K[0, 0]) * tan
    visible = inside & (depth > 0) & (np.abs(z - depth) < tol)
    fg = bilinear_sample(foreground, uv)
    conf = visible * smoothstep(FACING_MIN, FACING_FULL, facing) * smoothstep(0.3, 0.8, fg)
    colors = bilinear_sample(image, uv) / 255.0                                # (N, 3)

    hair_fill = coverage = beside_hair = None
    notes: list[str] = []
    if hair is not None:
        hair_cov = bilinear_sample(hair_mask, uv) * visible
        hair_fill, coverage = _hair_completion(anatomy, atlas, colors, conf, hair_cov, hair.reliable)
        if coverage is not None:   # hair the photo shows over the face's sides is hair, not bare cheek
            beside_hair = hair_beside_face(hair_cov, beside_face_weight(uv, landmarks),
                                           atlas.region, anatomy.region_names)
            coverage = np.maximum(coverage, beside_hair)
        colors, eye_note = _photo_eyes(image, landmarks, anatomy, atlas, colors)
        conf = np.where(atlas.region == anatomy.region_id(EYE_REGION), 1.0, conf)
        notes += [f"hair: {hair.reason}; using a thin default hair layer"] if not hair.reliable else []
        notes += [eye_note] if eye_note else []
    below_jaw = None if landmarks is None else below_jaw_weight(uv, landmarks, image.shape[:2])
    filled, stats = complete_texture(anatomy, atlas, corners, bary, colors, conf, seed, hair_fill=hair_fill,
                                     skin_gate=photo_skin_gate(image, uv), below_jaw=below_jaw,
                                     hair_beside_face=beside_hair)
    S = size
    if hair is not None and coverage is not None:
        hair.coverage = _scatter(coverage, atlas).ravel()[atlas.fill_from].reshape(S, S).astype(np.float32)
    tex = np.zeros((S * S, 3))
    tex[atlas.index] = filled
    tex = tex[atlas.fill_from]                                                 # gutters copy the nearest texel
    observed = np.zeros(S * S, np.float32)
    observed[atlas.index] = stats["observed"]
    outside = (foreground > 0.5) & (render.alpha < 0.5)
    texture = np.clip(np.round(tex * 255.0), 0, 255).astype(np.uint8).reshape(S, S, 3)
    if curtain_view is not None and hair.reliable:
        hair.curtain.shade = photo_lock_shade(hair.curtain, curtain_view[0], fit.camera, image, hair_mask,
                                              curtain_view[1], texture)
    return PortraitTexture(texture=texture,
                           observed=observed.reshape(S, S), foreground=foreground, outside_head=outside,
                           skin_color=stats["skin"], hair_color=stats["hair"], hair=hair, notes=notes)


def complete_texture(anatomy, atlas: TexelAtlas, corners: np.ndarray, bary: np.ndarray, colors: np.ndarray,
                     conf: np.ndarray, seed: int = 0, hair_fill: np.ndarray | None = None,
                     skin_gate: Callable[[np.ndarray], np.ndarray] | None = None,
                     below_jaw: np.ndarray | None = None, hair_beside_face: np.ndarray | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fill the texels the photo does not see. colors: (N, 3) in [0, 1] sampled from the photo;
    conf: (N,) in [0, 1]; hair_fill: (N, 3) colours for the unseen hair (`_hair_completion`), used
    instead of the median hair colour as the prior on the scalp and back of the head. skin_gate: skin
    (3,) -> (N,) how skin-like each texel's photo colour is (`photo_skin_gate`); None judges the
    sampled colours themselves. below_jaw: (N,) in [0, 1], how far below the photo's jaw line each
    texel's pixel lies (`perse.create.skin_gate.below_jaw_weight`): the lower face is gated there as
    the neck is. hair_beside_face: (N,) in [0, 1], face and ear texels that are hair the photo shows
    beside the face (`perse.create.skin_gate.hair_beside_face`): never gated as skin, and their prior is
    `hair_fill`, not skin (seen at grazing angles, they are mostly prior). Returns the completed (N, 3)
    colours and {"skin": (3,), "hair": (3,), "observed": (N,) the photo confidence after rejecting
    non-skin samples on neck, ears and below the jaw}."""
    import cv2

    names = anatomy.region_names
    W = atlas.region_weights.astype(np.float64)
    region = atlas.region
    reg = {name: W[:, i] for i, name in enumerate(names)}

    # Skin and hair medians from the directly seen texels.
    strong = conf > 0.5
    skin_sel = strong & np.isin(region, [names.index(r) for r in SKIN_REGIONS])
    if hair_beside_face is not None:   # the hair over the face's sides is not skin
        skin_sel &= hair_beside_face < 0.05
    hair_sel = (conf > 0.3) & np.isin(region, [names.index(r) for r in HAIR_REGIONS])
    if skin_sel.sum() < 50:
        raise PerseError("the photo shows too little of the face to measure the skin colour; use a frontal portrait")
    skin = weighted_median(colors[skin_sel], conf[skin_sel])
    # No visible scalp (e.g. a strongly lowered head): hair colour falls back to a darkened skin tone.
    hair = weighted_median(colors[hair_sel], conf[hair_sel]) if hair_sel.sum() >= 50 else 0.5 * skin

    # Neck and ears (and what lies below the jaw) are often covered by clothes, collars or hair in a
    # portrait: trust only skin-like samples there.
    gated = gate_weights(region, names, below_jaw)
    if hair_beside_face is not None:   # ears under a bob: their photo colour is the hair's
        gated = gated * (1.0 - hair_beside_face)
    likeness = skin_likeness(colors, skin) if skin_gate is None else skin_gate(skin)
    conf = conf * (1.0 - gated + gated * likeness)

    # (a) Mirror: take the mirror texel's photo colour where it was seen better than this one.
    mirror = mirror_texels(atlas.position.astype(np.float64))
    conf_m = conf[mirror]
    gain = np.clip(conf_m - conf, 0.0, 1.0)
    conf1 = conf + gain
    col1 = np.where(conf1[:, None] > 0, (conf[:, None] * colors + gain[:, None] * colors[mirror])
                    / np.maximum(conf1, 1e-12)[:, None], 0.0)

    # (b) Inpaint small holes and seams inside the seen area (in texture space, where cv2 works).
    S = atlas.size
    seen = np.zeros(S * S, bool)
    seen[atlas.index] = conf1 > 0.05
    seen = seen.reshape(S, S)
    img = np.zeros((S * S, 3))
    img[atlas.index] = col1
    img = img.reshape(S, S, 3)
    close = cv2.morphologyEx(seen.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)).astype(bool)
    covered = np.zeros(S * S, bool)
    covered[atlas.index] = True
    holes = close & ~seen & covered.reshape(S, S)
    if holes.any():
        img8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
        painted = cv2.inpaint(img8, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float64) / 255.0
        hole_texels = holes.ravel()[atlas.index]
        col1[hole_texels] = painted.reshape(-1, 3)[atlas.index[hole_texels]]
        # Inpainted texels are trusted like their seen surroundings, a little less.
        seen_conf = np.where(seen, _scatter(conf1, atlas), 0.0)
        neighbour = cv2.blur(seen_conf, (7, 7)) / np.maximum(cv2.blur(seen.astype(np.float64), (7, 7)), 1e-6)
        conf1[hole_texels] = np.clip(0.8 * neighbour.ravel()[atlas.index[hole_texels]], 0.0, 1.0)

    # (c) Prior colours from the medians.
    P = atlas.position.astype(np.float64)
    rng = np.random.default_rng([int(seed), 11])
    variation = 1.0 + 0.06 * sine_noise(P, rng, wavelength=0.04) + 0.02 * sine_noise(P, rng, wavelength=0.01)
    hair_w = np.clip(sum(reg[r] for r in HAIR_FILL_REGIONS), 0.0, 1.0)
    if hair_beside_face is not None and hair_fill is not None:
        hair_w = np.clip(hair_w + hair_beside_face, 0.0, 1.0)
    eye_w = reg[EYE_REGION]
    skin_w = np.clip(1.0 - hair_w - eye_w, 0.0, 1.0)
    hair_prior = np.clip(hair * variation[:, None], 0.0, 1.0) if hair_fill is None else hair_fill
    prior = skin_w[:, None] * skin + hair_w[:, None] * hair_prior + eye_w[:, None] * SCLERA

    # Blend observed (+ mirrored, inpainted) and prior by a confidence feathered on the mesh: the
    # smoothed confidence only lowers the weight near the border of the seen area, never raises it.
    feather = smooth_on_mesh(conf1, corners, bary, anatomy.vertices.shape[0], anatomy.faces, steps=4)
    alpha = np.clip(conf1 * np.clip(1.5 * feather, 0.0, 1.0), 0.0, 1.0)[:, None]
    out = alpha * col1 + (1.0 - alpha) * prior
    return np.clip(out, 0.0, 1.0), {"skin": skin, "hair": hair, "observed": conf.astype(np.float32)}


# --------------------------------------------------------------------------------------------------
# Hair layer and eyes (with the portrait's landmarks)
# --------------------------------------------------------------------------------------------------
def _hair_layer(image: np.ndarray, landmarks: np.ndarray, foreground: np.ndarray, verts: np.ndarray,
                normals: np.ndarray, anatomy, fit, renderer) -> tuple[HairLayer, np.ndarray]:
    """The hair layer of the posed head (verts, normals: (V, 3) world) and the photo's hair mask (H, W)."""
    from perse.render.gl import Mesh

    mask, reason = segment_hair(image, landmarks, foreground)
    alpha = renderer.render([Mesh(vertices=verts.astype(np.float32), faces=anatomy.faces)], fit.camera).alpha
    if not reason and alpha[0].max() > 0.5:   # the head runs off the top: its outline is not in the photo
        reason = "the portrait is cropped at the top of the head, so the hair's outline is unknown"
    on_shell = anatomy.vertex_mask(SHELL_REGIONS)
    centre, _ = fit_sphere(verts[on_shell])
    thickness = build_hair_thickness(verts, anatomy.faces, anatomy.regions, anatomy.region_names, centre,
                                     fit.camera, alpha, mask, landmarks, reliable=not reason)
    above_mouth = np.arange(image.shape[0])[:, None] < landmarks[[MOUTH_CORNER["R"], MOUTH_CORNER["L"]], 1].mean()
    curtain = None if reason else build_curtain(
        verts, anatomy.faces, anatomy.uvs, anatomy.uv_faces, anatomy.vertices, on_shell, thickness, normals, centre,
        fit.camera, alpha, mask, person_outline=(foreground > 0.5) & above_mouth,
        exclude=anatomy.vertex_mask(["eyeballs"]))
    return HairLayer(thickness=thickness, reliable=not reason, reason=reason, curtain=curtain), mask


def _hair_completion(anatomy, atlas: TexelAtlas, colors: np.ndarray, conf: np.ndarray, hair_cov: np.ndarray,
                     reliable: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Unseen hair colours (N, 3) synthesized from the seen hair, and the per-texel hair coverage (N,):
    the photo's hair mask where the photo sees the texel, hair on every unseen scalp / back texel.
    (None, None) when the hair is unreliable or too little of it is seen."""
    if not reliable:
        return None, None
    shell = np.isin(atlas.region, [anatomy.region_id(r) for r in SHELL_REGIONS])
    # Sources: clearly seen, clearly hair texels of the scalp and back of the head (bangs lie on the
    # forehead's curvature and would bend the fold).
    seen_hair = np.nonzero((conf > 0.5) & (hair_cov > 0.7) & shell)[0]
    if seen_hair.shape[0] < 50:
        return None, None
    fill = colors.copy()
    targets = np.nonzero(shell)[0]
    fill[targets] = synthesize_unseen_hair(atlas.position.astype(np.float64), anatomy.head_center, colors,
                                           seen_hair, targets)
    seen = np.clip(2.0 * conf, 0.0, 1.0)
    coverage = np.where(shell, seen * hair_cov + (1.0 - seen), hair_cov)
    # Only where hair grows, the hair category's regions (dark collars or shadows next to the face are not
    # hair; bangs on the forehead are).
    grows = np.clip(sum(atlas.region_weights[:, anatomy.region_id(r)] for r in category_by_name("hair").regions),
                    0.0, 1.0)
    return fill, np.clip(coverage * grows, 0.0, 1.0)


def photo_eye_colors(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(iris, sclera) RGB colours in [0, 1] read inside both eye openings of the portrait, or None when
    the eyes are closed (too few pixels inside the lids)."""
    from matplotlib.path import Path as PolyPath

    h, w = image.shape[:2]
    iris_px, sclera_px = [], []
    for side, iris_ids in IRIS.items():
        poly = eye_opening_polygon(landmarks, side)
        centre = landmarks[iris_ids[0]]
        radius = float(np.linalg.norm(landmarks[list(iris_ids[1:])] - centre, axis=1).mean())
        x0, y0 = np.floor(poly.min(0)).astype(int)
        x1, y1 = np.ceil(poly.max(0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        inside = PolyPath(poly).contains_points(pts)
        d = np.linalg.norm(pts - centre, axis=1)
        pix = image[ys.ravel(), xs.ravel()].astype(np.float64) / 255.0
        iris_px.append(pix[inside & (d < 0.85 * radius)])
        sclera_px.append(pix[inside & (d > 1.2 * radius)])
    iris_all = np.concatenate(iris_px) if iris_px else np.zeros((0, 3))
    sclera_all = np.concatenate(sclera_px) if sclera_px else np.zeros((0, 3))
    if iris_all.shape[0] < 12 or sclera_all.shape[0] < 6:
        return None

    def band(px: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """Median of the pixels between two luminance percentiles (drops pupil, highlights, lashes)."""
        lum = luminance(px)
        keep = (lum >= np.percentile(lum, lo)) & (lum <= np.percentile(lum, hi))
        return np.median(px[keep], axis=0)

    # Sclera: the least saturated half of the eye white's candidates (lid skin at the corners is more
    # saturated), then its middle: the eye white as the photo shows it, shade included (its brightest
    # pixels made every avatar stare).
    saturation = sclera_all.max(1) - sclera_all.min(1)
    whites = sclera_all[saturation <= np.percentile(saturation, 50)]
    return band(iris_all, 35, 85), band(whites, 25, 85)


def photo_iris_angle(landmarks: np.ndarray, anatomy, fallback: float) -> float:
    """Iris half-angle (radians) on the head's eyeballs for the portrait's iris size: the photo's iris
    radius over its eye width (corner to corner), times the head's eye width, over the eyeball radius.
    `fallback` (the head's own) where the photo's landmarks give no usable size."""
    ratios = []
    for side in ("R", "L"):
        ring = landmarks[list(IRIS[side])]
        width = np.linalg.norm(landmarks[EYE_OUTER[side]] - landmarks[EYE_INNER[side]])
        if width > 1e-6:
            ratios.append(np.linalg.norm(ring[1:] - ring[0], axis=1).mean() / width)
    head_width = np.mean([np.linalg.norm(anatomy.lmk(EYE_OUTER[s])[0] - anatomy.lmk(EYE_INNER[s])[0])
                          for s in ("R", "L")])
    if not ratios or not np.isfinite(ratios).all():
        return fallback
    sine = np.mean(ratios) * head_width / float(np.mean(anatomy.eye_radii))
    return float(np.clip(np.arcsin(np.clip(sine, 0.0, 0.99)), IRIS_ANGLE_RANGE[0], IRIS_ANGLE_RANGE[1]))


def _photo_eyes(image: np.ndarray, landmarks: np.ndarray, anatomy, atlas: TexelAtlas, colors: np.ndarray
                ) -> tuple[np.ndarray, str]:
    """colors (N, 3) with the eyeballs painted: iris and sclera colours from the photo (never brighter
    than the photo's own sclera), pupil and limbal ring; and a note when the eyes are closed."""
    measured = photo_eye_colors(image, landmarks)
    note = ""
    if measured is None:
        iris, sclera = np.array([0.30, 0.20, 0.12]), np.array(SCLERA_COLOR) * 0.85
        note = "eyes: the portrait's eyes look closed; the avatar gets brown irises (open-eyed photos work best)"
    else:
        iris, sclera = measured
    eye = atlas.region == anatomy.region_id(EYE_REGION)
    theta, azimuth, iris_angle = eye_coordinates(anatomy, atlas.position.astype(np.float64)[eye])
    iris_angle = photo_iris_angle(landmarks, anatomy, fallback=iris_angle)
    out = colors.copy()
    out[eye] = eye_albedo(theta, azimuth, iris_angle, sclera, iris)
    return out, note


def _scatter(values: np.ndarray, atlas: TexelAtlas) -> np.ndarray:
    """(N,) per-texel values -> (S, S) image, 0 off the atlas."""
    out = np.zeros(atlas.size * atlas.size)
    out[atlas.index] = values
    return out.reshape(atlas.size, atlas.size)
