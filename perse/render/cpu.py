"""The "cpu" backend: compiled (numba) tile rasterizer with a hand-written backward pass.

`RasterizeCPU` is a torch.autograd.Function over screen-space Gaussians; `render_cpu` runs the shared
EWA projection (perse/render/projection.py) in torch, so gradients reach means, quats, scales,
opacities and colors through autograd. Kernels: perse/render/_cpu_kernels.py (cached on disk by numba).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from perse.render import _cpu_kernels as K
from perse.render.camera import Camera
from perse.render.gaussians import Gaussians
from perse.render.projection import ProjectedGaussians, project_gaussians, tile_grid


def _pack_features(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, radii: Tensor,
                   order: Tensor) -> np.ndarray:
    """(M, FEAT + C) float32 rows of the visible Gaussians `order` (front to back), see _cpu_kernels."""
    op = opacities[order]
    sigma_max = torch.log(op.clamp_min(K.ALPHA_MIN) * 255.0)
    feat = torch.cat([means2d[order], conics[order], op[:, None], sigma_max[:, None],
                      radii[order].to(torch.float32), colors[order]], dim=1)
    return np.ascontiguousarray(feat.detach().to(torch.float32).numpy())


class RasterizeCPU(torch.autograd.Function):
    """Composite screen-space Gaussians into an image on the CPU.

    Inputs: means2d (N, 2), conics (N, 3), colors (N, C), opacities (N,), background (C,) — all
    differentiable — then, not differentiated: radii (N, 2) int (0 = culled), depths (N,) (the sort key),
    width, height. Outputs: image (H, W, C) composited over `background`, alpha (H, W, 1).
    """

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, background, radii, depths, width, height):
        visible = (radii > 0).all(dim=-1)
        idx = torch.nonzero(visible).squeeze(1)
        # Stable sort: equal depths keep index order, as gsplat's stable radix sort does.
        order = idx[torch.sort(depths.detach()[idx], stable=True).indices]
        feat = _pack_features(means2d.detach(), conics.detach(), colors.detach(), opacities.detach(),
                              radii, order)
        tiles_x, tiles_y = tile_grid(width, height)
        tile_start, tile_ids = K.bin_tiles(feat, tiles_x, tiles_y)
        C = colors.shape[1]
        bg = np.ascontiguousarray(background.detach().to(torch.float32).numpy())
        out = np.empty((height, width, C), dtype=np.float32)
        T_final = np.empty((height, width), dtype=np.float32)
        last_idx = np.empty((height, width), dtype=np.int32)
        K.rasterize_forward(feat, tile_start, tile_ids, width, height, tiles_x, bg, out, T_final, last_idx)

        ctx.kernel_state = (feat, tile_start, tile_ids, bg, T_final, last_idx, tiles_x)
        ctx.save_for_backward(order)
        ctx.size = (width, height, means2d.shape[0], C)
        image = torch.from_numpy(out)
        alpha = torch.from_numpy(1.0 - T_final)[..., None]
        return image, alpha

    @staticmethod
    def backward(ctx, grad_image, grad_alpha):
        (order,) = ctx.saved_tensors
        feat, tile_start, tile_ids, bg, T_final, last_idx, tiles_x = ctx.kernel_state
        width, height, N, C = ctx.size
        g_img = np.ascontiguousarray(grad_image.detach().to(torch.float32).numpy())
        g_alpha = np.ascontiguousarray(grad_alpha.detach().to(torch.float32).numpy()[..., 0])
        grad_isect = np.empty((tile_ids.shape[0], 6 + C), dtype=np.float32)
        K.rasterize_backward(feat, tile_start, tile_ids, width, height, tiles_x, bg, T_final, last_idx,
                             g_img, g_alpha, grad_isect)
        per_gauss = torch.from_numpy(K.reduce_isect_grads(tile_ids, grad_isect, feat.shape[0]))

        grads = torch.zeros(N, 6 + C, dtype=torch.float32)
        grads[order] = per_gauss
        grad_bg = (torch.from_numpy(T_final)[..., None] * grad_image).sum(dim=(0, 1))
        return (grads[:, 0:2], grads[:, 2:5], grads[:, 6:], grads[:, 5], grad_bg,
                None, None, None, None)


def rasterize_cpu(proj: ProjectedGaussians, colors: Tensor, opacities: Tensor, background: Tensor,
                  width: int, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rasterize projected Gaussians: colors (N, 3), opacities (N,), background (3,).

    Returns rgb (H, W, 3), alpha (H, W, 1) and depth (H, W, 1), the alpha-normalised expected camera z
    (gsplat's "ED"): depth rides along as a fourth channel with background 0.
    """
    feats = torch.cat([colors, proj.depths[:, None]], dim=1)
    bg = torch.cat([background, background.new_zeros(1)])
    image, alpha = RasterizeCPU.apply(proj.means2d, proj.conics, feats, opacities, bg, proj.radii,
                                      proj.depths, width, height)
    depth = image[..., 3:] / alpha.clamp_min(1e-10)
    return image[..., :3], alpha, depth


def render_cpu(gaussians: Gaussians, camera: Camera, background: Tensor) -> tuple[ProjectedGaussians, Tensor,
                                                                                   Tensor, Tensor]:
    """Project and rasterize on the CPU. Returns (projection, rgb, alpha, depth)."""
    proj = project_gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, camera)
    rgb, alpha, depth = rasterize_cpu(proj, gaussians.colors, gaussians.opacities, background,
                                      camera.width, camera.height)
    return proj, rgb, alpha, depth
