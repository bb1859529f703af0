"""The attribute catalogue: categories of facial attributes and their variants.

Every category has a *reference* variant (the look of the person as captured: for the built-in
generator, the default textured head) and optionally a *none* variant (the attribute absent: no
glasses, no hat, ...). A look is one variant per category. `regions` names the head regions (see
`HEAD_REGIONS`) whose pixels the category may change in an image; the generator adds the category's
accessory geometry to that set when it builds per-frame region masks.

The order of `CATEGORIES` is part of the dataset format: category index ``c`` is bit ``c`` of the
per-pixel region masks, so append new categories at the end.
"""

from __future__ import annotations

from perse.categories import Category
from perse.errors import PerseError

# Region names of the built-in head (meta["regions"]), in id order.
HEAD_REGIONS = ("face", "forehead", "brows", "eyelids", "eyeballs", "nose", "lips", "beard", "ears",
                "scalp", "back_of_head", "neck")

# Regions showing skin in the reference look (the scalp and back of the head are under hair).
SKIN_REGIONS = ["face", "forehead", "brows", "eyelids", "nose", "lips", "beard", "ears", "neck"]


def check_regions(category: Category) -> Category:
    """The catalogue's categories must name regions of the built-in head."""
    unknown = [r for r in category.regions if r not in HEAD_REGIONS]
    if unknown:
        raise ValueError(f"category {category.name}: unknown region(s) {unknown}")
    return category


CATEGORIES: list[Category] = [check_regions(c) for c in [
    Category("hair", ["brown", "black", "blonde", "red", "gray"], reference="brown", none=None,
             regions=["scalp", "back_of_head", "forehead"]),
    Category("beard", ["none", "stubble", "goatee", "full"], reference="none", none="none",
             regions=["beard", "face", "lips", "neck"]),
    Category("eyebrows", ["natural", "thick", "thin", "light"], reference="natural", none=None,
             regions=["brows", "forehead", "eyelids"]),
    Category("glasses", ["none", "round", "rectangular", "sunglasses"], reference="none", none="none",
             regions=["eyelids", "eyeballs", "brows", "nose", "face", "ears"]),
    Category("hat", ["none", "cap", "beanie"], reference="none", none="none",
             regions=["scalp", "forehead", "back_of_head", "ears", "brows"]),
    Category("earrings", ["none", "studs", "hoops"], reference="none", none="none",
             regions=["ears", "neck"]),
    Category("lips", ["natural", "red", "berry", "pale"], reference="natural", none=None,
             regions=["lips"]),
    Category("skin", ["reference", "lighter", "darker", "tan"], reference="reference", none=None,
             regions=list(SKIN_REGIONS)),
]]

_BY_NAME = {c.name: c for c in CATEGORIES}


def category_by_name(name: str) -> Category:
    """The catalogue entry called `name`; PerseError listing the known names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise PerseError(f"unknown attribute category '{name}'; choose one of {', '.join(_BY_NAME)}") from None


def reference_look(categories: list[Category] | None = None) -> dict[str, str]:
    """``{category: reference variant}`` for every category."""
    return {c.name: c.reference for c in (CATEGORIES if categories is None else categories)}

