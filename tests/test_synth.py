"""Synthetic attribute datasets: catalogue, textures, accessory binding, generator and reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from perse.errors import PerseError
from perse.head.model import HeadParams
from perse.synth import (CATEGORIES, AttributeDataset, SynthSettings, apply_binding, bind_to_mesh, build_accessories,
                         category_by_name, generate_dataset)
from perse.geometry.triangles import closest_point_on_triangles
from perse.geometry.rotations import euler_to_axis_angle
from perse.synth.anatomy import head_anatomy
from perse.synth.paint_procedural import TexturePainter, polygon_signed_distance
from perse.synth.uv_atlas import rasterize_uv
from perse.synth.variants import HEAD_REGIONS

TEX = 256  # small textures keep the tests fast


@pytest.fixture(scope="module")
def head():
    from perse.head import load_builtin_head

    return load_builtin_head()


@pytest.fixture(scope="module")
def anatomy(head):
    return head_anatomy(head)


@pytest.fixture(scope="module")
def painter(anatomy):
    return TexturePainter(anatomy, size=TEX, seed=3)



# --------------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------------
def test_catalogue_invariants():
    assert len(CATEGORIES) >= 6
    names = [c.name for c in CATEGORIES]
    assert len(set(names)) == len(names) and len(names) <= 16  # bits of a uint16 mask
    for c in CATEGORIES:
        assert len(c.variants) >= 3, c.name
        assert c.reference in c.variants
        assert c.none is None or c.none in c.variants
        assert c.regions and set(c.regions) <= set(HEAD_REGIONS)
        assert category_by_name(c.name) is c
        assert c.index(c.reference) == c.variants.index(c.reference)
    assert category_by_name("glasses").none == "none"
    assert "neck" in category_by_name("skin").regions and "scalp" in category_by_name("hat").regions
    with pytest.raises(PerseError, match="unknown attribute category"):
        category_by_name("moustache-wax")
    with pytest.raises(PerseError, match="unknown variant .monocle. for category .glasses."):
        category_by_name("glasses").index("monocle")


# --------------------------------------------------------------------------------------------------
# Pure geometry helpers
# --------------------------------------------------------------------------------------------------
def test_rasterize_uv_known_layout():
    # Two triangles splitting the unit square along the anti-diagonal; row 0 of the texture is v = 1.
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    face, bary = rasterize_uv(uvs, np.array([[0, 1, 2], [1, 3, 2]]), 8)
    assert (face >= 0).all()
    assert face[7, 0] == 0 and face[0, 7] == 1  # bottom-left texel in triangle 0, top-right in 1
    np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-6)
    # Texel (row 7, col 0) has uv (1/16, 1/16): weights (7/8, 1/16, 1/16) of corners (0, 1, 2).
    np.testing.assert_allclose(bary[7, 0], [0.875, 0.0625, 0.0625], atol=1e-6)


def test_polygon_signed_distance_square():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    d = polygon_signed_distance(np.array([[0.5, 0.5], [2.0, 0.5], [0.5, 0.9]]), square)
    np.testing.assert_allclose(d, [-0.5, 1.0, -0.1], atol=1e-12)


def test_closest_point_on_triangle_regions():
    a, b, c = np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    p = np.array([[0.2, 0.2, 0.5], [-1.0, -1.0, 0.0], [2.0, -0.5, 0.0], [0.8, 0.8, 0.0]])
    q = closest_point_on_triangles(p, a, b, c)
    np.testing.assert_allclose(q, [[0.2, 0.2, 0], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0]], atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------------------
def test_texture_is_deterministic_and_seeded(anatomy, painter):
    look = {"hair": "red", "beard": "full"}
    a = painter.paint(look)
    assert a.shape == (TEX, TEX, 3) and a.dtype == np.uint8
    b = TexturePainter(anatomy, size=TEX, seed=3).paint(look)
    np.testing.assert_array_equal(a, b)
    c = TexturePainter(anatomy, size=TEX, seed=4).paint(look)
    assert np.abs(a.astype(int) - c).mean() > 0.3  # another seed: another skin and hair pattern


def test_hair_colour_changes_only_hair_regions(anatomy, painter):
    atlas = painter.atlas
    brown = painter.paint_flat({"hair": "brown"})
    blonde = painter.paint_flat({"hair": "blonde"})
    changed = np.abs(brown - blonde).max(axis=1) > 1e-6
    names = anatomy.region_names
    hair_w = sum(atlas.region_weights[:, names.index(r)] for r in category_by_name("hair").regions)
    assert changed.sum() > 0.05 * atlas.num_texels  # a lot of hair was repainted
    assert (hair_w[changed] > 0).all()              # ... and nothing outside the hair regions
    scalp = atlas.region == names.index("scalp")
    assert changed[scalp].mean() > 0.9
    # The face, lips and eyes keep their colour exactly.
    for r in ("face", "lips", "eyeballs", "nose", "ears", "neck"):
        assert not changed[atlas.region_weights[:, names.index(r)] > 0.999].any(), r


def test_texture_features_have_the_right_colours(anatomy, painter):
    """Pupils dark, sclera bright, lips redder than the cheeks, eyebrows darker than the forehead."""
    atlas, names = painter.atlas, anatomy.region_names
    col = painter.paint_flat({})
    lum = col.mean(axis=1)
    assert lum[painter.pupil > 0.9].mean() < 0.1
    sclera = (atlas.region == names.index("eyeballs")) & (painter.iris < 0.01)
    assert lum[sclera].mean() > 0.75
    lips = painter.lips > 0.9
    face = (atlas.region == names.index("face")) & (painter.lips < 0.01)
    redness = lambda c: c[:, 0] - c[:, 1]  # noqa: E731
    assert redness(col[lips]).mean() > redness(col[face]).mean() + 0.05
    brows = painter.brow_mask("natural") > 0.5
    assert brows.sum() > 20 and lum[brows].mean() < 0.6 * lum[atlas.region == names.index("forehead")].mean()
    thick, thin = ((painter.brow_mask(v) > 0.3).sum() for v in ("thick", "thin"))
    assert thick > 1.5 * thin


# --------------------------------------------------------------------------------------------------
# Binding accessories to the head
# --------------------------------------------------------------------------------------------------
def test_binding_round_trip_and_rigid_motion(anatomy):
    glasses = build_accessories(anatomy, {"glasses": "round"})
    pts = np.concatenate([acc.vertices for acc in glasses])
    v, f = anatomy.vertices, anatomy.faces
    for acc in glasses:
        np.testing.assert_allclose(apply_binding(acc.binding, v, f), acc.vertices, atol=1e-9)
    # A fresh binding to every triangle: exact on the rest mesh, rigid under a rigid motion.
    b = bind_to_mesh(pts, v, f)
    np.testing.assert_allclose(apply_binding(b, v, f), pts, atol=1e-9)
    R = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.2], [0.3, 0.0, -0.5], [-0.2, 0.5, 0.0]],
                                             dtype=torch.float64)).numpy()
    t = np.array([0.05, -0.1, 0.3])
    np.testing.assert_allclose(apply_binding(b, v @ R.T + t, f), pts @ R.T + t, atol=1e-9)
    # torch path gives the same answer (batched).
    vt = torch.as_tensor(np.stack([v, v @ R.T + t]))
    out = apply_binding(b, vt, torch.as_tensor(f))
    assert out.shape == (2, pts.shape[0], 3)
    np.testing.assert_allclose(out[1].numpy(), pts @ R.T + t, atol=1e-9)


def test_accessories_follow_head_pose(head, anatomy):
    """Under a pure head rotation every head vertex moves rigidly, so the hat must too; under an
    expression the glasses (bound to skull and nose-bridge triangles) stay put."""
    hat = build_accessories(anatomy, {"hat": "cap"})[0]
    rot = torch.tensor(euler_to_axis_angle(0.5, -0.2, 0.1), dtype=torch.float32)[None]
    with torch.no_grad():
        rest = head(head.zero_params()).vertices[0].double().numpy()
        posed = head(HeadParams(global_rot=rot)).vertices[0].double().numpy()
    # Rigid transform of the head (least squares from the vertices).
    mu_r, mu_p = rest.mean(0), posed.mean(0)
    U, _, Vt = np.linalg.svd((posed - mu_p).T @ (rest - mu_r))
    R = U @ Vt
    expected = (hat.vertices - mu_r) @ R.T + mu_p
    np.testing.assert_allclose(hat.posed(posed), expected, atol=2e-5)
    # Hat stays outside the skull: its vertices are farther from the head centre than the scalp.
    glasses = build_accessories(anatomy, {"glasses": "rectangular"})[0]
    names = head.expression_names
    smile = head.expression_vector({n: 1.0 for n in ("mouthSmileLeft", "mouthSmileRight", "jawOpen") if n in names})
    with torch.no_grad():
        smiling = head(HeadParams(expression=smile[None])).vertices[0].double().numpy()
    moved = np.linalg.norm(glasses.posed(smiling) - glasses.vertices, axis=1)
    assert moved.max() < 0.002  # a smile does not move the glasses by more than 2 mm


def test_accessory_geometry_sits_outside_the_head(anatomy):
    """Lenses in front of the eyes, hat above the brows, earrings at the ear lobes."""
    a = anatomy
    frame, lenses = build_accessories(a, {"glasses": "sunglasses"})
    assert lenses.opacity < 1.0 and frame.opacity == 1.0
    for c in a.eye_centers:  # each lens covers its eye, in front of it
        near = lenses.vertices[np.linalg.norm(lenses.vertices[:, :2] - c[:2], axis=1) < 0.01]
        assert near.shape[0] > 0 and near[:, 2].min() > c[2] + a.eye_radii.mean()
    hat = build_accessories(a, {"hat": "beanie"})[0]
    brows_top = a.vertices[a.vertex_mask(["brows"]), 1].max()
    assert hat.vertices[:, 1].min() > brows_top - 0.03 and hat.vertices[:, 1].max() > a.vertices[:, 1].max()
    studs = build_accessories(a, {"earrings": "studs"})[0]
    ears = a.vertices[a.vertex_mask(["ears"])]
    for side in (-1, 1):
        s = studs.vertices[np.sign(studs.vertices[:, 0]) == side]
        ear = ears[np.sign(ears[:, 0]) == side]
        assert s[:, 1].mean() < ear[:, 1].min() + 0.015  # at the lobe, i.e. the bottom of the ear
        assert np.linalg.norm(ear - s.mean(0), axis=1).min() < 0.006
        # 6-8 mm across: smaller ones vanish under a bob at 512 px, larger ones are not studs
        assert 0.006 <= np.ptp(s[:, 1]) <= 0.008


# --------------------------------------------------------------------------------------------------
# Generator and reader
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, head, renderer):
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate_dataset(out, head, SynthSettings(num_frames_per_variant=1, image_size=64, seed=5, texture_size=TEX),
                     progress=False, renderer=renderer)
    return out


def test_dataset_files_and_metadata(tiny_dataset):
    meta = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta["format"] == "perse-dataset" and meta["version"] == 1
    assert meta["image_size"] == [64, 64]
    assert [c["name"] for c in meta["categories"]] == [c.name for c in CATEGORIES]
    n_single = sum(len(c.variants) - 1 for c in CATEGORIES)
    frames = meta["frames"]
    assert len(frames) >= n_single + 1
    assert (tiny_dataset / "README.md").is_file()
    assert not tiny_dataset.with_name("ds.partial").exists()
    splits = [f["split"] for f in frames]
    assert 0 < splits.count("test") < 0.25 * len(frames)
    for f in frames:
        assert (tiny_dataset / f["image"]).is_file() and (tiny_dataset / f["regions"]).is_file()
        assert set(f["variants"]) == {c.name for c in CATEGORIES}
        assert set(f["params"]) == {"identity", "expression", "global_rot", "neck_rot", "jaw_rot", "eye_left_rot",
                                    "eye_right_rot", "translation"}
        assert all(len(v) == 1 for v in f["params"].values())
        switched = sum(f["variants"][c.name] != c.reference for c in CATEGORIES)
        assert switched <= 2
    # Every non-reference variant appears in some training frame.
    seen = {(c, f["variants"][c]) for f in frames if f["split"] == "train" for c in f["variants"]}
    for c in CATEGORIES:
        for v in c.variants:
            assert (c.name, v) in seen


def test_dataset_reader_frames(tiny_dataset, head):
    ds = AttributeDataset(tiny_dataset, cache=True)
    assert len(ds) == len(ds.indices("train")) + len(ds.indices("test"))
    assert ds.category_names == [c.name for c in CATEGORIES]
    fr = ds.load_frame(0)
    assert fr.image.shape == (64, 64, 3) and fr.alpha.shape == (64, 64, 1) and fr.regions.shape == (64, 64)
    assert fr.image.dtype == torch.float32 and fr.regions.dtype == torch.int64
    assert fr.params.batch_size == 1 and fr.camera.width == 64
    assert ds.load_frame(0) is fr  # cached
    for i in range(len(ds)):
        fr = ds.load_frame(i)
        alpha = fr.alpha[..., 0]
        assert float(fr.image[alpha == 0].abs().max()) == 0.0     # straight colour, black background
        if ds.frames[i].get("mouth"):                              # close-ups: `test_mouth_closeups_...`
            continue
        assert 0.05 < (alpha > 0.5).float().mean() < 0.95          # a head in the middle, background around
        assert alpha[0, 0] == 0 and alpha[32, 32] > 0.99           # corner empty, centre covered
        # Region bits only near the foreground.
        from scipy import ndimage

        near = ndimage.binary_dilation((alpha > 0).numpy(), iterations=4)
        assert not (fr.regions.numpy()[~near] != 0).any()
        # The reconstructed head projects inside the foreground.
        with torch.no_grad():
            lmk = head(fr.params).landmarks[0]
        # nose tip, nose bridge; from behind or the side (wide views) the skull centre instead
        ids = [1, 168] if not ds.frames[i].get("wide") else [168]
        points = lmk[ids] if not ds.frames[i].get("wide") else head(fr.params).vertices[0].mean(0, keepdim=True)
        uv = fr.camera.project(points).round().long()
        for u, v in uv.tolist():
            assert alpha[v, u] > 0.5
        assert fr.variant_index == {c.name: c.variants.index(ds.frames[i]["variants"][c.name]) for c in CATEGORIES}


def test_mouth_closeups_frame_the_open_mouth(tiny_dataset, head):
    """Some training frames of the looks around the mouth are close-ups: jaw open, the lips' centre in
    the middle of the frame, the mouth large in it. Test frames and the frames of other variants (brows,
    glasses...) never are: they keep their whole-head views."""
    from perse.landmarks import MOUTH_CORNER
    from perse.synth.sampling import MOUTH_CATEGORIES, MOUTH_CLOSEUP_JAW

    ds = AttributeDataset(tiny_dataset)
    train = [i for i in range(len(ds)) if ds.frames[i]["split"] == "train"]
    closeups = [i for i in train if ds.frames[i].get("mouth")]
    assert 0 < len(closeups) < 0.25 * len(train)
    assert not any(f.get("mouth") for f in ds.frames if f["split"] == "test")
    refs = {c.name: c.reference for c in CATEGORIES}
    for i in closeups:
        assert all(v == refs[c] for c, v in ds.frames[i]["variants"].items() if c not in MOUTH_CATEGORIES)
    for i in closeups:
        fr = ds.load_frame(i)
        assert MOUTH_CLOSEUP_JAW[0] <= float(fr.params.jaw_rot[0, 0]) <= MOUTH_CLOSEUP_JAW[1]
        with torch.no_grad():
            lmk = head(fr.params).landmarks[0]
        corners = fr.camera.project(lmk[[MOUTH_CORNER["R"], MOUTH_CORNER["L"]]])
        centre = corners.mean(0)
        assert float((centre - 32).abs().max()) < 8                 # middle of the 64 px frame
        assert float((corners[0] - corners[1]).norm()) > 20         # a mouth, not a whole head (~10 px)
        assert fr.alpha[32, 32, 0] > 0.99


@pytest.mark.parametrize("fraction", [-0.1, 0.6])
def test_a_mouth_closeup_fraction_out_of_range_is_refused(fraction):
    with pytest.raises(PerseError, match="mouth close-up fraction .* must be in \\[0, 0.5\\]"):
        SynthSettings(mouth_closeup_fraction=fraction).validate()


def test_region_bits_where_expected(tiny_dataset, head):
    ds = AttributeDataset(tiny_dataset)
    bit = {name: 1 << i for i, name in enumerate(ds.category_names)}
    glasses_frames = [i for i in range(len(ds)) if ds.frames[i]["variants"]["glasses"] != "none"
                      and not ds.frames[i].get("mouth")]
    assert glasses_frames
    for i in glasses_frames:
        fr = ds.load_frame(i)
        with torch.no_grad():
            out = head(fr.params)
        lmk = out.landmarks[0]
        for eye in (159, 386):  # upper-lid centres
            u, v = fr.camera.project(lmk[[eye]]).round().long()[0].tolist()
            assert int(fr.regions[v, u]) & bit["glasses"], (i, eye)
        assert not (int(fr.regions[v, u]) & bit["earrings"])
    # Lips bit on the mouth, skin bit on the nose, hair bit nowhere near the mouth.
    fr = ds.load_frame(ds.frames_with("hat", "none")[0])
    with torch.no_grad():
        lmk = head(fr.params).landmarks[0]
    u, v = fr.camera.project(lmk[[13]]).round().long()[0].tolist()  # upper lip, inner
    assert int(fr.regions[v, u]) & bit["lips"] and not int(fr.regions[v, u]) & bit["hair"]
    u, v = fr.camera.project(lmk[[1]]).round().long()[0].tolist()
    assert int(fr.regions[v, u]) & bit["skin"]


def test_variants_change_the_images(head, renderer, tmp_path):
    """Same pose and camera, glasses on vs off: pixels change around the eyes and nowhere far away."""
    from perse.synth.frame_renderer import FrameRenderer
    from perse.render.camera import orbit_camera

    fr = FrameRenderer(head, CATEGORIES, texture_size=TEX, seed=0, renderer=renderer)
    verts = fr.posed_vertices(head.zero_params())
    cam = orbit_camera(0, 0, 0.9, (0.0, 0.0, 0.0), 20.0, 96, 96)
    ref, bits, _ = fr.render({}, verts, cam, 2)
    on, _, _ = fr.render({"glasses": "sunglasses"}, verts, cam, 2)
    diff = np.abs(ref.astype(int) - on.astype(int)).max(axis=-1) > 8
    assert diff.sum() > 30
    glasses_bit = bits & (1 << [c.name for c in CATEGORIES].index("glasses"))
    from scipy import ndimage

    region = ndimage.binary_dilation(glasses_bit > 0, iterations=3)
    assert diff[~region].mean() < 0.01
    red, _, _ = fr.render({"lips": "red"}, verts, cam, 2)
    lips_diff = np.abs(ref.astype(int) - red.astype(int)).max(axis=-1) > 8
    lips_bit = bits & (1 << [c.name for c in CATEGORIES].index("lips"))
    assert lips_diff.sum() > 5 and (lips_bit[lips_diff] > 0).all()


def test_existing_output_is_not_overwritten(tmp_path, head, renderer):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PerseError, match="already exists"):
        generate_dataset(out, head, SynthSettings(num_frames_per_variant=1, image_size=32, texture_size=TEX,
                                                  categories=["lips"]), progress=False, renderer=renderer)
    assert (out / "keep.txt").read_text() == "mine"
    generate_dataset(out, head, SynthSettings(num_frames_per_variant=1, image_size=32, texture_size=TEX,
                                              categories=["lips"], test_fraction=0.0),
                     progress=False, renderer=renderer, overwrite=True)
    assert not (out / "keep.txt").exists()
    ds = AttributeDataset(out)
    assert ds.category_names == ["lips"] and len(ds) == 4 and ds.indices("test") == []


def test_interrupted_generation_leaves_nothing(tmp_path, head, renderer):
    out = tmp_path / "ds"

    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(out, head, SynthSettings(num_frames_per_variant=2, image_size=32, texture_size=TEX,
                                                  categories=["lips", "glasses"]),
                         progress=False, renderer=renderer, on_frame=interrupt)
    assert not out.exists() and not tmp_path.joinpath("ds.partial").exists()
    assert list(tmp_path.iterdir()) == []


def test_reader_errors(tmp_path):
    with pytest.raises(PerseError, match="not found"):
        AttributeDataset(tmp_path / "nothing")
    (tmp_path / "dataset.json").write_text("{ not json")
    with pytest.raises(PerseError, match="corrupt"):
        AttributeDataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PerseError, match="not a PERSE dataset"):
        AttributeDataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "perse-dataset", "version": 1, "image_size": [8, 8],
                                                       "categories": [c.to_dict() for c in CATEGORIES[:1]],
                                                       "frames": [{"image": "x.png"}]}))
    with pytest.raises(PerseError, match="frame 0 lacks"):
        AttributeDataset(tmp_path)


def test_bad_arguments(tmp_path, head):
    with pytest.raises(PerseError, match="unknown attribute category"):
        generate_dataset(tmp_path / "a", head, SynthSettings(categories=["wings"]), progress=False)
    with pytest.raises(PerseError, match="image size"):
        generate_dataset(tmp_path / "b", head, SynthSettings(image_size=4), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_head_fixed_lighting_turns_with_the_head():
    from perse.render.camera import orbit_camera
    from perse.render.gl import Lighting
    from perse.geometry.rotations import axis_angle_to_matrix as axis_angle_matrix
    from perse.synth.frame_renderer import head_fixed_lighting

    base = Lighting()
    front = orbit_camera(0.0, 0.0, 0.6)
    same = head_fixed_lighting(front, np.eye(3), base)
    assert np.allclose(same.key_direction, base.key_direction, atol=1e-6)
    # Turning the head and the camera together by the same yaw leaves the lighting unchanged in camera space.
    turned = head_fixed_lighting(orbit_camera(30.0, 0.0, 0.6), axis_angle_matrix(np.array([0.0, np.radians(30), 0.0])), base)
    assert np.allclose(turned.key_direction, base.key_direction, atol=1e-5)
    assert np.allclose(turned.fill_direction, base.fill_direction, atol=1e-5)
    # Turning only the head changes it.
    head_only = head_fixed_lighting(front, axis_angle_matrix(np.array([0.0, 0.6, 0.0])), base)
    assert not np.allclose(head_only.key_direction, base.key_direction, atol=1e-2)


# --------------------------------------------------------------------------------------------------
# Painting over a person's texture
# --------------------------------------------------------------------------------------------------
def striped_base(painter: TexturePainter) -> np.ndarray:
    """A stand-in for a portrait texture: the procedural look with black hair and tan skin, times
    vertical stripes of +-15 % (structure the variants must keep)."""
    S = painter.size
    tex = painter.paint({"hair": "black", "skin": "tan"}).astype(np.float64)
    stripes = 1.0 + 0.15 * np.sin(2 * np.pi * np.arange(S) / 9.0)
    return np.clip(np.round(tex * stripes[None, :, None]), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def base_tex(painter):
    return striped_base(painter)


@pytest.fixture(scope="module")
def over(anatomy, base_tex):
    return TexturePainter(anatomy, size=TEX, seed=3, base_texture=base_tex)


def _hair_weight(painter):
    names = painter.anatomy.region_names
    return sum(painter.atlas.region_weights[:, names.index(r)] for r in category_by_name("hair").regions)


def test_base_reference_look_reproduces_the_texture(over, base_tex, anatomy):
    ref = over.paint({})
    assert ref.shape == base_tex.shape and ref.dtype == np.uint8
    flat = ref.reshape(-1, 3)
    idx = over.atlas.index
    np.testing.assert_array_equal(flat[idx], base_tex.reshape(-1, 3)[idx])      # covered texels: exact
    np.testing.assert_array_equal(flat, flat[idx][np.searchsorted(idx, over.atlas.fill_from)])  # gutters
    # The reference of every category is the reference look.
    from perse.synth.variants import reference_look

    np.testing.assert_array_equal(over.paint(reference_look()), ref)
    # Another size: resampled, still close (bilinear of a smooth texture, stripes aside).
    big = TexturePainter(anatomy, size=512, seed=3, base_texture=base_tex).paint({})
    assert big.shape == (512, 512, 3)
    assert np.abs(big[::2, ::2].astype(int) - ref).mean() < 12


def test_base_hair_colour_recolours_hair_keeping_luminance(over, anatomy):
    from perse.synth.palette import HAIR_COLORS, luminance

    base = over.base.color
    names = anatomy.region_names
    hair_w = _hair_weight(over)
    for variant in ("blonde", "red", "gray"):
        col = over.paint_flat({"hair": variant})
        changed = np.abs(col - base).max(axis=1) > 1e-6
        assert changed.sum() > 0.05 * over.atlas.num_texels, variant
        assert (hair_w[changed] > 0).all(), variant                  # only hair-region texels change
        for r in ("face", "lips", "eyeballs", "nose", "ears", "neck", "brows"):
            assert not changed[over.atlas.region_weights[:, names.index(r)] > 0.999].any(), (variant, r)
        hair = over.base.hair > 0.5
        assert hair.sum() > 500
        # The strands and stripes of the base survive: luminance stays correlated ...
        corr = np.corrcoef(luminance(col[hair]), luminance(base[hair]))[0, 1]
        assert corr > 0.8, (variant, corr)
        # ... and the mean colour moves to the target.
        np.testing.assert_allclose(col[hair].mean(0), HAIR_COLORS[variant], atol=0.08)
    # Bare skin on the scalp (below the hairline, between strands) is not tinted.
    skin_scalp = (over.reg["scalp"] > 0.99) & (over.base.hair < 0.01)
    assert skin_scalp.sum() > 20
    np.testing.assert_array_equal(over.paint_flat({"hair": "blonde"})[skin_scalp], base[skin_scalp])


def test_base_lips_and_other_variants_stay_in_their_regions(over, anatomy):
    from perse.synth.palette import LIP_COLORS, luminance

    base = over.base.color
    names = anatomy.region_names
    red = over.paint_flat({"lips": "red"})
    changed = np.abs(red - base).max(axis=1) > 1e-6
    assert changed.sum() > 30
    assert (over.lips[changed] > 0).all()
    lips = over.lips > 0.9
    assert np.abs(red[lips].mean(0) - LIP_COLORS["red"]).max() < 0.08
    assert np.corrcoef(luminance(red[lips]), luminance(base[lips]))[0, 1] > 0.8
    # Beard: overlays the face below the eyes; never the scalp, eyes or forehead.
    for v in ("stubble", "goatee", "full"):
        ch = np.abs(over.paint_flat({"beard": v}) - base).max(axis=1) > 1e-6
        assert ch.sum() > 30, v
        for r in ("scalp", "eyeballs", "forehead", "back_of_head"):
            assert not ch[over.atlas.region_weights[:, names.index(r)] > 0.999].any(), (v, r)
    # Eyebrows: inside the brow zone; thick darkens it, thin and light brighten it.
    zone_lum = lambda c: luminance(c[over.base.brow_zone > 0.5]).mean()  # noqa: E731
    for v, sign in (("thick", -1), ("thin", 1), ("light", 1)):
        col = over.paint_flat({"eyebrows": v})
        ch = np.abs(col - base).max(axis=1) > 1e-6
        assert ch.sum() > 20, v
        assert ((over.base.brow_zone[ch] > 0) | (over.brow_mask(v)[ch] > 0)).all(), v
        assert sign * (zone_lum(col) - zone_lum(base)) > 0.01, v
    # Skin: all skin scales toward the tone, eyes and hair keep their colour.
    dark = over.paint_flat({"skin": "darker"})
    face = (over.atlas.region == names.index("face")) & (over.lips < 0.01)
    assert luminance(dark[face]).mean() < 0.75 * luminance(base[face]).mean()
    assert np.corrcoef(luminance(dark[face]), luminance(base[face]))[0, 1] > 0.95
    keep = (over.eye_w > 0.999) | (over.base.hair > 0.999)
    np.testing.assert_allclose(dark[keep], base[keep], atol=2e-3)


def hue_deg(rgb: np.ndarray) -> float:
    """Hue in degrees of a reddish colour (3,) with R >= G >= B (0 red, 60 yellow)."""
    r, g, b = rgb
    return 60.0 * (g - b) / max(r - b, 1e-6)


@pytest.mark.parametrize("tone", ["reference", "lighter"])
def test_lighter_skin_is_visibly_lighter_and_keeps_the_skins_hue(anatomy, painter, tone):
    """A light-skinned person's skin=lighter clears the 0.15 a visible change needs with room for a
    render's shading (at most 0.85 of full light on most of a face); someone already as pale as the
    catalogue's lighter tone still gets visibly lighter skin; neither turns yellow (a per-channel gain
    clipped red first and did)."""
    from perse.synth.palette import luminance

    person = TexturePainter(anatomy, size=TEX, seed=3, base_texture=painter.paint({"skin": tone}))
    base = person.base.color
    face = (person.atlas.region == anatomy.region_names.index("face")) & (person.lips < 0.01) \
        & (person.eye_w < 0.01)
    light = person.paint_flat({"skin": "lighter"})
    step = np.median(np.abs(light[face] - base[face]).max(axis=1))
    assert step > (0.15 / 0.85 if tone == "reference" else 0.12), step
    assert luminance(light[face]).mean() > luminance(base[face]).mean() + 0.08
    assert abs(hue_deg(np.median(light[face], 0)) - hue_deg(np.median(base[face], 0))) < 6.0
    assert (light <= 1.0).all()


def test_hair_over_the_face_sides_does_not_move_the_reference_skin(anatomy, painter):
    """A bob over the temples and the cheeks' sides makes about half of the face region's texels hair
    (the hair layer's coverage): the skin median that skin tones and pale lips are defined against must
    stay the skin's (it fell to a skin-hair blend, and lips=pale came out as the lips' own colour)."""
    base_img = painter.paint({})
    bare = TexturePainter(anatomy, size=TEX, seed=3, base_texture=base_img)
    atlas = bare.atlas
    face = bare.reg["face"] > 0.99
    beside = face & (np.abs(atlas.position[:, 0]) > np.quantile(np.abs(atlas.position[face, 0]), 0.45))
    hair_img = base_img.reshape(-1, 3).copy()
    hair_img[atlas.index[beside]] = (77, 55, 21)                       # dark brown strands
    coverage = np.zeros(TEX * TEX, np.float32)
    coverage[atlas.index[beside]] = 1.0
    bob = TexturePainter(anatomy, size=TEX, seed=3, base_texture=hair_img.reshape(base_img.shape),
                         hair_coverage=coverage.reshape(TEX, TEX))
    assert beside.sum() > 0.4 * face.sum()
    np.testing.assert_allclose(bob.base.skin_ref, bare.base.skin_ref, atol=0.02)
    lips = bob.lips > 0.5
    pale = bob.paint_flat({"lips": "pale"})
    assert np.median(np.abs(pale[lips] - bob.base.color[lips]).max(axis=1)) > 0.15


def test_base_texture_rejected_clearly(anatomy):
    with pytest.raises(PerseError, match="square RGB"):
        TexturePainter(anatomy, size=TEX, base_texture=np.zeros((64, 32, 3), np.uint8))
    with pytest.raises(PerseError, match="uint8"):
        TexturePainter(anatomy, size=TEX, base_texture=np.zeros((64, 64, 3), np.float32))


def test_procedural_path_unchanged_by_the_base_option(anatomy, painter):
    """base_texture=None is the procedural painter, bit for bit."""
    plain = TexturePainter(anatomy, size=TEX, seed=3, base_texture=None)
    for look in ({}, {"hair": "red", "beard": "full"}, {"eyebrows": "thin", "skin": "darker", "lips": "berry"}):
        np.testing.assert_array_equal(plain.paint(look), painter.paint(look))
    assert plain.base is None and plain.base_texture is None


def test_dataset_with_base_texture_and_identity(tmp_path, head, renderer, base_tex):
    from perse.render.camera import orbit_camera
    from perse.synth.reference import ReferenceView

    shape = torch.zeros(head.num_shape)
    shape[:3] = torch.tensor([1.5, -1.0, 0.8])
    ref_params = head.zero_params()
    ref_params.identity = shape[None].clone()
    ref_params.global_rot = torch.tensor([[0.05, 0.2, 0.0]])
    ref_cam = orbit_camera(10.0, 0.0, 0.9, (0.0, 0.0, 0.0), 20.0, 128, 128)
    out = generate_dataset(tmp_path / "ds", head, SynthSettings(num_frames_per_variant=1, image_size=48, seed=2,
                                                                texture_size=TEX, categories=["hair", "lips"],
                                                                test_fraction=0.0),
                           progress=False, renderer=renderer, base_texture=base_tex, identity=shape,
                           reference=ReferenceView(ref_cam, ref_params, frames=2))
    meta = json.loads((out / "dataset.json").read_text())
    gen = meta["generator"]
    import hashlib

    assert gen["base_texture"]["sha256"] == hashlib.sha256(base_tex.tobytes()).hexdigest()
    np.testing.assert_allclose(gen["identity_shape"], shape.tolist(), atol=1e-6)
    import imageio.v3 as iio

    np.testing.assert_array_equal(iio.imread(out / "base_texture.png"), base_tex)
    frames = meta["frames"]
    for f in frames:
        np.testing.assert_allclose(f["params"]["identity"][0], shape.tolist(), atol=1e-6)
    refs = [f for f in frames if f.get("reference")]
    assert len(refs) == 2 and gen["reference_frames"] == 2
    assert all(f["split"] == "train" and f["variants"] == {"hair": "brown", "lips": "natural"} for f in refs)
    cam = refs[0]["camera"]
    assert cam["width"] == 48 and np.allclose(cam["K"][0][0], ref_cam.K[0, 0].item() * 48 / 128, rtol=1e-5)
    np.testing.assert_allclose(refs[0]["params"]["global_rot"], [[0.05, 0.2, 0.0]], atol=1e-6)
    # The frames show the shaped head: its nose tip projects onto the foreground, the template's
    # silhouette differs from it.
    ds = AttributeDataset(out)
    i = frames.index(refs[0])
    fr = ds.load_frame(i)
    with torch.no_grad():
        shaped = head(fr.params).vertices[0]
        zero = head(HeadParams(**{**vars(fr.params), "identity": torch.zeros(1, head.num_shape)})).vertices[0]
    assert (shaped - zero).norm(dim=1).max() > 0.003
    u, v = fr.camera.project(head(fr.params).landmarks[0][[1]].detach()).round().long()[0].tolist()
    assert fr.alpha[v, u, 0] > 0.5
    # The reference frame is the base texture's reference look rendered at the portrait's view.
    from perse.geometry.rotations import axis_angle_to_matrix as axis_angle_matrix
    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.variants import category_by_name as cat

    cats = [cat("hair"), cat("lips")]
    rot = axis_angle_matrix(fr.params.global_rot[0].numpy()) @ axis_angle_matrix(fr.params.neck_rot[0].numpy())
    for base, same in ((base_tex, True), (None, False)):
        r = FrameRenderer(head, cats, TEX, 2, renderer, base_texture=base)
        rgba, _, _ = r.render({}, r.posed_vertices(fr.params), fr.camera, 1, rot)
        assert np.array_equal(rgba, iio.imread(out / refs[0]["image"])) == same

    with pytest.raises(PerseError, match="go together"):
        generate_dataset(tmp_path / "x", head, progress=False, reference=ReferenceView(ref_cam, None))
    bad = shape.clone()
    bad[0] = 0.0
    with pytest.raises(PerseError, match="differs"):
        generate_dataset(tmp_path / "y", head, progress=False, identity=bad,
                         reference=ReferenceView(ref_cam, ref_params))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_the_goatee_is_a_moustache_and_a_rounded_chin_tuft_joined_past_the_mouth_corners():
    from perse.synth.paint_procedural import goatee_shape

    mouth_y, hw, lip_y, chin_y = -0.060, 0.025, -0.070, -0.105
    centre = 0.5 * ((lip_y - 0.002) + (chin_y - 0.004))
    half_w = 0.85 * hw + 0.004

    def at(x, y):
        return float(goatee_shape(np.array([[x, y]]), mouth_y, hw, lip_y, chin_y)[0])

    assert at(0.0, mouth_y + 0.008) == 1.0 and at(0.0, centre) == 1.0          # moustache, tuft
    assert at(-0.0, centre) == at(0.01, centre) == at(-0.01, centre)           # symmetric
    assert at(hw + 0.002, mouth_y - 0.006) == 1.0                              # the bar past the corner
    assert at(hw + 0.015, mouth_y) == 0.0 and at(hw + 0.015, centre) == 0.0    # the cheeks stay bare
    assert at(half_w, chin_y - 0.004) == 0.0                                   # rounded: no box corner
    assert at(0.5 * hw, mouth_y - 0.004) == 0.0                                # the lower lip is the lips'
