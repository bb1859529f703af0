"""Binding-aware densification and pruning for triangle-bound Gaussians.

Like 3DGS's adaptive density control (and gsplat's DefaultStrategy), but every new Gaussian keeps its
parent triangle and is created in that triangle's frame, and pruning asks whether a Gaussian is
invisible under *every* training look (a hat Gaussian is transparent for most looks yet must stay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from perse.avatar.model import GAUSSIAN_FIELDS, Avatar
from perse.geometry.rotations import quat_to_matrix


@dataclass
class DensifyConfig:
    start_step: int = 300
    stop_step: int = 4000
    interval: int = 200
    grad_threshold: float = 0.0004  # mean screen-space gradient norm (normalised device units)
    split_scale: float = 0.02       # relative to the head's size: larger Gaussians split, smaller clone
    prune_opacity: float = 0.005
    max_gaussians: int = 60000
    reset_opacity_interval: int = 0  # 0: never (looks share opacity; resets hurt rarely seen variants)


class BindingDensifier:
    """Holds the screen-space gradient statistics between densification steps."""

    def __init__(self, cfg: DensifyConfig, num_gaussians: int):
        self.cfg = cfg
        self.grad_accum = torch.zeros(num_gaussians)
        self.count = torch.zeros(num_gaussians)

    def accumulate(self, means2d_grad: Tensor, radii: Tensor, width: int, height: int) -> None:
        """Record one step. means2d_grad: (N, 2) pixel-space gradient; radii: (N,) visible if > 0."""
        visible = radii > 0
        g = means2d_grad.detach().cpu() * torch.tensor([width / 2, height / 2])  # to NDC units like 3DGS
        self.grad_accum[visible.cpu()] += g.norm(dim=-1)[visible.cpu()]
        self.count[visible.cpu()] += 1

    def due(self, step: int) -> bool:
        c = self.cfg
        return c.start_step <= step <= c.stop_step and step % c.interval == 0

    @torch.no_grad()
    def densify_and_prune(self, avatar: Avatar, world_scales: Tensor, max_opacity: Tensor,
                          generator: torch.Generator) -> dict[str, int]:
        """Clone/split high-gradient Gaussians, prune those transparent under every look.

        Args:
            world_scales: (N,) largest world-space scale of each Gaussian (reference state).
            max_opacity: (N,) opacity maximised over the training looks.
        Returns:
            counts {"cloned", "split", "pruned", "total"}; the avatar's parameters are replaced in place.
        """
        c = self.cfg
        mean_grad = self.grad_accum / self.count.clamp_min(1)
        head_size = float(avatar.head.v_template.max(0).values.sub(avatar.head.v_template.min(0).values).max())
        big = world_scales > c.split_scale * head_size
        hot = mean_grad > c.grad_threshold
        room = max(c.max_gaussians - avatar.num_gaussians, 0)
        hot_idx = hot.nonzero(as_tuple=True)[0]
        if hot_idx.numel() > room:  # keep the hottest when the budget is nearly spent
            hot_idx = hot_idx[mean_grad[hot_idx].argsort(descending=True)[:room]]
        clone_idx = hot_idx[~big[hot_idx]]
        split_idx = hot_idx[big[hot_idx]]
        prune = max_opacity < c.prune_opacity
        prune[split_idx] = True  # a split replaces its source by two children

        p = {k: v.data for k, v in avatar.gaussians_params.items()}
        parent = avatar.parent
        new_rows = {k: [p[k][clone_idx]] for k in GAUSSIAN_FIELDS}
        new_parent = [parent[clone_idx]]
        for _ in range(2):
            child = {k: p[k][split_idx].clone() for k in GAUSSIAN_FIELDS}
            scale = torch.exp(child["log_scale"])
            R = quat_to_matrix(child["quat"])
            jitter = (R @ (scale * torch.randn(scale.shape, generator=generator))[..., None])[..., 0]
            child["position"] = child["position"] + jitter
            child["log_scale"] = child["log_scale"] - math.log(1.6)
            for k in GAUSSIAN_FIELDS:
                new_rows[k].append(child[k])
            new_parent.append(parent[split_idx])
        keep = ~prune
        merged = {k: torch.cat([p[k][keep]] + new_rows[k]) for k in GAUSSIAN_FIELDS}
        merged_parent = torch.cat([parent[keep]] + new_parent)
        # Row i of the new tensors continues old row source[i] (its optimiser moments are carried over).
        self.source_index = torch.cat([keep.nonzero(as_tuple=True)[0], clone_idx, split_idx, split_idx])
        _replace_gaussians(avatar, merged, merged_parent)
        n = avatar.num_gaussians
        self.grad_accum = torch.zeros(n)
        self.count = torch.zeros(n)
        return {"cloned": int(clone_idx.numel()), "split": int(split_idx.numel()),
                "pruned": int(prune.sum()) - int(split_idx.numel()), "total": n}


def _replace_gaussians(avatar: Avatar, tensors: dict[str, Tensor], parent: Tensor) -> None:
    for k in GAUSSIAN_FIELDS:
        avatar.gaussians_params[k] = torch.nn.Parameter(tensors[k].contiguous())
    avatar.parent = parent.contiguous()
    avatar.invalidate_cache()
