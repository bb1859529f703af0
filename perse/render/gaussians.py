"""`Gaussians`: a set of 3D Gaussians in world space, ready to render (gsplat's parameterisation)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class Gaussians:
    """N Gaussians, activated values (not logits).

    means: (N, 3) world positions.
    quats: (N, 4) rotations as unit quaternions, (w, x, y, z) order as in gsplat.
    scales: (N, 3) standard deviations along the rotated axes (metres, > 0).
    opacities: (N,) in [0, 1].
    colors: (N, 3) RGB in [0, 1].
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor

    def __len__(self) -> int:
        return self.means.shape[0]

    def to(self, device: torch.device | str) -> "Gaussians":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def detach(self) -> "Gaussians":
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def subset(self, index: Tensor) -> "Gaussians":
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def cat(items: list["Gaussians"]) -> "Gaussians":
        return Gaussians(**{f.name: torch.cat([getattr(g, f.name) for g in items]) for f in fields(Gaussians)})
