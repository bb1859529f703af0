"""The training objective's terms as pure functions, and image metrics.

Images are (H, W, C) float tensors in [0, 1]. The regularizers take the attribute field (or one of its
branches) and the per-Gaussian rows they act on; which category, codes or seeds a step samples is the
trainer's business.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _gaussian_kernel(size: int, sigma: float, device, dtype) -> Tensor:
    """(size,) normalised 1-D Gaussian."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_blur(t: Tensor, kernel: Tensor) -> Tensor:
    """(1, K, H, W) -> (1, K, H, W): every channel blurred by the separable 2-D Gaussian `kernel` (k,)
    (a row pass then a column pass; with zero padding this equals the 2-D window exactly, at 2k
    instead of k^2 taps)."""
    K, k = t.shape[1], kernel.shape[0]
    t = F.conv2d(t, kernel.view(1, 1, 1, k).expand(K, 1, 1, k), padding=(0, k // 2), groups=K)
    return F.conv2d(t, kernel.view(1, 1, k, 1).expand(K, 1, k, 1), padding=(k // 2, 0), groups=K)


def ssim_map(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian window, constants for range 1).

    a, b: (H, W, C) -> (H, W) mean over channels. Borders use zero padding like the common 3DGS loss.
    """
    C = a.shape[-1]
    x, y = a.permute(2, 0, 1), b.permute(2, 0, 1)
    # the five local moments in one blur call: a training step's SSIM is one conv pair, not five
    moments = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y])[None],
                             _gaussian_kernel(window, sigma, a.device, a.dtype))[0]
    mu_x, mu_y, exx, eyy, exy = moments.split(C)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=0)


def ssim(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean SSIM, optionally over a (H, W) boolean/float mask."""
    s = ssim_map(a, b)
    if mask is None:
        return s.mean()
    m = mask.to(s.dtype)
    return (s * m).sum() / m.sum().clamp_min(1.0)


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """PSNR in dB for images in [0, 1], optionally over a (H, W) mask."""
    se = (a - b).pow(2).mean(dim=-1)
    mse = se.mean() if mask is None else (se * mask).sum() / mask.sum().clamp_min(1.0)
    return float(10 * math.log10(1.0 / max(float(mse), 1e-12)))


def photometric_loss(render: Tensor, target: Tensor, ssim_weight: float = 0.2) -> Tensor:
    """(1 - w) * L1 + w * (1 - SSIM), the 3DGS objective. render, target: (H, W, 3)."""
    l1 = (render - target).abs().mean()
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim_map(render, target).mean())


def alpha_loss(alpha: Tensor, alpha_gt: Tensor) -> Tensor:
    """Silhouette L1: alpha, alpha_gt (H, W, 1)."""
    return (alpha - alpha_gt).abs().mean()


def code_loss(codes: Sequence[Tensor]) -> Tensor:
    """Mean over categories of ||z||^2 for one look's codes (D,) each; 0 without categories."""
    if not codes:
        return torch.zeros(())
    return sum(z.pow(2).sum() for z in codes) / len(codes)


def gate_loss(gate_logits: Tensor, region_mask: Tensor) -> Tensor:
    """Mean gate inside the structural regions (sparse gates keep regions tight).
    gate_logits (N, C); region_mask (N, C) bool."""
    return (torch.sigmoid(gate_logits) * region_mask).sum() / region_mask.sum().clamp_min(1)


def interpolation_loss(field, name: str, code_a: Tensor, code_b: Tensor, t: float, features: Tensor,
                       gate_logits: Tensor, region_mask: Tensor) -> Tensor:
    """Midpoint regularizer in Gaussian-parameter space: category `name`'s offsets at lerp(a, b, t)
    should be the lerp of its offsets at a and b.

    field: the `AttributeField`; code_a, code_b (D,); features (N, F); gate_logits, region_mask (N, C).
    """
    codes = torch.stack([code_a, code_b, torch.lerp(code_a, code_b, t)])
    _, (off_a, off_b, off_t) = field.category_offsets(name, codes, features, gate_logits, region_mask)
    return (off_t - torch.lerp(off_a, off_b, t)).pow(2).mean()


def splat_regions(means2d: Tensor, radii: Tensor, cam_depths: Tensor, depth: Tensor,
                  regions: Tensor) -> tuple[Tensor, Tensor]:
    """Which image regions each Gaussian's centre lands in, and whether it is seen there.

    means2d (N, 2) pixels; radii (N,) on screen if > 0; cam_depths (N,) camera-space z of the centres;
    depth (H, W, 1) rendered depth; regions (H, W) long per-pixel category bits.
    Returns bits (N,) long (0 off screen) and visible (N,) bool: on screen and not behind the rendered
    surface at its pixel (2 % and 1 mm slack).
    """
    H, W = regions.shape
    px = means2d.round().long()
    inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H) & (radii > 0)
    bits = torch.zeros(px.shape[0], dtype=torch.long, device=means2d.device)
    bits[inside] = regions[px[inside, 1], px[inside, 0]]
    visible = torch.zeros_like(inside)
    depth_at = depth[px[inside, 1], px[inside, 0], 0]
    visible[inside] = cam_depths[inside] <= depth_at * 1.02 + 1e-3
    return bits, visible


def leakage_loss(switched: Iterable[tuple[int, Tensor, Tensor]], bits: Tensor, visible: Tensor) -> Tensor:
    """Disentanglement: the offsets a switched category applies to Gaussians that are *visible* but land
    outside the category's image region (mean absolute offset, summed over categories).

    switched: (category index c, indices (M,), gated offsets (M, 14)) of each category not at its
    reference variant, as `AttributeField.terms` gives them; bits, visible (N,) from `splat_regions`.
    Occluded Gaussians are left alone: the mask says nothing about them, and penalising them shrinks the
    whole shared branch.
    """
    total = torch.zeros((), device=bits.device)
    for c, idx, off in switched:
        leaking = ((((bits[idx] >> c) & 1) == 0) & visible[idx]).float()[:, None]
        total = total + (off.abs() * leaking).sum() / (idx.numel() * off.shape[1])
    return total


def seed_anchor_loss(branch, codes: Tensor, features: Tensor, gate_logits: Tensor, base_logits: Tensor,
                     variant: Tensor, target_logit: Tensor, hidden_logit: float,
                     base_colors: Tensor | None = None, target_colors: Tensor | None = None,
                     color_weight: float = 0.0, geometry_weight: float = 0.0) -> Tensor:
    """Keep a category's seeded accessories gated, in their colour and where they were seeded: mean
    squared errors, logit and offset units.

    For M seed Gaussians of one category, under each of the category's U codes: the applied opacity
    logit ``base + sigmoid(gate) * branch(code, feature)[opacity]`` should be `target_logit` where the
    code is the seed's own variant and `hidden_logit` for every other code. With colours, the applied
    colour logit under the seed's own code should be `target_colors`, weighted by `color_weight`. With
    `geometry_weight`, the branch's gated position, rotation and scale offsets under the seed's own code
    should be zero: the seeds already are the accessory's shape, which the branch, trained mostly by other
    losses while its variant is rarely in view, otherwise moves by centimetres and shrinks to specks
    (a draft's cap seeds: 10 mm Gaussians 15 mm off the cap within 100 steps, 0.3 mm at the end).

    branch: the category's `CategoryBranch`; codes (U, D) its current variant codes (gradients reach
    them, so the codes may move as long as the look they name still shows its seeds); features (M, F),
    gate_logits (M,), base_logits (M,) the seeds' rows; variant (M,) long; target_logit (M,);
    base_colors, target_colors (M, 3) colour logits.
    """
    from perse.avatar.field import GEOMETRY_OFFSETS, OFFSET_SLICES

    op, col = OFFSET_SLICES["opacity_logit"].start, OFFSET_SLICES["color_logit"]
    gate = torch.sigmoid(gate_logits)
    offsets = branch(codes, features)                                                          # (U, M, 14)
    pred = base_logits[None] + gate[None] * offsets[..., op]                                   # (U, M)
    own = variant[None, :] == torch.arange(codes.shape[0], device=codes.device)[:, None]
    target = torch.where(own, target_logit[None, :], torch.full_like(pred, hidden_logit))
    loss = (pred - target).pow(2).mean()
    m = torch.arange(features.shape[0], device=features.device)
    own_offsets = gate[:, None] * offsets[variant, m]                                          # (M, 14)
    if geometry_weight:
        loss = loss + geometry_weight * own_offsets[:, GEOMETRY_OFFSETS].pow(2).mean()
    if base_colors is None or target_colors is None or color_weight == 0:
        return loss
    color = base_colors + own_offsets[:, col]                                                  # (M, 3)
    return loss + color_weight * (color - target_colors).pow(2).mean()
