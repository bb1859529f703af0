"""The "reference" backend: dense, obviously-correct rasterization in plain PyTorch (autograd backward).

Every pixel is tested against every visible Gaussian in depth order with the same rules as the
compiled backends (alpha = min(0.999, o exp(-sigma)), skip alpha < 1/255 or sigma < 0, stop a pixel
once its transmittance would drop to 1e-4 or below). Memory is O(pixels x Gaussians): tiny inputs only
(tests and debugging).
"""

from __future__ import annotations

import torch
from torch import Tensor

from perse.errors import PerseError
from perse.render.camera import Camera
from perse.render.gaussians import Gaussians
from perse.render.projection import ALPHA_THRESHOLD, ProjectedGaussians, project_gaussians

ALPHA_MAX = 0.999
T_MIN = 1e-4
MAX_PAIRS = 50_000_000  # pixels x Gaussians; beyond this the dense evaluation needs gigabytes


def composite_dense(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, background: Tensor,
                    width: int, height: int) -> tuple[Tensor, Tensor]:
    """Composite M Gaussians, already sorted front to back, at every pixel.

    means2d: (M, 2); conics: (M, 3); colors: (M, C); opacities: (M,); background: (C,).
    Returns image (H, W, C) and alpha (H, W, 1).
    """
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype), torch.arange(width, dtype=means2d.dtype),
                            indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # (P, 2), centres at integers
    d = means2d[None, :, :] - pix[:, None, :]  # (P, M, 2)
    a, b, c = conics[:, 0], conics[:, 1], conics[:, 2]
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]  # (P, M)
    alpha = torch.clamp_max(opacities * torch.exp(-sigma), ALPHA_MAX)
    used = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
    alpha = torch.where(used, alpha, torch.zeros_like(alpha))
    with torch.no_grad():
        # A Gaussian is composited only while the transmittance after it stays above T_MIN;
        # T is non-increasing, so the first failure stops the pixel for good.
        keep = torch.cumprod(1.0 - alpha, dim=1) > T_MIN
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    one_minus = 1.0 - alpha
    T_after = torch.cumprod(one_minus, dim=1)
    T_before = torch.cat([torch.ones_like(T_after[:, :1]), T_after[:, :-1]], dim=1)
    weights = alpha * T_before  # (P, M)
    T_final = T_after[:, -1:] if alpha.shape[1] > 0 else torch.ones_like(pix[:, :1])
    image = weights @ colors + T_final * background[None, :]
    return image.reshape(height, width, -1), (1.0 - T_final).reshape(height, width, 1)


def rasterize_reference(proj: ProjectedGaussians, colors: Tensor, opacities: Tensor, background: Tensor,
                        width: int, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """Dense counterpart of `perse.render.cpu.rasterize_cpu`: returns rgb, alpha, depth (all (H, W, ·))."""
    idx = torch.nonzero(proj.visible).squeeze(1)
    order = idx[torch.sort(proj.depths.detach()[idx], stable=True).indices]
    if order.numel() * width * height > MAX_PAIRS:
        raise PerseError(f"the reference backend is for tiny inputs ({order.numel()} Gaussians x {width}x{height} "
                         "pixels is too many): use the cpu backend", setting="backend")
    feats = torch.cat([colors, proj.depths[:, None]], dim=1)[order]
    bg = torch.cat([background, background.new_zeros(1)])
    image, alpha = composite_dense(proj.means2d[order], proj.conics[order], feats, opacities[order], bg,
                                   width, height)
    depth = image[..., 3:] / alpha.clamp_min(1e-10)
    return image[..., :3], alpha, depth


def render_reference(gaussians: Gaussians, camera: Camera, background: Tensor) -> tuple[ProjectedGaussians,
                                                                                        Tensor, Tensor, Tensor]:
    """Project and rasterize densely. Returns (projection, rgb, alpha, depth)."""
    proj = project_gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, camera)
    rgb, alpha, depth = rasterize_reference(proj, gaussians.colors, gaussians.opacities, background,
                                            camera.width, camera.height)
    return proj, rgb, alpha, depth
