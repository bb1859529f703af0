"""The hair curtain: hair hanging below the scalp shell, fitted to the portrait's outline; tried on the
astronaut (a bob down to the jaw) and on mirrored, re-framed and scaled versions of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perse.errors import PerseError
from perse.geometry.rotations import best_rotation
from perse.mesh_ops import vertex_normals
from perse.render.gl import Mesh
from perse.synth.anatomy import fit_sphere, head_anatomy
from perse.synth.binding import Binding
from perse.synth.hair import SHELL_REGIONS, HairLayer, segment_hair
from perse.synth.hair_curtain import (CLEARANCE_M, FRONT_MIN_RAD, HairCurtain, build_curtain, hair_bottom_row,
                                      outline_extent, to_head_frame)
from portrait_variants import FRAMINGS, textured_case

pytest.importorskip("skimage.data")
pytestmark = pytest.mark.gui  # the GL mesh renderer needs a display (Xvfb in CI)


@pytest.fixture(scope="module", params=FRAMINGS)
def case(request, builtin_head, renderer):
    image, face, fit, result = textured_case(request.param, builtin_head, renderer)
    with torch.no_grad():
        verts = builtin_head(fit.params).vertices[0].double().numpy()
    return image, face, fit, result, verts


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# -- pure functions ------------------------------------------------------------------------------
def test_best_rotation_recovers_a_turn():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(200, 3))
    a = 0.4
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    assert np.allclose(best_rotation(pts, pts @ R.T + [1.0, 2.0, 3.0]), R, atol=1e-9)


def test_outline_extent_and_hair_bottom_row():
    mask = np.zeros((100, 100), bool)
    mask[20:60, 30:81] = True                      # right half reaches x = 80 from an axis at 50
    assert np.allclose(outline_extent(mask, np.array([10.0, 30.0, 70.0]), np.full(3, 50.0), +1), [0, 30, 0])
    assert outline_extent(mask, np.array([30.0]), np.array([50.0]), -1)[0] == 20
    hair = np.zeros((100, 100), bool)
    hair[20:40, 70:75] = True
    hair[43:50, 70:75] = True                      # a 3-row gap: still the same lock
    hair[70:80, 70:75] = True                      # far below: not contiguous
    assert hair_bottom_row(hair, 20.0, 50.0, +1, gap_px=4) == 49
    assert hair_bottom_row(hair, 20.0, 50.0, -1, gap_px=4) == 20     # nothing on the other side


# -- on the portrait -----------------------------------------------------------------------------
def test_curtain_brings_the_head_outline_to_the_portraits(case, builtin_head, renderer):
    """The astronaut's bob falls to her jaw: with the curtain the head ∪ hair silhouette above the mouth
    matches the portrait's person outline better than the shell alone does."""
    image, face, fit, result, v = case
    curtain = result.hair.curtain
    assert curtain is not None
    a = head_anatomy(builtin_head)
    shell = result.hair.shell_vertices(v, vertex_normals(v, a.faces))
    meshes = [Mesh(vertices=shell.astype(np.float32), faces=a.faces)]
    alone = renderer.render(meshes, fit.camera).alpha > 0.5
    hung = Mesh(vertices=curtain.posed(v, a.faces).astype(np.float32), faces=curtain.faces)
    both = renderer.render(meshes + [hung], fit.camera).alpha > 0.5
    above = np.arange(image.shape[0])[:, None] < face.points[[61, 291], 1].mean()
    target = (result.foreground > 0.5) & above
    before, after = iou(alone & above, target), iou(both & above, target)
    assert after > before + 0.02 and after > 0.9, (before, after)


def test_curtain_hangs_beside_and_behind_the_head_off_its_surface(case, builtin_head):
    _, _, _, result, v = case
    a = head_anatomy(builtin_head)
    on = a.vertex_mask(SHELL_REGIONS)
    centre, _ = fit_sphere(v[on])
    R = best_rotation(a.vertices[on], v[on])
    pts = to_head_frame(result.hair.curtain.posed(v, a.faces), centre, R)
    azimuth = np.abs(np.arctan2(pts[:, 0], pts[:, 2]))
    assert azimuth.min() > FRONT_MIN_RAD - np.radians(3)               # beside the face, never over it
    from scipy.spatial import cKDTree

    gap, _ = cKDTree(v[~a.vertex_mask(["eyeballs"])]).query(result.hair.curtain.posed(v, a.faces))
    assert np.quantile(gap, 0.01) > 0.25 * CLEARANCE_M                   # off the skin (smoothing may graze it)
    assert pts[:, 1].min() > -0.25 and pts[:, 1].min() < -0.03           # down to about the jaw, no further


def test_short_hair_gets_no_curtain(case, builtin_head, renderer):
    """Hair that ends at the hairline's height (short hair: nothing beside the temples or the ears): no curtain."""
    image, face, fit, result, v = case
    a = head_anatomy(builtin_head)
    mask, _ = segment_hair(image, face.points, result.foreground)
    mask[int(face.points[10, 1]):] = 0                                     # nothing below the hairline
    on = a.vertex_mask(SHELL_REGIONS)
    centre, _ = fit_sphere(v[on])
    alpha = renderer.render([Mesh(vertices=v.astype(np.float32), faces=a.faces)], fit.camera).alpha
    out = build_curtain(v, a.faces, a.uvs, a.uv_faces, a.vertices, on, result.hair.thickness,
                        vertex_normals(v, a.faces), centre, fit.camera, alpha, mask)
    assert out is None


def test_hair_layer_keeps_its_curtain_and_rejects_a_damaged_one(case, tmp_path):
    _, _, _, result, _ = case
    layer = result.hair
    layer.save(tmp_path / "h.npz")
    back = HairLayer.load(tmp_path / "h.npz", layer.thickness.shape[0])
    assert back.curtain is not None and np.array_equal(back.curtain.faces, layer.curtain.faces)
    assert np.allclose(back.curtain.binding.local, layer.curtain.binding.local, atol=1e-4)
    broken = HairLayer(layer.thickness, curtain=HairCurtain(layer.curtain.binding, layer.curtain.faces + 10 ** 6,
                                                            layer.curtain.shade, layer.curtain.sources))
    broken.save(tmp_path / "b.npz")
    with pytest.raises(PerseError, match="curtain faces"):
        HairLayer.load(tmp_path / "b.npz", layer.thickness.shape[0])
    c, n = layer.curtain, layer.curtain.num_vertices - 1                   # one vertex short of the grid
    ragged = HairCurtain(Binding(c.binding.face[:n], c.binding.local[:n]), c.faces[:0], c.shade[:n], c.sources)
    HairLayer(layer.thickness, curtain=ragged).save(tmp_path / "r.npz")
    with pytest.raises(PerseError, match="not a grid"):
        HairLayer.load(tmp_path / "r.npz", layer.thickness.shape[0])
    # A curtain from an older build (bound by barycentrics without frame coordinates, or textured through
    # per-vertex head uvs without texture sources): one line, what to do.
    for missing in ("curtain_local", "curtain_sources"):
        with np.load(tmp_path / "h.npz") as z:
            arrays = {k: z[k] for k in z.files if k != missing}
        np.savez(tmp_path / "old.npz", **arrays)
        with pytest.raises(PerseError, match="older build.*rerun the texture stage"):
            HairLayer.load(tmp_path / "old.npz", layer.thickness.shape[0])


def test_dataset_frames_draw_the_curtain_and_hair_variants_recolour_it(case, builtin_head, renderer):
    from dataclasses import replace

    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.seeding import dataset_seeds
    from perse.synth.variants import CATEGORIES

    image, face, fit, result, v = case
    ref = {c.name: c.reference for c in CATEGORIES}
    with_curtain = FrameRenderer(builtin_head, CATEGORIES, base_texture=result.texture, hair_layer=result.hair,
                                 renderer=renderer)
    without = FrameRenderer(builtin_head, CATEGORIES, base_texture=result.texture,
                            hair_layer=replace(result.hair, curtain=None), renderer=renderer)
    rgba, _, _ = with_curtain.render(ref, v, fit.camera, 0)
    plain, _, _ = without.render(ref, v, fit.camera, 0)
    black, _, _ = with_curtain.render({**ref, "hair": "black"}, v, fit.camera, 0)
    hung = (rgba[..., 3] > 128) & (plain[..., 3] < 10)
    assert hung.sum() > 200
    lum = lambda x: x[..., :3].astype(float).mean(axis=-1)
    assert lum(black)[hung].mean() < 0.6 * lum(rgba)[hung].mean()
    # Every texel of the curtain's own texture is the hair's, recoloured with it: none reads a gutter or
    # another island of the head's layout (the seam down the back once drew a skin-coloured zigzag).
    curtain = result.hair.curtain
    black_curtain = lum(curtain.texture(with_curtain.texture({**ref, "hair": "black"})))
    brown_curtain = lum(curtain.texture(with_curtain.texture(ref)))
    assert np.quantile(black_curtain, 0.999) < 0.5 * np.median(brown_curtain)
    # The curtain continues the shell's texture down its length instead of repeating one texel per column.
    assert np.median(brown_curtain.std(axis=0)) > 2.0
    # Seeds: the curtain's Gaussians are anatomy (always shown), bound to the hair's own triangles.
    neutral = with_curtain.posed_vertices(replace(fit.params, expression=torch.zeros_like(fit.params.expression)))
    a = head_anatomy(builtin_head)
    seeds = dataset_seeds(with_curtain, neutral, np.random.default_rng(0))
    fewer = dataset_seeds(without, neutral, np.random.default_rng(0))
    extra = len(seeds) - len(fewer)
    assert extra > 300
    on_shell = a.vertex_mask(SHELL_REGIONS)[a.faces].all(axis=1)
    assert on_shell[seeds.face[-extra:]].all() and (seeds.category[-extra:] == -1).all()


def test_the_curtain_takes_the_photos_locks_where_the_photo_sees_it(case, builtin_head, renderer):
    """Where the portrait's camera sees the curtain on the photo's hair, its brightness follows the
    photo's (here a flat grey, so every seen vertex comes out at that grey); the back keeps its own."""
    from scipy.ndimage import binary_dilation

    from perse.render.camera import seen_points
    from perse.synth.curtain_locks import (LOCK_FEATHER_COLUMNS, LOCK_FEATHER_ROWS, LOCK_SHADE_RANGE,
                                           PHOTO_DEPTH_TOLERANCE_M, photo_lock_shade)
    from perse.synth.hair_curtain import grid_shape
    from perse.synth.palette import luminance

    image, _, fit, result, v = case
    curtain, a = result.hair.curtain, head_anatomy(builtin_head)
    posed = curtain.posed(v, a.faces)
    shell = result.hair.shell_vertices(v, vertex_normals(v, a.faces))
    meshes = [Mesh(vertices=shell.astype(np.float32), faces=a.faces),
              Mesh(vertices=posed.astype(np.float32), faces=curtain.faces)]
    depth = renderer.render(meshes, fit.camera).depth
    grey = np.full(image.shape, 120, np.uint8)
    hair = np.ones(image.shape[:2], np.float32)
    shade = photo_lock_shade(curtain, posed, fit.camera, grey, hair, depth, result.texture)
    texel = luminance(curtain.texel_colors(result.texture))
    _, visible = seen_points(fit.camera, posed, depth, PHOTO_DEPTH_TOLERANCE_M)
    changed = np.abs(shade - curtain.shade) > 1e-9
    assert 30 < (changed & visible).sum() < 0.5 * curtain.num_vertices       # the seen side hair
    rows, cols = grid_shape(curtain.num_vertices)
    # Far from all it sees (beyond the feather's reach across and down the columns), the curtain keeps its
    # own shade.
    # scipy's Gaussian stops at int(4 sigma + 0.5) rows; the fade at LOCK_FEATHER_COLUMNS columns.
    reach = (2 * int(4 * LOCK_FEATHER_ROWS + 0.5) + 1, 2 * int(np.ceil(LOCK_FEATHER_COLUMNS)) + 1)
    far = ~binary_dilation(visible.reshape(rows, cols), np.ones(reach, bool)).ravel()
    assert far.mean() > 0.2 and not changed[far].any()
    gain = shade / curtain.shade
    free = changed & visible & (gain > LOCK_SHADE_RANGE[0] + 1e-6) & (gain < LOCK_SHADE_RANGE[1] - 1e-6) \
        & (shade < LOCK_SHADE_RANGE[1] - 1e-6)                                # not clipped
    assert free.sum() > 10
    np.testing.assert_allclose(np.median((texel * shade)[free]), 120 / 255, atol=0.01)  # drawn as the photo
    none = photo_lock_shade(curtain, posed, fit.camera, grey, np.zeros_like(hair), depth, result.texture)
    np.testing.assert_array_equal(none, np.clip(curtain.shade, 0.05, LOCK_SHADE_RANGE[1]))  # off the hair mask


def test_feathered_gains_continue_down_the_hair_and_fade_out():
    """Past the last vertex the photo sees, a row continues its gain and fades it to 1 (no change) over
    LOCK_FEATHER_COLUMNS: no step where the photo stops, and no horizontal band from one row's gain."""
    from perse.geometry.easing import smoothstep
    from perse.synth.curtain_locks import LOCK_FEATHER_COLUMNS, feather_gain

    rows, cols = 28, 40
    known = np.zeros((rows, cols), bool)
    known[:, :6] = True
    gain = np.where(known, 0.6, 1.0)
    out = feather_gain(gain, known)
    np.testing.assert_array_equal(out[known], gain[known])                  # what the photo sees is kept
    middle = out[rows // 2]
    assert abs(middle[6] - 0.6) < 0.02                                       # no step at the border
    assert np.all(np.diff(middle[5:]) >= -1e-12)                             # eases back toward 1
    np.testing.assert_allclose(middle[6 + int(np.ceil(LOCK_FEATHER_COLUMNS)):], 1.0)
    varying = np.where(known, np.linspace(0.5, 0.9, rows)[:, None], 1.0)     # each row's locks its own
    out = feather_gain(varying, known)
    # Next to the run each row continues its own gain, unsmoothed: no step where the photo stops.
    first_fade = 1.0 - smoothstep(0.0, LOCK_FEATHER_COLUMNS, 1.0)
    np.testing.assert_allclose(out[:, 6], 1.0 + first_fade * (varying[:, 5] - 1.0), atol=1e-9)
    lone = np.zeros((rows, cols), bool)
    lone[rows // 2, :6] = True                      # one row seen: smoothed away a few columns out
    out = feather_gain(np.where(lone, 0.6, 1.0), lone)
    unsmoothed = 1.0 - 0.4 * (1.0 - smoothstep(0.0, LOCK_FEATHER_COLUMNS, 5.0))
    assert out[rows // 2, 10] > 0.95 > unsmoothed
    np.testing.assert_array_equal(feather_gain(gain, np.zeros_like(known)), np.ones_like(gain))
