"""Row edits of an avatar's Gaussians that keep the optimiser in step, per parameter.

Shaped like gsplat's `strategy.ops`: each edit builds every per-Gaussian tensor anew, hands them to
`Avatar.replace_gaussians`, and moves each parameter's optimiser state to its replacement, rows and all:
surviving rows keep their Adam moments (exp_avg, exp_avg_sq), new rows start from zero, and the step count
stays. Unlike gsplat's, a new Gaussian keeps its source's parent triangle and is split in that triangle's
frame.

Every edit keeps the surviving rows first, in their old order, then appends its new rows, and returns
the remap: (N',) long, new row i continues old row remap[i] (a clone or split child points at its source).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from perse.avatar.model import GAUSSIAN_FIELDS, Avatar
from perse.geometry.rotations import quat_to_matrix

SPLIT_SHRINK = 1.6  # a split child's scale is its source's / 1.6 (3DGS)


@torch.no_grad()
def duplicate(avatar: Avatar, optimizer: torch.optim.Optimizer | None, sel: Tensor) -> Tensor:
    """Append a copy of rows `sel` (M,) long. Returns the remap (N + M,)."""
    p = avatar.gaussians_params
    return _edit_rows(avatar, optimizer, torch.arange(avatar.num_gaussians, device=sel.device),
                      {k: p[k][sel] for k in GAUSSIAN_FIELDS}, sel)


@torch.no_grad()
def split(avatar: Avatar, optimizer: torch.optim.Optimizer | None, sel: Tensor,
          generator: torch.Generator) -> Tensor:
    """Replace rows `sel` (M,) long by two children each, drawn from the source Gaussian (in its triangle's
    frame) and shrunk by SPLIT_SHRINK. Children come as all first children, then all second ones.
    `generator` is a CPU generator (the same draws on every device). Returns the remap (N + M,)."""
    p = avatar.gaussians_params
    rest = torch.ones(avatar.num_gaussians, dtype=torch.bool, device=sel.device)
    rest[sel] = False
    children = []
    for _ in range(2):
        child = {k: p[k][sel] for k in GAUSSIAN_FIELDS}
        scale = torch.exp(child["log_scale"])
        noise = torch.randn(scale.shape, generator=generator).to(scale.device)
        child["position"] = child["position"] + (quat_to_matrix(child["quat"]) @ (scale * noise)[..., None])[..., 0]
        child["log_scale"] = child["log_scale"] - math.log(SPLIT_SHRINK)
        children.append(child)
    added = {k: torch.cat([c[k] for c in children]) for k in GAUSSIAN_FIELDS}
    return _edit_rows(avatar, optimizer, rest.nonzero(as_tuple=True)[0], added, torch.cat([sel, sel]))


@torch.no_grad()
def prune(avatar: Avatar, optimizer: torch.optim.Optimizer | None, mask: Tensor) -> Tensor:
    """Drop the rows where `mask` (N,) bool is set. Returns the remap (N - mask.sum(),)."""
    keep = (~mask).nonzero(as_tuple=True)[0]
    p = avatar.gaussians_params
    return _edit_rows(avatar, optimizer, keep, {k: p[k][:0] for k in GAUSSIAN_FIELDS}, keep[:0])


def _edit_rows(avatar: Avatar, optimizer: torch.optim.Optimizer | None, keep: Tensor,
               added: dict[str, Tensor], source: Tensor) -> Tensor:
    """New rows = old rows `keep` (K,), then `added` (A rows per field), whose sources are `source` (A,)."""
    old = {k: avatar.gaussians_params[k] for k in GAUSSIAN_FIELDS}
    parent = avatar.parent
    avatar.replace_gaussians({k: torch.cat([old[k][keep], added[k]]) for k in GAUSSIAN_FIELDS},
                             torch.cat([parent[keep], parent[source]]))
    if optimizer is not None:
        n_added = source.shape[0]

        def rows(v: Tensor) -> Tensor:
            return torch.cat([v[keep], v.new_zeros((n_added, *v.shape[1:]))])

        for k in GAUSSIAN_FIELDS:
            _move_state(optimizer, old[k], avatar.gaussians_params[k], rows)
    return torch.cat([keep, source])


def _move_state(optimizer: torch.optim.Optimizer, old: Tensor, new: Tensor,
                rows: Callable[[Tensor], Tensor]) -> None:
    """Put `new` where `old` sits in the optimiser's param groups and give it `old`'s state, with each
    per-row state tensor (Adam's moments; not the step count) passed through `rows`."""
    for group in optimizer.param_groups:
        group["params"] = [new if q is old else q for q in group["params"]]
    state = optimizer.state.pop(old, None)
    if state:
        optimizer.state[new] = {key: rows(v) if key != "step" and torch.is_tensor(v) and v.dim() > 0 else v
                                for key, v in state.items()}
