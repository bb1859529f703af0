"""Binding, latent space, attribute field gating and look caching of `Avatar`."""

import math

import pytest
import torch

from perse.avatar import Avatar, AvatarState, Look, lerp_looks
from perse.geometry.triangles import to_frame
from perse.errors import PerseError
from perse.geometry.rotations import axis_angle_to_matrix, matrix_to_quat, quat_multiply, quat_to_matrix
from perse.geometry.triangles import triangle_frames
from perse.head.model import HeadParams
from tiny_models import tiny_categories, tiny_head


def _randomise_field(avatar: Avatar, seed: int = 0) -> None:
    """Give the zero-initialised output layers real weights so looks have visible effects."""
    g = torch.Generator().manual_seed(seed)
    for branch in avatar.field.branches.values():
        branch.out.weight.data = 0.3 * torch.randn(branch.out.weight.shape, generator=g)
        branch.out.bias.data = 0.3 * torch.randn(branch.out.bias.shape, generator=g)


@pytest.fixture
def avatar():
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=1500, seed=1)
    _randomise_field(a)
    return a.eval()


def test_axis_angle_matches_known_rotation():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    Rs = axis_angle_to_matrix(torch.randn(10, 3))
    assert torch.allclose(Rs @ Rs.transpose(-1, -2), torch.eye(3).expand(10, 3, 3), atol=1e-5)


def test_quaternion_round_trip_and_product():
    q = torch.nn.functional.normalize(torch.randn(100, 4), dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-5)
    a, b = q[:50], q[50:]
    assert torch.allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-5)


def test_triangle_frames_are_orthonormal_and_invert():
    head = tiny_head()
    frames = triangle_frames(head.v_template, head.faces)
    R = frames.rotations
    assert torch.allclose(R.transpose(-1, -2) @ R, torch.eye(3).expand_as(R), atol=1e-5)
    assert torch.all(torch.linalg.det(R) > 0.999)
    parent = torch.randint(head.faces.shape[0], (64,))
    pts = torch.randn(64, 3) * 0.05
    local = to_frame(pts, parent, frames)
    back = frames.origins[parent] + frames.scales[parent][:, None] * (R[parent] @ local[..., None])[..., 0]
    assert torch.allclose(back, pts, atol=1e-6)


def test_gaussians_follow_a_rigid_motion_of_the_head(avatar):
    with torch.no_grad():
        g0 = avatar.gaussians()
        rot = torch.tensor([[0.0, 0.5, 0.0]])
        moved = avatar.gaussians(AvatarState(HeadParams(global_rot=rot, translation=torch.tensor([[0.1, 0, 0]]))))
    R = axis_angle_to_matrix(rot[0])
    # The root joint sits at the origin for the tiny head (regressed from a centred sphere).
    assert torch.allclose(moved.means, g0.means @ R.T + torch.tensor([0.1, 0, 0]), atol=1e-5)
    assert torch.allclose(moved.scales, g0.scales, atol=1e-6)
    assert torch.allclose(quat_to_matrix(moved.quats), R @ quat_to_matrix(g0.quats), atol=1e-4)


def test_jaw_moves_only_jaw_weighted_gaussians(avatar):
    with torch.no_grad():
        g0 = avatar.gaussians()
        g1 = avatar.gaussians(AvatarState(HeadParams(jaw_rot=torch.tensor([[0.3, 0.0, 0.0]]))))
    moved = (g1.means - g0.means).norm(dim=1) > 1e-6
    lower_face = avatar.head.lbs_weights[avatar.head.faces[avatar.parent], 2].max(dim=1).values > 0
    assert moved.any()
    assert not (moved & ~lower_face).any()


@pytest.mark.parametrize("category,region", [("hat", 0), ("beard", 1)])
def test_category_changes_only_its_region(avatar, category, region):
    """Structural gating: the hat (region 'top') cannot touch Gaussians bound to the bottom only."""
    with torch.no_grad():
        ref = avatar.gaussians()
        spec = avatar.latent.category(category)
        other = [v for v in spec.variants if v != spec.reference][0]
        look = avatar.latent.look_from_spec({category: (other, 1.0)})
        g = avatar.gaussians(AvatarState(look=look))
    changed = ((g.means - ref.means).abs().sum(1) + (g.colors - ref.colors).abs().sum(1)) > 1e-7
    tri_regions = avatar.head.vertex_regions[avatar.head.faces[avatar.parent]]  # (N, 3)
    in_region = (tri_regions == region).any(dim=1)
    assert changed.sum() > 0.5 * in_region.sum()  # it does act on its region
    assert not (changed & ~in_region).any()  # and nowhere else


def test_look_cache_skips_the_field_for_expression_changes(avatar, monkeypatch):
    calls = {"n": 0}
    original = avatar.field.forward

    def counting(*a, **k):
        calls["n"] += 1
        return original(*a, **k)

    monkeypatch.setattr(avatar.field, "forward", counting)
    with torch.no_grad():
        for e in torch.linspace(0, 1, 5):
            avatar.gaussians(AvatarState(HeadParams(expression=torch.tensor([[float(e), 0.0, 0.0]]))))
        assert calls["n"] == 1
        avatar.gaussians(AvatarState(look=avatar.latent.look_from_spec({"hat": ("red", 0.5)})))
        assert calls["n"] == 2


def test_blend_and_interpolation_are_linear_in_codes(avatar):
    lat = avatar.latent
    half = lat.look_from_spec({"hat": ("red", 0.5)})
    expected = 0.5 * (lat.variant_code("hat", "none") + lat.variant_code("hat", "red"))
    assert torch.allclose(half.codes["hat"], expected, atol=1e-6)
    a, b = lat.reference_look(), lat.look_from_spec({"hat": ("blue", 1.0), "beard": ("dark", 1.0)})
    mid = lerp_looks(a, b, 0.25)
    assert torch.allclose(mid.codes["beard"], 0.75 * a.codes["beard"] + 0.25 * b.codes["beard"], atol=1e-6)
    assert Look.from_dict(b.to_dict()).key() == b.key()


def test_sampling_is_seeded_and_unknown_names_fail(avatar):
    lat = avatar.latent
    s1 = lat.sample_look(torch.Generator().manual_seed(3))
    s2 = lat.sample_look(torch.Generator().manual_seed(3))
    assert s1.key() == s2.key()
    mean, cov = lat.code_distribution("hat")
    assert torch.all(torch.linalg.eigvalsh(cov) > 0)
    with pytest.raises(PerseError, match="unknown category 'hair'"):
        lat.look_from_spec({"hair": ("red", 1.0)})
    with pytest.raises(PerseError, match="unknown variant 'green'"):
        lat.look_from_spec({"hat": ("green", 1.0)})


def test_initial_shell_gaussians_float_above_category_regions():
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=2000, shell_fraction=0.4)
    with torch.no_grad():
        g = a.gaussians()
    radius = g.means.norm(dim=1)
    faint = g.opacities < 0.1
    assert faint.sum() == int(2000 * 0.4)
    assert radius[faint].mean() > radius[~faint].mean() + 0.005  # shells sit above the 0.1 m sphere


def test_expression_loop_opens_the_jaw_on_the_joint_only():
    from perse.export.presets import JAW_FOR_JAWOPEN, expression_keyframes
    from perse.head import load_builtin_head

    a = Avatar.initialize(load_builtin_head(), [], num_gaussians=100)
    frames = expression_keyframes(a)
    jaw_open = a.head.expression_names.index("jawOpen")
    assert all(float(k.expression[jaw_open]) == 0.0 for k in frames)
    assert max(k.jaw for k in frames) == pytest.approx(0.7 * JAW_FOR_JAWOPEN)


def test_field_terms_and_branches_agree_with_the_summed_field(avatar):
    """`gaussians_with_terms` builds the same Gaussians as `gaussians`; its terms are each category's
    branch on its region; a branch given K codes equals K single-code calls."""
    spec = avatar.categories[0]
    look = avatar.latent.reference_look().with_code(spec.name, avatar.latent.variant_code(spec.name, spec.variants[1]))
    state = AvatarState(HeadParams(), look)
    with torch.no_grad():
        plain = avatar.gaussians(state)
        avatar.invalidate_cache()
        built, terms = avatar.gaussians_with_terms(state)
        assert torch.allclose(plain.means, built.means, atol=1e-6)
        assert torch.allclose(plain.colors, built.colors, atol=1e-6)
        p = avatar.gaussians_params
        for c, spec in enumerate(avatar.categories):
            idx, off = terms[spec.name]
            assert torch.equal(idx, avatar.region_mask[:, c].nonzero(as_tuple=True)[0])
            _, want = avatar.field.category_offsets(spec.name, look.codes[spec.name], p["feature"], p["gate_logit"],
                                                    avatar.region_mask)
            assert torch.allclose(off, want)
        branch, codes = avatar.field.branches[spec.name], avatar.latent.codes[spec.name]
        features = p["feature"][:50]
        assert torch.allclose(branch(codes, features), torch.stack([branch(z, features) for z in codes]), atol=1e-6)


def test_initial_features_tell_near_gaussians_from_far_ones():
    """A fresh avatar's features vary smoothly over the head (`positional_features`): neighbours a few
    millimetres apart start alike, Gaussians across the head do not, and the spread is the random
    features' (std 0.5), so a branch can change part of its region from the first step."""
    from perse.avatar.field import FEATURE_STD, positional_features

    g = torch.Generator().manual_seed(0)
    points = 0.1 * torch.randn(4000, 3, generator=g)
    f = positional_features(points, 16, torch.Generator().manual_seed(1))
    assert f.shape == (4000, 16)
    assert abs(float(f.std()) - FEATURE_STD) < 0.05
    d_points = torch.cdist(points, points)
    d_features = torch.cdist(f, f)
    near, far = (d_points < 0.005) & (d_points > 0), d_points > 0.15
    assert float(d_features[near].mean()) < 0.35 * float(d_features[far].mean())


def test_fresh_avatar_features_follow_its_gaussians_positions():
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=1500, seed=1)
    centres = a.gaussians(AvatarState(a.reference_state().head)).means.detach()
    feats = a.gaussians_params["feature"].detach()
    d_points, d_features = torch.cdist(centres, centres), torch.cdist(feats, feats)
    near, far = (d_points < 0.01) & (d_points > 0), d_points > 0.1
    assert near.any() and far.any()
    assert float(d_features[near].mean()) < 0.5 * float(d_features[far].mean())
