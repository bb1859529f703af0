"""Densification's row edits: each parameter and its Adam moments are replaced in place, new rows start
from zero moments, and every edit returns the remap of its rows."""

import pytest
import torch

from perse.avatar import Avatar
from perse.avatar.model import GAUSSIAN_FIELDS
from perse.train import ops
from perse.train.densify import BindingDensifier, DensifyConfig
from tiny_models import tiny_categories, tiny_head

N = 60


def _avatar_and_adam():
    """A tiny avatar whose Gaussian fields have taken one Adam step (so their moments are non-zero)."""
    avatar = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=N, seed=2)
    groups = [{"params": [avatar.gaussians_params[k]], "lr": 1e-3, "name": k} for k in GAUSSIAN_FIELDS]
    groups.append({"params": list(avatar.field.parameters()), "lr": 1e-3, "name": "field"})
    adam = torch.optim.Adam(groups)
    g = torch.Generator().manual_seed(0)
    loss = sum((p * torch.randn(p.shape, generator=g)).sum() for p in avatar.gaussians_params.values())
    loss.backward()
    adam.step()
    return avatar, adam


def _moments(adam, avatar):
    return {k: {m: adam.state[avatar.gaussians_params[k]][m].clone() for m in ("exp_avg", "exp_avg_sq")}
            for k in GAUSSIAN_FIELDS}


def _check_in_sync(adam, avatar):
    n = avatar.num_gaussians
    assert avatar.parent.shape == (n,) and "parent" in dict(avatar.named_buffers())
    for group in adam.param_groups[:len(GAUSSIAN_FIELDS)]:
        (p,) = group["params"]
        assert p is avatar.gaussians_params[group["name"]] and p.shape[0] == n
        assert adam.state[p]["exp_avg"].shape == p.shape and adam.state[p]["exp_avg_sq"].shape == p.shape
        assert float(adam.state[p]["step"]) == 1  # the step count stays
    assert {id(p) for p in adam.state} == {id(p) for p in avatar.gaussians_params.values()}  # no stale entries


def test_duplicate_appends_copies_with_zero_moments():
    avatar, adam = _avatar_and_adam()
    before = {k: v.detach().clone() for k, v in avatar.gaussians_params.items()}
    parent, moments = avatar.parent.clone(), _moments(adam, avatar)
    sel = torch.tensor([4, 0, 4])
    remap = ops.duplicate(avatar, adam, sel)
    assert remap.tolist() == list(range(N)) + [4, 0, 4]
    _check_in_sync(adam, avatar)
    for k in GAUSSIAN_FIELDS:
        assert torch.equal(avatar.gaussians_params[k].detach(), before[k][remap])
        state = adam.state[avatar.gaussians_params[k]]
        for m in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[m][:N], moments[k][m]) and not state[m][N:].any()
    assert torch.equal(avatar.parent, parent[remap])


def test_split_replaces_sources_by_two_shrunk_children_on_the_same_triangle():
    avatar, adam = _avatar_and_adam()
    before = {k: v.detach().clone() for k, v in avatar.gaussians_params.items()}
    parent, moments = avatar.parent.clone(), _moments(adam, avatar)
    sel = torch.tensor([7, 2])
    remap = ops.split(avatar, adam, sel, torch.Generator().manual_seed(1))
    rest = [i for i in range(N) if i not in (2, 7)]
    assert remap.tolist() == rest + [7, 2, 7, 2]
    _check_in_sync(adam, avatar)
    p = avatar.gaussians_params
    assert torch.equal(p["color_logit"].detach(), before["color_logit"][remap])
    shrink = torch.log(torch.tensor(ops.SPLIT_SHRINK))
    assert torch.allclose(p["log_scale"].detach()[N - 2:], before["log_scale"][remap[N - 2:]] - shrink)
    assert not torch.equal(p["position"].detach()[N - 2:N], p["position"].detach()[N:])  # two different children
    assert torch.equal(avatar.parent, parent[remap])
    for k in GAUSSIAN_FIELDS:
        for m in ("exp_avg", "exp_avg_sq"):
            v = adam.state[p[k]][m]
            assert torch.equal(v[:N - 2], moments[k][m][rest]) and not v[N - 2:].any()


def test_prune_drops_rows_and_their_moments():
    avatar, adam = _avatar_and_adam()
    moments = _moments(adam, avatar)
    mask = torch.zeros(N, dtype=torch.bool)
    mask[[0, 5, N - 1]] = True
    remap = ops.prune(avatar, adam, mask)
    assert remap.tolist() == [i for i in range(N) if not mask[i]]
    _check_in_sync(adam, avatar)
    for k in GAUSSIAN_FIELDS:
        assert torch.equal(adam.state[avatar.gaussians_params[k]]["exp_avg"], moments[k]["exp_avg"][remap])


def test_edits_without_an_optimizer_only_change_the_avatar():
    avatar = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=N, seed=2)
    ops.duplicate(avatar, None, torch.tensor([1, 2]))
    assert avatar.num_gaussians == N + 2 and all(v.shape[0] == N + 2 for v in avatar.gaussians_params.values())


def test_replace_gaussians_refuses_fields_of_another_length():
    avatar = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=N, seed=2)
    tensors = {k: v.detach()[:10] for k, v in avatar.gaussians_params.items()}
    tensors["quat"] = tensors["quat"][:9]
    with pytest.raises(ValueError, match="quat"):
        avatar.replace_gaussians(tensors, avatar.parent[:10])


def test_densify_and_prune_returns_the_remap_of_every_row():
    """Clones and split children point at their source; transparent originals go, their clones stay."""
    avatar, adam = _avatar_and_adam()
    dens = BindingDensifier(DensifyConfig(grad_threshold=0.5, split_scale=0.0, prune_opacity=0.1), N)
    dens.grad_accum[[3, 9]] = 1.0  # hot
    dens.count[:] = 1
    world_scales = torch.zeros(N)
    world_scales[9] = 1.0  # big: 9 splits, 3 clones
    max_opacity = torch.full((N,), 0.5)
    max_opacity[[3, 20]] = 0.01  # transparent: 3 and 20 are pruned, 3's clone is not
    color = avatar.gaussians_params["color_logit"].detach().clone()
    done = dens.densify_and_prune(avatar, world_scales, max_opacity, torch.Generator(), adam)
    assert done.counts() == {"cloned": 1, "split": 1, "pruned": 2, "total": N + 1 + 1 - 2}
    assert done["pruned"] == 2
    kept = [i for i in range(N) if i not in (3, 9, 20)]
    assert done.remap.tolist() == kept + [3, 9, 9]
    assert torch.equal(avatar.gaussians_params["color_logit"].detach(), color[done.remap])
    _check_in_sync(adam, avatar)
    assert dens.grad_accum.shape == (done.total,) and not dens.count.any()  # statistics start over
