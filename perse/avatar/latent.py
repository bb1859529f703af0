"""The attribute latent space: per-category variant codes (an auto-decoder), looks, sampling.

A *look* picks one code per category. The codes of a category's training variants are learned; the
reference variant is the person as photographed, and "none" (where it exists) removes the attribute.
Any convex combination of codes is a look too, which is what sliders and interpolation move through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from perse.categories import Category
from perse.errors import PerseError


@dataclass
class Look:
    """One latent code per category. codes: {category: (D,) tensor}."""

    codes: dict[str, Tensor] = field(default_factory=dict)

    def key(self) -> bytes:
        """A hashable fingerprint of the codes (used to cache the look-dependent part of an avatar)."""
        return b"".join(name.encode() + self.codes[name].detach().cpu().numpy().tobytes()
                        for name in sorted(self.codes))

    def with_code(self, category: str, code: Tensor) -> "Look":
        return Look({**self.codes, category: code})

    def to_dict(self) -> dict:
        return {name: code.tolist() for name, code in self.codes.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Look":
        return cls({name: torch.tensor(code, dtype=torch.float32) for name, code in data.items()})


def lerp_looks(a: Look, b: Look, t: float) -> Look:
    """(1 - t) * a + t * b per category (t outside [0, 1] extrapolates)."""
    return Look({name: torch.lerp(a.codes[name], b.codes[name], t) for name in a.codes})


class LatentSpace(nn.Module):
    """Per-category code tables. codes[c]: (num_variants_c, code_dim), learned as an auto-decoder."""

    def __init__(self, categories: list[Category], code_dim: int = 16, init_std: float = 1.0,
                 seed: int = 0):
        super().__init__()
        self.categories = list(categories)
        self.code_dim = code_dim
        g = torch.Generator().manual_seed(seed)
        self.codes = nn.ParameterDict({
            c.name: nn.Parameter(init_std * torch.randn(len(c.variants), code_dim, generator=g))
            for c in self.categories
        })

    # -- lookup ---------------------------------------------------------------------------------
    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    def category(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise PerseError(f"unknown category '{name}'; this avatar has: {', '.join(self.category_names)}")

    def variant_code(self, category: str, variant: str) -> Tensor:
        spec = self.category(category)
        return self.codes[category][spec.index(variant)]

    # -- looks ----------------------------------------------------------------------------------
    def look_from_indices(self, indices: dict[str, int]) -> Look:
        """The look of a training frame: one variant index per category (differentiable in the codes)."""
        return Look({c.name: self.codes[c.name][indices[c.name]] for c in self.categories})

    def reference_look(self) -> Look:
        return Look({c.name: self.codes[c.name][c.index(c.reference)].detach().clone() for c in self.categories})

    def blend(self, look: Look, category: str, variant: str, weight: float) -> Look:
        """Move one category from the reference code toward `variant` by `weight` (may extrapolate)."""
        spec = self.category(category)
        ref = self.codes[category][spec.index(spec.reference)].detach()
        target = self.codes[category][spec.index(variant)].detach()
        return look.with_code(category, torch.lerp(ref, target, float(weight)))

    def look_from_spec(self, spec: dict[str, tuple[str, float]]) -> Look:
        """Reference look with some categories moved: ``{"hair": ("blonde", 1.0), ...}``."""
        look = self.reference_look()
        for category, (variant, weight) in spec.items():
            look = self.blend(look, category, variant, weight)
        return look

    # -- sampling -------------------------------------------------------------------------------
    def code_distribution(self, category: str) -> tuple[Tensor, Tensor]:
        """Mean (D,) and covariance (D, D) of a category's learned codes (shrunk toward isotropic,
        so categories with few variants still give a proper distribution)."""
        codes = self.codes[category].detach()
        mean = codes.mean(dim=0)
        centered = codes - mean
        cov = centered.T @ centered / max(codes.shape[0] - 1, 1)
        iso = cov.diagonal().mean().clamp_min(1e-6)
        cov = 0.5 * cov + 0.5 * iso * torch.eye(self.code_dim)
        return mean, cov

    def sample_code(self, category: str, generator: torch.Generator | None = None,
                    temperature: float = 1.0) -> Tensor:
        mean, cov = self.code_distribution(category)
        L = torch.linalg.cholesky(cov + 1e-8 * torch.eye(self.code_dim))
        eps = torch.randn(self.code_dim, generator=generator)
        return mean + temperature * (L @ eps)

    def sample_look(self, generator: torch.Generator | None = None, temperature: float = 1.0) -> Look:
        return Look({c.name: self.sample_code(c.name, generator, temperature) for c in self.categories})
