"""The hair layer: hair mask, shell thickness from the portrait's outline, unseen-hair synthesis, eyes
from the photo; tried on the astronaut and on re-framed / mirrored versions of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perse.create.portrait_texture import photo_eye_colors, portrait_texture
from perse.errors import PerseError
from perse.head import load_builtin_head
from perse.mesh_ops import vertex_normals
from perse.render.gl import Mesh
from perse.synth.hair import (STRAND_SPREAD, HairLayer, fold_into, ray_extent, segment_hair, strand_quantiles,
                              synthesize_unseen_hair)
from perse.synth.anatomy import head_anatomy
from perse.track import detect_largest_face, fit_head
from portrait_variants import FRAMINGS, textured_case

skdata = pytest.importorskip("skimage.data")

pytestmark = pytest.mark.gui  # the GL mesh renderer needs a display (Xvfb in CI)


@pytest.fixture(scope="module")
def head():
    return load_builtin_head()


@pytest.fixture(scope="module", params=FRAMINGS)
def case(request, head, renderer):
    return textured_case(request.param, head, renderer)


# -- pure functions ------------------------------------------------------------------------------
def test_fold_is_continuous_and_stays_in_range():
    x = np.linspace(-10, 10, 20001)
    y = fold_into(x, -1.0, 2.0)
    assert y.min() >= -1.0 - 1e-12 and y.max() <= 2.0 + 1e-12
    assert np.abs(np.diff(y)).max() <= np.abs(np.diff(x)).max() + 1e-9   # no jumps
    inside = (x >= -1) & (x <= 2)
    assert np.allclose(y[inside], x[inside])


def test_ray_extent_of_a_disc():
    yy, xx = np.mgrid[0:101, 0:101]
    disc = (xx - 50) ** 2 + (yy - 50) ** 2 <= 30 ** 2
    r = ray_extent(disc, np.array([50.0, 50.0]), np.linspace(0, 2 * np.pi, 16, endpoint=False), 80.0, step=0.5)
    assert np.all(np.abs(r - 30.0) <= 1.0)


def test_unseen_hair_copies_only_seen_colours():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(4000, 3))
    pos = 0.1 * d / np.linalg.norm(d, axis=1, keepdims=True)
    colors = rng.uniform(size=(4000, 3))
    seen = np.nonzero(pos[:, 2] > 0.03)[0]             # the front
    target = np.nonzero(pos[:, 2] < -0.03)[0]          # the back
    out = synthesize_unseen_hair(pos, np.zeros(3), colors, seen, target)
    palette = {tuple(c) for c in colors[seen]}
    assert all(tuple(c) in palette for c in out)


def test_strands_take_the_middle_of_the_palette_and_darken_toward_the_lowest_hair():
    """Combed strands span STRAND_SPREAD of the palette's luminance quantiles (not the front's highlights and
    shadows), centred lower on the lowest hair than at the crown."""
    rng = np.random.default_rng(0)
    strands = rng.uniform(size=4000)
    level = strand_quantiles(strands, np.zeros(4000))
    assert np.ptp(level) == pytest.approx(STRAND_SPREAD * np.ptp(strands))
    elevation = rng.uniform(-1.0, 1.0, size=4000)
    q = strand_quantiles(strands, elevation)
    assert q.min() >= 0.0 and q.max() <= 1.0
    assert q[elevation > 0.8].mean() > q[elevation < -0.8].mean() + 0.1
    assert np.corrcoef(strands, q)[0, 1] > 0.8          # the strand pattern still orders them


def test_hair_layer_round_trip_and_bad_files(tmp_path):
    layer = HairLayer(thickness=np.linspace(0, 0.02, 50).astype(np.float32),
                      coverage=np.eye(8, dtype=np.float32), reliable=False, reason="a hat")
    layer.save(tmp_path / "h.npz")
    back = HairLayer.load(tmp_path / "h.npz", 50)
    assert np.allclose(back.thickness, layer.thickness) and back.reason == "a hat" and not back.reliable
    assert np.allclose(back.coverage, layer.coverage, atol=1 / 255)
    with pytest.raises(PerseError, match="another head model"):
        HairLayer.load(tmp_path / "h.npz", 51)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(PerseError, match="cannot read the hair layer"):
        HairLayer.load(tmp_path / "bad.npz")
    HairLayer(thickness=np.full(5, np.nan, np.float32)).save(tmp_path / "nan.npz")
    with pytest.raises(PerseError, match="invalid thicknesses"):
        HairLayer.load(tmp_path / "nan.npz")


# -- on real photos --------------------------------------------------------------------------------
def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_shell_matches_the_portrait_outline(case, head, renderer):
    """The head with its hair shell covers the portrait's head outline (hair mask ∪ face) above the
    mouth far better than the bald head does."""
    image, face, fit, result = case
    hair = result.hair
    assert hair.reliable, hair.reason
    a = head_anatomy(head)
    with torch.no_grad():
        v = head(fit.params).vertices[0].double().numpy()
    bald = renderer.render([Mesh(vertices=v.astype(np.float32), faces=a.faces)], fit.camera).alpha > 0.5
    shell = hair.shell_vertices(v, vertex_normals(v, a.faces))
    full = renderer.render([Mesh(vertices=shell.astype(np.float32), faces=a.faces)], fit.camera).alpha > 0.5
    mask, _ = segment_hair(image, face.points, result.foreground)
    above = np.arange(image.shape[0])[:, None] < face.points[[61, 291], 1].mean()
    target = ((mask > 0.5) | bald) & above
    iou_bald, iou_shell = silhouette_iou(bald & above, target), silhouette_iou(full & above, target)
    assert iou_shell > iou_bald + 0.05 and iou_shell > 0.85, (iou_bald, iou_shell)
    assert 0.005 < hair.thickness.max() < 0.07


def test_back_of_head_hair_has_only_visible_hair_colours(case, head):
    """Unseen hair (the back) is synthesized from the seen hair: every back texel's colour lies within
    10 ΔE of some seen hair texel's colour."""
    from skimage.color import rgb2lab

    from perse.synth.uv_atlas import build_atlas

    _, _, _, result = case
    atlas = build_atlas(head_anatomy(head), 256)
    tex = result.texture.reshape(-1, 3)[atlas.index].astype(np.float64) / 255
    back = (atlas.region == head_anatomy(head).region_id("back_of_head")) & (atlas.position[:, 2] < -0.02)
    seen = (result.observed.ravel()[atlas.index] > 0.5) & (result.hair.coverage.ravel()[atlas.index] > 0.7)
    lab_back = rgb2lab(tex[back][None])[0]
    lab_seen = rgb2lab(tex[seen][None])[0]
    from scipy.spatial import cKDTree

    d, _ = cKDTree(lab_seen).query(lab_back)
    assert (d > 10).mean() <= 0.02


def test_the_seen_neck_ends_where_the_photos_skin_ends_not_along_triangles(case, head):
    """Texels on both sides of the beard / neck region border see the same photo pixels below the jaw,
    so they trust the photo alike. (Gated by region label alone, the beard side kept the photo's
    shadowed neck and collar edge while the neck side dropped it: a sawtooth along the triangles.)"""
    from scipy.ndimage import binary_dilation

    from perse.synth.uv_atlas import build_atlas

    _, _, _, result = case
    a = head_anatomy(head)
    atlas = build_atlas(a, 256)
    S = atlas.size
    label = np.full(S * S, -1)
    label[atlas.index] = atlas.region
    front = np.zeros(S * S, bool)
    front[atlas.index] = atlas.normal[:, 2] > 0.3
    label, front = label.reshape(S, S), front.reshape(S, S)
    beard, neck = label == a.region_id("beard"), label == a.region_id("neck")
    near = np.ones((3, 3), bool)
    beard_side = beard & binary_dilation(neck, near) & front
    neck_side = neck & binary_dilation(beard, near) & front
    assert beard_side.sum() > 50 and neck_side.sum() > 50
    assert result.observed[beard_side | neck_side].max() > 0.3     # the photo does see the border
    assert abs(result.observed[beard_side].mean() - result.observed[neck_side].mean()) < 0.15


def test_bangs_are_hair_and_the_cheeks_are_not(case, head):
    _, _, _, result = case
    from perse.synth.uv_atlas import build_atlas

    a = head_anatomy(head)
    atlas = build_atlas(a, 256)
    cov = result.hair.coverage.ravel()[atlas.index]
    forehead = atlas.region == a.region_id("forehead")
    cheeks = (atlas.region == a.region_id("face")) & (atlas.position[:, 1] < a.landmarks[1][1])  # below the nose tip
    assert cov[forehead].mean() > 0.25            # the astronaut's bangs cover much of her forehead
    assert cov[cheeks].max() < 0.05


def test_hair_framing_the_face_is_hair_not_bare_cheek(case, head):
    """The astronaut's bob frames her face beside the eyes: face texels there that the photo sees as hair
    join the hair coverage (hair variants recolour them) and keep the hair's colour; as skin they showed a
    band of bare cheek between the face and the hair at +-20 degrees."""
    from perse.landmarks import EYE_OUTER, MOUTH_CORNER
    from perse.synth.uv_atlas import build_atlas

    _, _, _, result = case
    a = head_anatomy(head)
    atlas = build_atlas(a, 256)
    P = atlas.position
    eye_x = abs(a.lmk(EYE_OUTER["L"])[0][0])
    mouth_y = a.lmk(MOUTH_CORNER["L"])[0][1]
    side = (atlas.region == a.region_id("face")) & (np.abs(P[:, 0]) > eye_x + 0.01) & (P[:, 1] > mouth_y)
    cov = result.hair.coverage.ravel()[atlas.index]
    framed = side & (cov > 0.5)
    assert framed.sum() > 100
    tex = result.texture.reshape(-1, 3)[atlas.fill_from][atlas.index].astype(np.float64) / 255.0
    to_hair = np.linalg.norm(tex[framed] - result.hair_color, axis=1)
    to_skin = np.linalg.norm(tex[framed] - result.skin_color, axis=1)
    assert np.median(to_hair) < np.median(to_skin)
    # Between the eyes nothing changes: the nose and the inner cheeks stay skin.
    inner = (atlas.region == a.region_id("face")) & (np.abs(P[:, 0]) < 0.5 * eye_x)
    assert cov[inner].max() < 0.05
    # Her ears are under the bob: hair too (as skin they were a pale strip between cheek and hair).
    ears = atlas.region == a.region_id("ears")
    assert (ears & (cov > 0.5)).sum() > 0.2 * ears.sum()
    under = ears & (cov > 0.5)
    assert np.median(np.linalg.norm(tex[under] - result.hair_color, axis=1)) \
        < np.median(np.linalg.norm(tex[under] - result.skin_color, axis=1))


def test_eyes_take_the_photo_colours(case, head):
    """The iris is darker and more saturated than the sclera, both read from the photo, and the sclera is
    never brighter than the photo's brightest sclera pixels."""
    image, face, _, result = case
    iris, sclera = photo_eye_colors(image, face.points)
    assert iris.mean() < sclera.mean() - 0.15
    from perse.synth.uv_atlas import build_atlas

    a = head_anatomy(head)
    atlas = build_atlas(a, 256)
    tex = result.texture.reshape(-1, 3)[atlas.index].astype(np.float64) / 255
    eye = tex[atlas.region == a.region_id("eyeballs")]
    assert eye.max() <= sclera.max() + 2 / 255
    assert 0.02 < (eye.mean(1) <= iris.mean() + 0.05).mean() < 0.2     # irises and pupils, not black eyes
    assert (sclera.max() - sclera.min()) < (iris.max() - iris.min())    # a white, not a skin tone


def test_closed_eyes_are_reported(head, renderer):
    image = skdata.astronaut().copy()
    face = detect_largest_face(image, "astronaut").face
    from perse.landmarks import EYE_LOWER_LID, EYE_UPPER_LID

    closed = face.points.copy()
    for upper, lower in ((EYE_UPPER_LID["R"], EYE_LOWER_LID["R"]), (EYE_UPPER_LID["L"], EYE_LOWER_LID["L"])):
        closed[list(lower)] = closed[list(upper)]        # lids meet: no eye opening left
    assert photo_eye_colors(image, closed) is None
    assert photo_eye_colors(image, face.points) is not None


def test_portrait_cropped_at_the_hairline_gets_a_thin_layer_and_a_note(head, renderer):
    """No hair above the face: the layer is marked unreliable, says why, and stays thin."""
    image = skdata.astronaut()
    face = detect_largest_face(image, "astronaut").face
    top = int(face.points[[70, 63, 105, 66, 107, 300, 293, 334, 296, 336], 1].min()) - 6   # just above the brows
    cropped = np.ascontiguousarray(image[top:top + 384, 64:448])
    face = detect_largest_face(cropped, "cropped").face
    fit = fit_head(head, face.points, (cropped.shape[1], cropped.shape[0]))
    result = portrait_texture(cropped, head, fit, size=256, renderer=renderer, landmarks=face.points)
    assert not result.hair.reliable and "hair" in result.hair.reason
    assert any(n.startswith("hair:") and "thin default" in n for n in result.notes)
    assert result.hair.thickness.max() <= 0.005


def test_unseen_hair_far_from_the_seen_hair_is_combed_strands_of_its_palette():
    """The back of the head gets strands that run from the crown down (colour changes much faster around
    the head than down it), in the seen hair's luminances without its darkest shadows."""
    rng = np.random.default_rng(1)
    d = rng.normal(size=(30000, 3))
    pos = 0.1 * d / np.linalg.norm(d, axis=1, keepdims=True)
    lum = rng.uniform(size=30000)
    colors = np.stack([lum, 0.8 * lum, 0.6 * lum], 1)
    seen = np.nonzero(pos[:, 2] > 0.05)[0]
    target = np.nonzero(pos[:, 2] < -0.06)[0]        # far behind: strands, not the fold
    out = synthesize_unseen_hair(pos, np.zeros(3), colors, seen, target)
    palette = {tuple(c) for c in colors[seen]}
    assert all(tuple(c) in palette for c in out)
    assert out[:, 0].min() >= np.quantile(colors[seen, 0], 0.14)       # shadows left out
    # Neighbours along a meridian (same azimuth) agree more than neighbours around the head.
    from scipy.spatial import cKDTree

    p = pos[target]
    az = np.arctan2(p[:, 0], p[:, 2])
    el = np.arctan2(p[:, 1], np.hypot(p[:, 0], p[:, 2]))
    pairs = cKDTree(np.stack([az, el], 1)).query_pairs(0.02, output_type="ndarray")
    daz, del_ = np.abs(az[pairs[:, 0]] - az[pairs[:, 1]]), np.abs(el[pairs[:, 0]] - el[pairs[:, 1]])
    step = np.abs(out[pairs[:, 0], 0] - out[pairs[:, 1], 0])
    assert step[del_ > 3 * daz].mean() < 0.7 * step[daz > 3 * del_].mean()
