"""Binding-aware densification and pruning for triangle-bound Gaussians.

Like 3DGS's adaptive density control (and gsplat's DefaultStrategy): `BindingDensifier` keeps the
screen-space gradient statistics and decides which Gaussians to clone, split and prune; the row edits
themselves (`perse.train.ops`) keep each new Gaussian on its parent triangle and the optimiser in step.
Pruning asks whether a Gaussian is invisible under *every* training look (a hat Gaussian is transparent
for most looks yet must stay).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from perse.avatar.model import Avatar
from perse.train import ops


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


@dataclass(frozen=True)
class Densified:
    """What one densification did.

    remap: (N',) long, on the training device: new row i continues old row remap[i] (kept rows first, in
    order, then clones and split children pointing at their source). Per-row state held outside the
    Gaussians (the seed anchor's rows) follows it. `result["split"]` reads like the counts dict.
    """

    cloned: int
    split: int
    pruned: int
    total: int
    remap: Tensor

    def counts(self) -> dict[str, int]:
        return {"cloned": self.cloned, "split": self.split, "pruned": self.pruned, "total": self.total}

    def __getitem__(self, key: str) -> int:
        return self.counts()[key]


class BindingDensifier:
    """Holds the screen-space gradient statistics between densification steps, on the training device
    (accumulating them never waits for the GPU)."""

    def __init__(self, cfg: DensifyConfig, num_gaussians: int, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self._reset(num_gaussians)

    def _reset(self, num_gaussians: int) -> None:
        self.grad_accum = torch.zeros(num_gaussians, device=self.device)  # (N,) summed NDC gradient norms
        self.count = torch.zeros(num_gaussians, device=self.device)       # (N,) steps each was visible

    def accumulate(self, means2d_grad: Tensor, radii: Tensor, width: int, height: int) -> None:
        """Record one step. means2d_grad: (N, 2) pixel-space gradient; radii: (N,) visible if > 0."""
        # Nothing here waits for the device: python scalars (no host-to-device copy), no boolean indexing.
        visible = radii > 0
        g = means2d_grad.detach()
        norm = torch.stack([g[:, 0] * (width / 2), g[:, 1] * (height / 2)], dim=-1).norm(dim=-1)  # NDC like 3DGS
        self.grad_accum += torch.where(visible, norm, torch.zeros_like(norm))
        self.count += visible.to(self.count.dtype)

    def due(self, step: int) -> bool:
        c = self.cfg
        return c.start_step <= step <= c.stop_step and step % c.interval == 0

    @torch.no_grad()
    def densify_and_prune(self, avatar: Avatar, world_scales: Tensor, max_opacity: Tensor,
                          generator: torch.Generator, optimizer: torch.optim.Optimizer | None = None) -> Densified:
        """Clone/split high-gradient Gaussians, prune those transparent under every look; the avatar's
        Gaussians (and `optimizer`'s state for them, when given) are edited in place.

        Args:
            world_scales: (N,) largest world-space scale of each Gaussian (reference state).
            max_opacity: (N,) opacity maximised over the training looks.
            generator: CPU generator for the split children's positions.
        """
        c = self.cfg
        n0 = avatar.num_gaussians
        mean_grad = self.grad_accum / self.count.clamp_min(1)
        v = avatar.head.v_template
        head_size = float((v.max(0).values - v.min(0).values).max())
        big = world_scales.to(self.device) > c.split_scale * head_size
        room = max(c.max_gaussians - n0, 0)
        hot_idx = (mean_grad > c.grad_threshold).nonzero(as_tuple=True)[0]
        if hot_idx.numel() > room:  # keep the hottest when the budget is nearly spent
            hot_idx = hot_idx[mean_grad[hot_idx].argsort(descending=True)[:room]]
        clone_idx = hot_idx[~big[hot_idx]]
        split_idx = hot_idx[big[hot_idx]]
        low = max_opacity.to(self.device) < c.prune_opacity

        remap = ops.duplicate(avatar, optimizer, clone_idx)
        remap = remap[ops.split(avatar, optimizer, split_idx, generator)]
        # Edits keep survivors first, in order: the first n0 - S rows are the originals that were not split.
        # Only those may be pruned (a clone of a transparent Gaussian stays, as a split child does).
        survivors = n0 - split_idx.numel()
        prune = torch.zeros(avatar.num_gaussians, dtype=torch.bool, device=self.device)
        prune[:survivors] = low[remap[:survivors]]
        pruned = int(prune.sum())
        remap = remap[ops.prune(avatar, optimizer, prune)]

        self._reset(avatar.num_gaussians)
        return Densified(cloned=int(clone_idx.numel()), split=int(split_idx.numel()), pruned=pruned,
                         total=avatar.num_gaussians, remap=remap)
