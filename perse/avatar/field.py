"""The attribute field: (look, per-Gaussian feature) -> offsets of the bound Gaussians' parameters.

Every category acts through its own small MLP branch, and each branch's output is multiplied by a
per-Gaussian gate: a learned sigmoid times a *structural* 0/1 mask of the category's head regions.
Outside its region a category therefore cannot change anything, so moving the hat slider cannot
repaint the beard. The field sees only the look, never the expression: its output is cached per look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# Offsets of: position (3), rotation quaternion (4), log-scale (3), opacity logit (1), colour logit (3).
OFFSET_SLICES = {"position": slice(0, 3), "quat": slice(3, 7), "log_scale": slice(7, 10),
                 "opacity_logit": slice(10, 11), "color_logit": slice(11, 14)}
OFFSET_DIM = 14
# The shape part of the offsets (position, rotation, scale: where a Gaussian is and how big), contiguous.
GEOMETRY_OFFSETS = slice(OFFSET_SLICES["position"].start, OFFSET_SLICES["log_scale"].stop)


@dataclass
class FieldConfig:
    code_dim: int = 16
    feature_dim: int = 16
    hidden_dim: int = 32


FEATURE_WAVELENGTH_M = 0.08   # typical wavelength of the initial features' waves over the head
FEATURE_STD = 0.5             # their spread, as the random features they replace


def positional_features(points: Tensor, dim: int, generator: torch.Generator,
                        wavelength: float = FEATURE_WAVELENGTH_M) -> Tensor:
    """(N, dim) initial per-Gaussian features that vary smoothly over the head: random Fourier
    features sin(B x + phi) of the canonical positions `points` (N, 3) metres, B ~ N(0, (2 pi /
    wavelength)^2), scaled to FEATURE_STD.

    A branch can only change part of its region (a goatee on the chin, not the cheeks of the same
    beard region) through features that tell the parts apart. Independent random features made every
    Gaussian a stranger to its neighbours, so such patterns had to be learned Gaussian by Gaussian: a
    draft's goatee, seen in 4 % of its steps, came out faint (largest change 0.07 at 2,250 steps, 0.14 at
    2,500; 0 px over 0.15). With these features the same training drew it (6,042 px). Neighbours start
    alike and distant Gaussians apart; training refines the features as before."""
    freq = torch.randn(3, dim, generator=generator) * (2.0 * math.pi / wavelength)
    phase = 2.0 * math.pi * torch.rand(dim, generator=generator)
    return FEATURE_STD * math.sqrt(2.0) * torch.sin(points.float() @ freq + phase)


class CategoryBranch(nn.Module):
    """MLP for one category: [code (D), feature (F)] -> 14 offsets. Zero-initialised output layer so a
    fresh avatar starts at its base Gaussians."""

    def __init__(self, cfg: FieldConfig):
        super().__init__()
        self.code_proj = nn.Linear(cfg.code_dim, cfg.hidden_dim)
        self.feature_proj = nn.Linear(cfg.feature_dim, cfg.hidden_dim, bias=False)
        self.hidden = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)
        self.out = nn.Linear(cfg.hidden_dim, OFFSET_DIM)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, code: Tensor, features: Tensor) -> Tensor:
        """code: (D,) or (K, D); features: (M, F) -> (M, 14), or (K, M, 14) for K codes.

        The feature projection is computed once for all K codes and each code's projection broadcast
        over it: several codes on the same rows cost one feature matmul (regularisers, seed anchors)."""
        code_term = self.code_proj(code)[..., None, :]                        # (1, H) or (K, 1, H)
        h = torch.nn.functional.silu(self.feature_proj(features) + code_term)
        h = torch.nn.functional.silu(self.hidden(h))
        return self.out(h)


class AttributeField(nn.Module):
    """Sum over categories of gate[c] * branch_c(code_c, feature).

    Buffers/parameters are indexed by category order `names`.
    """

    def __init__(self, names: list[str], cfg: FieldConfig):
        super().__init__()
        self.names = list(names)
        self.cfg = cfg
        self.branches = nn.ModuleDict({name: CategoryBranch(cfg) for name in self.names})

    def forward(self, codes: dict[str, Tensor], features: Tensor, gates: Tensor, region_mask: Tensor) -> Tensor:
        """Offsets for all Gaussians.

        Args:
            codes: {category: (D,)}.
            features: (N, F) per-Gaussian features.
            gates: (N, C) learned gate logits.
            region_mask: (N, C) bool, structural region of each category.
        Returns:
            (N, 14) summed offsets (exactly zero where no category's region includes the Gaussian).
        """
        return sum_terms(self.terms(codes, features, gates, region_mask), features)

    def terms(self, codes: dict[str, Tensor], features: Tensor, gates: Tensor,
              region_mask: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """Every category's gated offsets on its own region: {name: (indices (M,), offsets (M, 14))}.
        Arguments as in `forward`, which sums these; categories with an empty region are left out."""
        out = {}
        for name in self.names:
            idx, offsets = self.category_offsets(name, codes[name], features, gates, region_mask)
            if idx.numel():
                out[name] = (idx, offsets)
        return out

    def category_offsets(self, name: str, code: Tensor, features: Tensor, gates: Tensor,
                         region_mask: Tensor) -> tuple[Tensor, Tensor]:
        """One category's gated offsets on its region only: code (D,) or (K, D) -> (indices (M,),
        offsets (M, 14) or (K, M, 14))."""
        c = self.names.index(name)
        idx = region_mask[:, c].nonzero(as_tuple=True)[0]
        gate = torch.sigmoid(gates[idx, c])[:, None]
        return idx, gate * self.branches[name](code, features[idx])


def sum_terms(terms: dict[str, tuple[Tensor, Tensor]], features: Tensor) -> Tensor:
    """(N, 14) sum of `AttributeField.terms` over the N rows of `features` (N, F); exactly zero on rows
    that no category's region includes."""
    out = features.new_zeros(features.shape[0], OFFSET_DIM)
    for idx, offsets in terms.values():
        out = out.index_add(0, idx, offsets)
    return out
