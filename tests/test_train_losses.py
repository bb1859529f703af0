"""The training objective's regularizers as pure functions: known answers on small inputs."""

import pytest
import torch

from perse.avatar import Avatar
from perse.train.losses import code_loss, gate_loss, interpolation_loss, leakage_loss, splat_regions
from tiny_models import tiny_categories, tiny_head


@pytest.fixture(scope="module")
def avatar():
    """A tiny avatar whose first category branch has a non-zero output layer (a fresh one offsets nothing)."""
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=200, seed=1)
    out = a.field.branches[a.categories[0].name].out
    with torch.no_grad():
        out.weight.copy_(0.3 * torch.randn(out.weight.shape, generator=torch.Generator().manual_seed(0)))
    return a


def test_code_and_gate_losses():
    assert float(code_loss([])) == 0.0
    assert float(code_loss([torch.ones(2), torch.full((2,), 2.0)])) == pytest.approx(5.0)  # (2 + 8) / 2
    mask = torch.tensor([[True, False], [True, False]])
    assert float(gate_loss(torch.zeros(2, 2), mask)) == pytest.approx(0.5)  # sigmoid(0) inside the regions only


def test_interpolation_loss_vanishes_at_the_ends_only(avatar):
    spec = avatar.categories[0]
    codes = avatar.latent.codes[spec.name].detach()
    p = {k: v.detach() for k, v in avatar.gaussians_params.items()}
    args = (p["feature"], p["gate_logit"], avatar.region_mask)
    with torch.no_grad():
        assert float(interpolation_loss(avatar.field, spec.name, codes[0], codes[1], 0.0, *args)) == 0.0
        assert float(interpolation_loss(avatar.field, spec.name, codes[0], codes[1], 0.5, *args)) > 0.0


def test_splat_regions_reads_bits_where_the_centre_is_seen():
    regions = torch.zeros(4, 4, dtype=torch.long)
    regions[1, 2] = 0b10
    depth = torch.full((4, 4, 1), 1.0)
    means2d = torch.tensor([[2.2, 0.8], [2.0, 1.0], [9.0, 1.0]])  # pixel (2, 1) twice, then off screen
    cam_depths = torch.tensor([1.0, 1.5, 1.0])                   # the second lies behind the surface
    bits, visible = splat_regions(means2d, torch.ones(3), cam_depths, depth, regions)
    assert bits.tolist() == [2, 2, 0] and visible.tolist() == [True, False, False]


def test_leakage_counts_visible_gaussians_outside_the_region(avatar):
    spec = avatar.categories[0]
    p = {k: v.detach() for k, v in avatar.gaussians_params.items()}
    n = avatar.num_gaussians
    code = avatar.latent.codes[spec.name][1].detach()
    with torch.no_grad():
        switched = [(0, *avatar.field.category_offsets(spec.name, code, p["feature"], p["gate_logit"],
                                                       avatar.region_mask))]
        outside = leakage_loss(switched, torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.bool))
        inside = leakage_loss(switched, torch.ones(n, dtype=torch.long), torch.ones(n, dtype=torch.bool))
        hidden = leakage_loss(switched, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool))
        unswitched = leakage_loss([], torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.bool))
    assert float(outside) > 0 and float(inside) == 0 and float(hidden) == 0 and float(unswitched) == 0


def test_seed_anchor_holds_gating_and_pulls_colour_toward_the_material():
    from perse.avatar.field import CategoryBranch, FieldConfig
    from perse.train.losses import seed_anchor_loss

    torch.manual_seed(0)
    cfg = FieldConfig()
    branch = CategoryBranch(cfg)
    codes = torch.randn(3, cfg.code_dim)
    m = 8
    features, gates = torch.randn(m, cfg.feature_dim), torch.full((m,), 4.0)
    variant = torch.tensor([1, 2] * 4)
    opacity, target = torch.zeros(m), torch.full((m,), 2.0)
    colors = torch.zeros(m, 3, requires_grad=True)
    black = torch.full((m, 3), -3.0)
    plain = seed_anchor_loss(branch, codes, features, gates, opacity, variant, target, -7.0)
    off = seed_anchor_loss(branch, codes, features, gates, opacity, variant, target, -7.0, colors, black, 0.0)
    assert torch.allclose(plain, off)                         # weight 0: the opacity anchor alone
    with_color = seed_anchor_loss(branch, codes, features, gates, opacity, variant, target, -7.0, colors, black, 0.5)
    assert with_color > plain
    with_color.backward()
    assert (colors.grad > 0).all()                            # descent moves the colour toward black (-3)


def test_seed_anchor_geometry_term_holds_the_branch_off_the_seeds_shape():
    """With geometry_weight, the anchor costs more on a branch whose position, rotation and scale offsets
    on the seeds (under their own codes) are large, and training the branch on it drives them toward zero."""
    from perse.avatar.field import GEOMETRY_OFFSETS, CategoryBranch, FieldConfig
    from perse.train.losses import seed_anchor_loss

    torch.manual_seed(0)
    cfg = FieldConfig()
    branch = CategoryBranch(cfg)
    torch.nn.init.normal_(branch.out.weight, std=0.5)          # a branch that has drifted: big offsets
    codes = torch.randn(3, cfg.code_dim)
    m = 16
    features, gates = torch.randn(m, cfg.feature_dim), torch.full((m,), 4.0)
    variant = torch.tensor([1, 2] * 8)
    opacity, target = torch.zeros(m), torch.full((m,), 2.0)
    args = (branch, codes, features, gates, opacity, variant, target, -7.0)
    assert seed_anchor_loss(*args, geometry_weight=1.0) > seed_anchor_loss(*args)

    def own_geometry() -> float:
        with torch.no_grad():
            return float(branch(codes, features)[variant, torch.arange(m)][:, GEOMETRY_OFFSETS].abs().mean())

    before = own_geometry()
    opt = torch.optim.Adam(branch.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        seed_anchor_loss(*args, geometry_weight=1.0).backward()
        opt.step()
    assert own_geometry() < 0.1 * before
