"""Standard 3DGS PLY snapshots (readable by common splat viewers), through gsplat's exporter."""

from __future__ import annotations

import os

import torch

from perse.io_utils import atomic_path
from perse.render.gaussians import Gaussians

SH_C0 = 0.28209479177387814  # degree-0 spherical harmonic constant


def export_ply(gaussians: Gaussians, path: str | os.PathLike) -> None:
    """Write world-space Gaussians as a 3DGS PLY (log scales, logit opacities, SH degree 0), atomically."""
    from gsplat.exporter import export_splats

    g = gaussians.detach().to("cpu")
    opac = g.opacities.clamp(1e-6, 1 - 1e-6)
    data = export_splats(
        means=g.means, scales=torch.log(g.scales.clamp_min(1e-10)), quats=g.quats,
        opacities=torch.log(opac / (1 - opac)), sh0=((g.colors - 0.5) / SH_C0)[:, None, :],
        shN=torch.zeros(len(g), 0, 3), format="ply")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
