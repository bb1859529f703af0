"""Accessories as thin as the real thing, mirror-symmetric, and seeded into a fresh avatar."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from perse.synth.variants import CATEGORIES

STYLES = [("glasses", "round"), ("glasses", "rectangular"), ("glasses", "sunglasses"), ("hat", "cap"),
          ("hat", "beanie"), ("earrings", "studs"), ("earrings", "hoops")]


@pytest.fixture(scope="module")
def anatomy(builtin_head):
    from perse.synth.anatomy import head_anatomy

    return head_anatomy(builtin_head)


@pytest.fixture(scope="module")
def frame_renderer(builtin_head):
    from perse.synth.frame_renderer import FrameRenderer

    return FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0)  # no GL: meshes only


@pytest.mark.parametrize("style", ["round", "rectangular", "sunglasses"])
def test_glasses_frames_are_2_to_4_mm_thick(anatomy, style):
    """Frame thickness = the rim tube's diameter, measured on the mesh (its 8-vertex rings)."""
    from perse.synth.accessories import build_glasses

    frame = next(a for a in build_glasses(anatomy, style) if a.name == "glasses_frame")
    rims = frame.vertices[: 2 * 48 * 8].reshape(-1, 8, 3)  # both rims: 48 rings of 8 vertices
    diameter = np.linalg.norm(rims[:, :4] - rims[:, 4:], axis=-1).mean()
    assert 0.002 <= diameter <= 0.004


@pytest.mark.parametrize("category,variant", STYLES)
def test_accessories_are_mirror_symmetric(anatomy, category, variant):
    from perse.synth.accessories import build_accessories

    for acc in build_accessories(anatomy, {category: variant}):
        d, _ = cKDTree(acc.vertices).query(acc.vertices * [-1.0, 1.0, 1.0])
        assert d.max() < 0.0006, acc.name  # tube rings turn along their path: at most ~half a ring step


def test_hoops_hang_below_the_lobes_and_studs_sit_on_them(anatomy):
    """A hoop's lower half hangs 1.8 cm or more below the lowest ear vertex (below a bob that ends at the
    lobes, the front view still shows it); a stud stays within a few mm of its lobe."""
    from perse.synth.accessories import build_earrings

    ears = anatomy.vertices[anatomy.vertex_mask(["ears"])]
    lobe_y = ears[:, 1].min()
    hoops = build_earrings(anatomy, "hoops")[0].vertices
    assert hoops[:, 1].min() < lobe_y - 0.018
    studs = build_earrings(anatomy, "studs")[0].vertices
    assert cKDTree(ears).query(studs)[0].max() < 0.008


def test_lenses_are_faint_sunglasses_dark(anatomy):
    from perse.synth.accessories import build_glasses

    clear = next(a for a in build_glasses(anatomy, "round") if a.name == "glasses_lenses")
    dark = next(a for a in build_glasses(anatomy, "sunglasses") if a.name == "glasses_lenses")
    assert clear.opacity < 0.25 and dark.opacity > 0.7
    assert dark.colors.mean() < 0.15 < clear.colors.mean()


def test_seeds_file_round_trip(tmp_path):
    from perse.avatar.seeds import SeedSet, load_seeds, save_seeds
    from perse.errors import PerseError

    rng = np.random.default_rng(0)
    n = 50
    seeds = SeedSet(points=rng.normal(size=(n, 3)).astype(np.float32), normals=rng.normal(size=(n, 3)).astype(np.float32),
                    colors=rng.random((n, 3)).astype(np.float32), opacity=rng.random(n).astype(np.float32),
                    scale=rng.random(n).astype(np.float32), face=rng.integers(0, 100, n),
                    category=rng.integers(-1, 3, n), variant=rng.integers(-1, 3, n))
    save_seeds(tmp_path / "seeds.npz", seeds)
    back = load_seeds(tmp_path)  # a dataset folder holding seeds.npz
    for name in ("points", "normals", "colors", "opacity", "scale", "face", "category", "variant"):
        np.testing.assert_array_equal(getattr(back, name), getattr(seeds, name))
    assert load_seeds(tmp_path / "elsewhere") is None  # an older dataset: no seeds
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "seeds.npz").write_bytes(b"not a zip")
    with pytest.raises(PerseError):
        load_seeds(tmp_path / "bad")
    with pytest.raises(PerseError):
        back.validate(num_faces=10, num_categories=3)


@pytest.fixture(scope="module")
def seeds(frame_renderer, builtin_head):
    from perse.synth.seeding import dataset_seeds

    neutral = frame_renderer.posed_vertices(builtin_head.zero_params())
    return dataset_seeds(frame_renderer, neutral, np.random.default_rng(0))


def test_seeds_lie_on_the_rendered_geometry(frame_renderer, builtin_head, seeds):
    names = [c.name for c in CATEGORIES]
    g = names.index("glasses")
    round_ = (seeds.category == g) & (seeds.variant == CATEGORIES[g].index("round"))
    neutral = frame_renderer.posed_vertices(builtin_head.zero_params())
    frame = next(a for a in frame_renderer.accessories.get({"glasses": "round"}) if a.name == "glasses_frame")
    on_frame = round_ & (seeds.opacity > 0.5)
    from perse.synth.binding import bind_to_mesh

    on = bind_to_mesh(seeds.points[on_frame], frame.posed(neutral), frame.faces)  # nearest frame triangle
    assert on_frame.sum() > 300
    offset = on.normal_offsets(frame.posed(neutral), frame.faces)
    assert np.abs(offset).max() < 5e-4   # on the frame (a 2.4 mm tube), to float32 and its overlapping caps
    assert (seeds.category == -1).sum() > 500  # the mouth
    # Every accessory seed sits on a triangle its category's branch can reach (else it could not be gated).
    from perse.avatar.model import face_category_mask

    mask = face_category_mask(builtin_head, list(CATEGORIES)).numpy()
    acc = seeds.category >= 0
    assert mask[seeds.face[acc], seeds.category[acc]].all()


def test_seeded_avatar_shows_each_accessory_only_in_its_look(builtin_head, seeds):
    from perse.avatar.model import Avatar, AvatarState

    g = [c.name for c in CATEGORIES].index("glasses")
    seeds = seeds.subset((seeds.category == g) | (seeds.category == -1))  # one branch to fit: quick
    avatar = Avatar.initialize(builtin_head, list(CATEGORIES), num_gaussians=2000, seeds=seeds)
    assert avatar.num_gaussians == 2000 + len(seeds)
    rows = slice(2000, None)
    round_ = torch.as_tensor((seeds.category == g) & (seeds.variant == CATEGORIES[g].index("round")))
    mouth = torch.as_tensor(seeds.category == -1)
    with torch.no_grad():
        ref = avatar.gaussians()
        look = avatar.latent.look_from_spec({"glasses": ("round", 1.0)})
        worn = avatar.gaussians(AvatarState(look=look))
    # Reference look (no glasses): every accessory seed is invisible, the mouth is there.
    assert ref.opacities[rows][~mouth].max() < 0.02
    assert ref.opacities[rows][mouth].min() > 0.5
    # glasses=round: its frame Gaussians appear (lenses stay faint), where the frame is.
    shown = worn.opacities[rows] > 0.5
    assert shown[round_].float().mean() > 0.6
    assert not shown[torch.as_tensor(seeds.category == g) & ~round_ & torch.as_tensor(seeds.opacity > 0.5)].any()
    d, _ = cKDTree(seeds.points[round_.numpy()]).query(worn.means[rows][shown & round_].numpy())
    assert d.max() < 1e-4  # bound exactly where the generator put them (neutral pose)
    # The surface Gaussians are not recoloured or moved by the pre-fitted branch.
    assert torch.allclose(worn.means[:2000], ref.means[:2000], atol=1e-7)
    assert torch.allclose(worn.colors[:2000], ref.colors[:2000], atol=1e-7)


def _seed_opacities(avatar, rows, variant_of_look: str | None):
    from perse.avatar.model import AvatarState

    look = None if variant_of_look is None else avatar.latent.look_from_spec({"glasses": (variant_of_look, 1.0)})
    with torch.no_grad():
        return avatar.gaussians(AvatarState(look=look)).opacities[rows]


def test_seeded_glasses_survive_training_and_densification(tmp_path, builtin_head, renderer):
    """The shared glasses branch must keep gating its seeds while it trains (without the seed anchor the
    round frame's opacity under its own look fell from 0.98 to 0.002 within 40 steps), and the anchor
    must follow the seeds through densification."""
    from perse.synth.dataset import AttributeDataset
    from perse.synth.generator import generate_dataset
    from perse.synth.sampling import SynthSettings
    from perse.train.densify import DensifyConfig
    from perse.train.trainer import Trainer, TrainConfig, new_avatar_for_dataset

    out = generate_dataset(tmp_path / "ds", builtin_head,
                           SynthSettings(num_frames_per_variant=2, image_size=48, seed=1, texture_size=256,
                                         categories=["glasses"], test_fraction=0.0),
                           progress=False, renderer=renderer)
    dataset = AttributeDataset(out)
    cfg = TrainConfig(steps=60, num_gaussians=1500, backend="cpu", checkpoint_every=0,
                      densify=DensifyConfig(start_step=30, stop_step=30, interval=30, max_gaussians=4000))
    torch.manual_seed(0)
    avatar = new_avatar_for_dataset(dataset, cfg, builtin_head)
    spec = avatar.categories[0]
    targets = avatar.seed_targets
    frame_of = lambda t, v: t.rows[(t.variant == spec.index(v)) & (t.logit > 0)]  # noqa: E731 (opaque frame seeds)
    assert _seed_opacities(avatar, frame_of(targets, "round"), "round").mean() > 0.9
    trainer = Trainer(avatar, dataset, cfg)
    for _ in range(cfg.steps):
        trainer.train_step()
    assert trainer.history and "densify" in trainer.history[0]  # densified at step 30: rows were remapped
    targets = trainer.seed_targets
    assert avatar.seed_targets is targets and int(targets.rows.max()) < avatar.num_gaussians
    for style in ("round", "sunglasses"):
        rows = frame_of(targets, style)
        assert rows.numel() > 100  # not pruned
        assert _seed_opacities(avatar, rows, style).mean() > 0.5, style
        assert _seed_opacities(avatar, rows, None).mean() < 0.05, style        # the reference look: none
    other = "rectangular"
    assert _seed_opacities(avatar, frame_of(targets, "round"), other).mean() < 0.05  # not in another look
    trainer.save_checkpoint(tmp_path / "t.ckpt")  # a resumed run keeps anchoring the same rows
    back = Trainer.from_checkpoint(tmp_path / "t.ckpt", dataset)
    assert torch.equal(back.seed_targets.rows, targets.rows) and torch.equal(back.seed_targets.logit, targets.logit)


def test_seed_targets_follow_densification_rows():
    from perse.avatar.seeds import SeedTargets

    t = SeedTargets(rows=torch.tensor([3, 5, 6]), category=torch.tensor([0, 0, 1]), variant=torch.tensor([1, 2, 1]),
                    logit=torch.tensor([1.0, 2.0, 3.0]))
    # old rows 0..6; row 5 pruned; row 3 cloned; row 6 split into two children (source replaced)
    source = torch.tensor([0, 1, 2, 3, 4, 3, 6, 6])
    r = t.remap(source)
    assert r.rows.tolist() == [3, 5, 6, 7] and r.logit.tolist() == [1.0, 1.0, 3.0, 3.0]
    assert r.variant.tolist() == [1, 1, 1, 1] and r.category.tolist() == [0, 0, 1, 1]


def test_an_open_rim_gets_a_row_of_small_seeds_and_the_seeds_near_it_shrink():
    from perse.synth.mesh_primitives import grid_faces
    from perse.synth.seeding import RIM_INSET, RIM_SCALE, rim_falloff, rim_samples

    # A 40 mm x 40 mm open sheet (10 x 10 quads) and a closed box without a rim.
    g = np.linspace(-0.02, 0.02, 11)
    xx, yy = np.meshgrid(g, g)
    sheet = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], 1)
    faces = grid_faces(11, 11, wrap_cols=False)
    tri, bary = rim_samples(sheet, faces, 0.002)
    points = (bary[..., None] * sheet[faces[tri]]).sum(axis=1)
    edge = 0.02 - np.abs(points[:, :2]).max(axis=1)             # distance inside the square's border
    assert len(points) == pytest.approx(4 * 0.04 / 0.002, rel=0.1)   # every 2 mm around the 160 mm rim
    assert edge.min() >= 0 and edge.max() <= RIM_INSET * 0.004 + 1e-9
    factor = rim_falloff(np.array([[0.0, 0.0, 0.0], [0.0199, 0.0, 0.0]]), points, 0.003)
    assert factor[0] == 1.0 and factor[1] == pytest.approx(RIM_SCALE)
    from perse.synth.mesh_primitives import uv_sphere
    ball_v, ball_f = uv_sphere(np.zeros(3), 0.01, 8, 12)
    assert len(rim_samples(ball_v, ball_f, 0.002)[0]) == 0     # a closed mesh has no rim
