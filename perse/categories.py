"""`Category`: one family of facial attributes (hair, glasses, ...) and its variants.

Shared by the dataset generator (which variants to render), datasets (what each frame shows) and
avatars (one latent code per variant).
"""

from __future__ import annotations

from dataclasses import dataclass

from perse.errors import PerseError


@dataclass(frozen=True)
class Category:
    """name: identifier (``hair``, ``glasses``, ...).
    variants: all variant names, the reference included.
    reference: the variant of the captured look (the person as photographed).
    none: the variant meaning "absent" (no glasses), or None if the attribute is always there.
    regions: head-model regions this category may change; empty means unrestricted (heads without
        region labels, e.g. FLAME).
    """

    name: str
    variants: tuple[str, ...]
    reference: str
    none: str | None = None
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "regions", tuple(self.regions))
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"category {self.name}: duplicate variant names {list(self.variants)}")
        if self.reference not in self.variants:
            raise ValueError(f"category {self.name}: reference '{self.reference}' is not a variant")
        if self.none is not None and self.none not in self.variants:
            raise ValueError(f"category {self.name}: none '{self.none}' is not a variant")

    def index(self, variant: str) -> int:
        """Position of `variant`; PerseError naming the valid variants if unknown."""
        if variant not in self.variants:
            raise PerseError(f"unknown variant '{variant}' for category '{self.name}'; "
                             f"choose one of: {', '.join(self.variants)}")
        return self.variants.index(variant)

    @property
    def non_reference(self) -> list[str]:
        return [v for v in self.variants if v != self.reference]

    def to_dict(self) -> dict:
        return {"name": self.name, "variants": list(self.variants), "reference": self.reference,
                "none": self.none, "regions": list(self.regions)}

    @classmethod
    def from_dict(cls, data: dict) -> "Category":
        return cls(str(data["name"]), tuple(str(v) for v in data["variants"]), str(data["reference"]),
                   data.get("none"), tuple(str(r) for r in data.get("regions", ())))
