"""Photometric losses and image metrics (images are (H, W, C) float tensors in [0, 1]); the seed anchor."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian window, constants for range 1).

    a, b: (H, W, C) -> (H, W) mean over channels. Borders use zero padding like the common 3DGS loss.
    """
    C = a.shape[-1]
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    w = _gaussian_window(window, sigma, C, a.device, a.dtype)
    conv = lambda t: F.conv2d(t, w, padding=window // 2, groups=C)  # noqa: E731
    mu_x, mu_y = conv(x), conv(y)
    sxx = conv(x * x) - mu_x**2
    syy = conv(y * y) - mu_y**2
    sxy = conv(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s[0].mean(dim=0)


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


def seed_anchor_loss(branch, codes: Tensor, features: Tensor, gate_logits: Tensor, base_logits: Tensor,
                     variant: Tensor, target_logit: Tensor, hidden_logit: float) -> Tensor:
    """Keep a category's seeded accessories gated: mean squared error (logit units) of their opacity.

    For M seed Gaussians of one category, under each of the category's U codes: the applied opacity
    logit ``base + sigmoid(gate) * branch(code, feature)[opacity]`` should be `target_logit` where the
    code is the seed's own variant and `hidden_logit` for every other code.

    branch: the category's `CategoryBranch`; codes (U, D) its current variant codes (gradients reach
    them, so the codes may move as long as the look they name still shows its seeds); features (M, F),
    gate_logits (M,), base_logits (M,) the seeds' rows; variant (M,) long; target_logit (M,).
    """
    from perse.avatar.field import OFFSET_SLICES

    op = OFFSET_SLICES["opacity_logit"].start
    gate = torch.sigmoid(gate_logits)
    pred = torch.stack([base_logits + gate * branch(code, features)[:, op] for code in codes])  # (U, M)
    own = variant[None, :] == torch.arange(codes.shape[0], device=codes.device)[:, None]
    target = torch.where(own, target_logit[None, :], torch.full_like(pred, hidden_logit))
    return (pred - target).pow(2).mean()
