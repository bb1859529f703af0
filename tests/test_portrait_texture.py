"""Portrait texture: projection of the astronaut photo onto the fitted head and completion of the rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perse.create.portrait_texture import PortraitTexture, complete_texture, mirror_texels, portrait_texture, texel_faces
from perse.errors import PerseError
from perse.head import load_builtin_head
from perse.synth.anatomy import head_anatomy
from perse.synth.uv_atlas import build_atlas
from perse.track import detect_largest_face, fit_head

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def head():
    return load_builtin_head()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def detection(astronaut):
    return detect_largest_face(astronaut, "astronaut")


@pytest.fixture(scope="module")
def fit(head, detection):
    return fit_head(head, detection.face.points, (512, 512))



@pytest.fixture(scope="module")
def result(astronaut, head, fit, renderer) -> PortraitTexture:
    return portrait_texture(astronaut, head, fit, size=512, renderer=renderer)


@pytest.fixture(scope="module")
def atlas(head):
    return build_atlas(head_anatomy(head), 512)


def texel_of(atlas, point: np.ndarray) -> tuple[int, int]:
    """(row, col) of the atlas texel nearest to a canonical 3D point."""
    k = int(np.argmin(np.linalg.norm(atlas.position - point, axis=1)))
    return divmod(int(atlas.index[k]), atlas.size)


def test_shapes_and_ranges(result, astronaut):
    assert result.texture.shape == (512, 512, 3) and result.texture.dtype == np.uint8
    assert result.observed.shape == (512, 512) and result.observed.dtype == np.float32
    assert 0.0 <= result.observed.min() and result.observed.max() <= 1.0
    assert result.foreground.shape == astronaut.shape[:2]
    # The person mask: the face is foreground, the top corners (flag, wall) are background.
    assert result.foreground[100, 225] > 0.9
    assert result.foreground[:40, :40].mean() < 0.1 and result.foreground[:40, -40:].mean() < 0.1
    assert result.outside_head.shape == astronaut.shape[:2]
    assert result.outside_head[400, 150]  # the orange suit is person but not head


def test_face_texels_match_the_photo(result, head, atlas, detection):
    """Texel at a landmark's canonical position ~ photo pixel at the detected landmark."""
    anatomy = head_anatomy(head)
    for lid in (1, 50, 280, 10, 4, 168):  # nose tip, both cheeks, forehead top, nose, nose bridge
        r, c = texel_of(atlas, anatomy.landmarks[lid])
        u, v = np.round(detection.face.points[lid]).astype(int)
        photo = skdata.astronaut()[v - 1:v + 2, u - 1:u + 2].reshape(-1, 3).mean(0)
        assert result.observed[r, c] > 0.9, lid
        assert np.abs(result.texture[r, c].astype(float) - photo).max() < 20, (lid, result.texture[r, c], photo)


def test_observed_confidence_front_vs_back(result, head, atlas):
    anatomy = head_anatomy(head)
    names = anatomy.region_names
    obs = result.observed.ravel()[atlas.index]
    front = (atlas.region == names.index("nose")) | ((atlas.region == names.index("face"))
                                                      & (np.abs(atlas.position[:, 0]) < 0.03))
    assert np.median(obs[front]) > 0.9
    back = atlas.region == names.index("back_of_head")
    assert obs[back].max() == 0.0
    assert obs[atlas.normal[:, 2] < -0.3].max() == 0.0  # nothing facing away from the camera is "seen"


def test_hair_colour_is_measured_and_extended_to_the_back(result, head, atlas, astronaut):
    photo_hair = np.median(astronaut[30:60, 190:260].reshape(-1, 3), axis=0) / 255.0  # hair above the forehead
    assert np.abs(result.hair_color - photo_hair).max() < 0.06
    assert np.linalg.norm(result.hair_color - result.skin_color) > 0.2  # hair is not skin here
    names = head_anatomy(head).region_names
    back = (atlas.region == names.index("back_of_head")) & (atlas.position[:, 2] < -0.05)
    cols = result.texture.reshape(-1, 3)[atlas.index[back]] / 255.0
    assert np.abs(np.median(cols, axis=0) - result.hair_color).max() < 0.04
    assert cols.std(axis=0).max() > 0.005  # subtle variation, not a flat fill
    assert cols.std(axis=0).max() < 0.08


def test_neck_hidden_by_clothes_gets_skin(result, head, atlas):
    """The astronaut's neck is hidden by a black collar: it must not be painted black."""
    names = head_anatomy(head).region_names
    neck_front = (atlas.region == names.index("neck")) & (atlas.normal[:, 2] > 0.7)
    cols = result.texture.reshape(-1, 3)[atlas.index[neck_front]] / 255.0
    assert np.abs(np.median(cols, axis=0) - result.skin_color).max() < 0.08


def test_mirror_completion_known_answer(head):
    """Colours seen only on the subject's left (x > 0) are copied to the mirrored right side."""
    anatomy = head_anatomy(head)
    atlas = build_atlas(anatomy, 256)
    tri, bary = texel_faces(anatomy, atlas)
    P = atlas.position.astype(np.float64)
    colors = np.clip(0.5 + 3.0 * np.stack([np.abs(P[:, 0]), P[:, 1], P[:, 2]], 1), 0, 1)  # even in x
    names = anatomy.region_names
    face = np.isin(atlas.region, [names.index(r) for r in ("face", "nose", "forehead")])
    conf = (face & (P[:, 0] > 0.002)).astype(np.float64)
    out, stats = complete_texture(anatomy, atlas, anatomy.faces[tri], bary, colors, conf)
    far_right = face & (P[:, 0] < -0.02)
    assert far_right.sum() > 500
    assert np.abs(out[far_right] - colors[far_right]).mean() < 0.01
    # The mirror map is an involution on a symmetric head (up to texel discretisation).
    m = mirror_texels(P)
    assert np.median(np.linalg.norm(P[m[m]] - P, axis=1)) < 1e-3


def test_mirror_gives_symmetric_face_sides_on_the_photo(result, head, atlas):
    names = head_anatomy(head).region_names
    m = mirror_texels(atlas.position.astype(np.float64))
    cols = result.texture.reshape(-1, 3)[atlas.index].astype(np.float64)
    sides = np.isin(atlas.region, [names.index(r) for r in ("face", "forehead")]) & (np.abs(atlas.position[:, 0]) > 0.06)
    assert sides.sum() > 1000
    assert np.abs(cols[sides] - cols[m[sides]]).mean() < 5.0  # of 255


def test_deterministic(result, astronaut, head, fit, renderer):
    again = portrait_texture(astronaut, head, fit, size=512, renderer=renderer)
    assert np.array_equal(again.texture, result.texture)
    assert np.array_equal(again.observed, result.observed)


def test_textured_render_reproduces_the_face(result, astronaut, head, fit, detection, renderer):
    import cv2

    from perse.render.gl import Lighting, Mesh

    with torch.no_grad():
        verts = head(fit.params).vertices[0].numpy()
    mesh = Mesh(vertices=verts, faces=head.faces.numpy(), uvs=head.uvs.numpy(), uv_faces=head.uv_faces.numpy(),
                texture=result.texture)
    out = renderer.render([mesh], fit.camera, lighting=Lighting(unlit=True))
    hull = cv2.convexHull(np.round(detection.face.points[:468]).astype(np.int32))
    inside = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, hull, 1)
    inside = cv2.erode(inside, np.ones((9, 9), np.uint8)).astype(bool) & (out.alpha > 0.99)
    assert inside.sum() > 5000
    mse = ((out.rgb - astronaut / 255.0)[inside] ** 2).mean()
    assert -10 * np.log10(mse) > 24.0


def test_bad_input(astronaut, head, fit):
    with pytest.raises(PerseError, match="fit's camera is 512x512 but the portrait is 256x256"):
        portrait_texture(np.ascontiguousarray(astronaut[::2, ::2]), head, fit)
    with pytest.raises(PerseError, match="RGB uint8"):
        portrait_texture(astronaut[..., 0], head, fit)
    with pytest.raises(PerseError, match="RGB uint8"):
        portrait_texture(astronaut.astype(np.float32), head, fit)
    with pytest.raises(PerseError, match="texture size 300"):
        portrait_texture(astronaut, head, fit, size=300)
