"""EWA projection of 3D Gaussians to the image plane, in plain differentiable PyTorch.

Shared by the "cpu" and "reference" backends. It follows gsplat 1.5.3's fused projection
(`ProjectionEWA3DGSFused.cu`, `_torch_impl._fully_fused_projection`) so every backend bins and
shades the same 2D Gaussians:

- world -> camera: ``X_c = R X + t``, ``Sigma_c = R Sigma R^T`` with ``Sigma = (R_q S)(R_q S)^T``;
- perspective Jacobian ``J = [[fx/z, 0, -fx x/z^2], [0, fy/z, -fy y/z^2]]`` with x/z, y/z clamped to
  1.3x the view frustum (as gsplat does, so huge off-screen Gaussians do not blow up);
- ``cov2d = J Sigma_c J^T + 0.3 I`` (the low-pass filter) and ``conic = inverse(cov2d)`` as (a, b, c);
- opacity-aware 3-sigma extent: ``extend = min(3.33, sqrt(2 ln(255 * opacity)))``, per-axis radii
  ``ceil(extend * sqrt(cov2d_xx))``, ``ceil(extend * sqrt(cov2d_yy))``;
- culling: behind the near plane / beyond the far plane, opacity < 1/255, or no overlap with the image.

Pixel convention: our cameras put pixel (0, 0)'s centre at coordinate (0, 0) (see camera.py), gsplat
puts it at (0.5, 0.5). Every place where that matters (the frustum clamp and the on-screen test)
is written with the +0.5 shift, so our images equal gsplat's renders of the same camera with
``cx + 0.5, cy + 0.5`` (which is exactly what the gsplat backend passes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from perse.render.camera import Camera
from perse.geometry.rotations import quat_to_matrix

EPS2D = 0.3                   # low-pass filter added to the 2D covariance diagonal (pixels^2)
ALPHA_THRESHOLD = 1.0 / 255.0  # a Gaussian is skipped for a pixel when its alpha is below this
MAX_EXTEND = 3.33             # gsplat's sigma multiple for the screen-space bounding box
TILE_SIZE = 16


@dataclass
class ProjectedGaussians:
    """Screen-space Gaussians. Rows of culled Gaussians hold finite dummy values.

    means2d: (N, 2) pixel coordinates of the centres (differentiable).
    conics: (N, 3) upper triangle (a, b, c) of the inverse 2D covariance (differentiable).
    depths: (N,) camera-space z (differentiable).
    radii: (N, 2) int32 per-axis pixel radii of the bounding box; 0 for culled Gaussians.
    visible: (N,) bool, radii > 0.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor
    visible: Tensor


def quat_scale_to_covar(quats: Tensor, scales: Tensor) -> Tensor:
    """(N, 4) quaternions (w, x, y, z) and (N, 3) scales -> (N, 3, 3) covariances (R S)(R S)^T."""
    M = quat_to_matrix(quats) * scales[:, None, :]
    return M @ M.transpose(-1, -2)


def world_to_camera(means: Tensor, covars: Tensor, world_to_cam: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 3) means, (N, 3, 3) covariances, (4, 4) view matrix -> camera-space means and covariances."""
    R, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
    return means @ R.T + t, R @ covars @ R.T


def perspective_project(means_c: Tensor, covars_c: Tensor, K: Tensor, width: int, height: int,
                        z_safe: Tensor) -> tuple[Tensor, Tensor]:
    """EWA perspective projection of camera-space Gaussians.

    means_c: (N, 3); covars_c: (N, 3, 3); K: (3, 3); z_safe: (N,) depths to divide by (the caller
    replaces invalid depths by 1 so that culled rows stay finite and never poison the gradients).
    Returns means2d (N, 2) in our pixel convention and cov2d (N, 2, 2) without the low-pass filter.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x, y = means_c[:, 0], means_c[:, 1]
    # The frustum clamp uses gsplat's continuous coordinates (principal point + 0.5).
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - (cx + 0.5)) / fx + 0.3 * tan_fovx
    lim_x_neg = (cx + 0.5) / fx + 0.3 * tan_fovx
    lim_y_pos = (height - (cy + 0.5)) / fy + 0.3 * tan_fovy
    lim_y_neg = (cy + 0.5) / fy + 0.3 * tan_fovy
    tx = z_safe * torch.clamp(x / z_safe, min=-lim_x_neg, max=lim_x_pos)
    ty = z_safe * torch.clamp(y / z_safe, min=-lim_y_neg, max=lim_y_pos)
    zero = torch.zeros_like(z_safe)
    J = torch.stack([fx / z_safe, zero, -fx * tx / z_safe**2,
                     zero, fy / z_safe, -fy * ty / z_safe**2], dim=-1).reshape(-1, 2, 3)
    cov2d = J @ covars_c @ J.transpose(-1, -2)
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)
    return means2d, cov2d


def conic_from_cov2d(cov2d: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 2, 2) covariances (filter already added) -> conics (N, 3) = (a, b, c) of the inverse, det (N,)."""
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    det_safe = det.clamp_min(1e-10)
    conics = torch.stack([cov2d[:, 1, 1] / det_safe,
                          -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / det_safe,
                          cov2d[:, 0, 0] / det_safe], dim=-1)
    return conics, det


@torch.no_grad()
def screen_radii(cov2d: Tensor, opacities: Tensor) -> tuple[Tensor, Tensor]:
    """Per-axis pixel radii (N, 2) float of the opacity-aware bounding box, and (N,) bool opacity test.

    Beyond `extend` Mahalanobis units a Gaussian's alpha is below 1/255, and the box of that ellipse
    has half-widths extend * sqrt(cov_xx), extend * sqrt(cov_yy).
    """
    opaque_enough = opacities >= ALPHA_THRESHOLD
    extend = torch.sqrt(2.0 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
    extend = extend.clamp(max=MAX_EXTEND)
    diag = torch.stack([cov2d[:, 0, 0], cov2d[:, 1, 1]], dim=-1).clamp_min(0.0)
    radii = torch.ceil(extend[:, None] * torch.sqrt(diag))
    return radii, opaque_enough


def project_gaussians(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                      camera: Camera, eps2d: float = EPS2D) -> ProjectedGaussians:
    """Project N world-space Gaussians into `camera` (see the module docstring for the conventions).

    means: (N, 3); quats: (N, 4) (w, x, y, z), any norm; scales: (N, 3) standard deviations;
    opacities: (N,) in [0, 1] (used only for the bounding box and culling, not differentiated here).
    """
    covars = quat_scale_to_covar(quats, scales)
    means_c, covars_c = world_to_camera(means, covars, camera.world_to_cam.to(means))
    z = means_c[:, 2]
    in_depth = (z >= camera.near) & (z <= camera.far)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    means2d, cov2d = perspective_project(means_c, covars_c, camera.K.to(means), camera.width, camera.height,
                                         z_safe)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    conics, det = conic_from_cov2d(cov2d)

    with torch.no_grad():
        radii, opaque_enough = screen_radii(cov2d.detach(), opacities.detach())
        u, v = means2d[:, 0].detach() + 0.5, means2d[:, 1].detach() + 0.5  # gsplat coordinates
        on_screen = ((u + radii[:, 0] > 0) & (u - radii[:, 0] < camera.width)
                     & (v + radii[:, 1] > 0) & (v - radii[:, 1] < camera.height))
        visible = in_depth & (det.detach() > 0) & opaque_enough & on_screen & (radii > 0).any(dim=-1)
        visible &= torch.isfinite(means2d.detach()).all(dim=-1) & torch.isfinite(conics.detach()).all(dim=-1)
        radii = torch.where(visible[:, None], radii, torch.zeros_like(radii)).to(torch.int32)
    return ProjectedGaussians(means2d, conics, z, radii, visible)


def tile_grid(width: int, height: int, tile_size: int = TILE_SIZE) -> tuple[int, int]:
    """Number of tiles (across, down) covering a width x height image."""
    return math.ceil(width / tile_size), math.ceil(height / tile_size)
