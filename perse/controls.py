"""Turning user controls (``--attr hair=blonde:0.7``, ``--expr jawOpen=0.5``) into avatar states.

The CLI and the studio's headless flags both go through these functions, so they mean the same thing.
"""

from __future__ import annotations

import torch

from perse.avatar.latent import Look
from perse.avatar.model import Avatar
from perse.errors import PerseError


def parse_attr(spec: str) -> tuple[str, str, float]:
    """``CATEGORY=VARIANT[:WEIGHT]`` -> (category, variant, weight); weight defaults to 1."""
    if "=" not in spec:
        raise PerseError(f"attribute '{spec}' must look like CATEGORY=VARIANT[:WEIGHT], e.g. hair=blonde:0.7",
                         setting="attr")
    category, rest = spec.split("=", 1)
    variant, _, weight = rest.partition(":")
    try:
        w = float(weight) if weight else 1.0
    except ValueError:
        raise PerseError(f"attribute '{spec}': weight '{weight}' is not a number", setting="attr") from None
    if not category or not variant:
        raise PerseError(f"attribute '{spec}' must look like CATEGORY=VARIANT[:WEIGHT]", setting="attr")
    return category.strip(), variant.strip(), w


def parse_expr(spec: str) -> tuple[str, float]:
    """``NAME=VALUE`` -> (name, value)."""
    name, sep, value = spec.partition("=")
    if not sep or not name:
        raise PerseError(f"expression '{spec}' must look like NAME=VALUE, e.g. jawOpen=0.6", setting="expr")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise PerseError(f"expression '{spec}': '{value}' is not a number", setting="expr") from None


def look_from_attrs(avatar: Avatar, specs: list[str], base: Look | None = None) -> Look:
    """Apply ``--attr`` specs on top of `base` (the reference look by default)."""
    look = base if base is not None else avatar.latent.reference_look()
    for spec in specs:
        category, variant, weight = parse_attr(spec)
        look = avatar.latent.blend(look, category, variant, weight)
    return look


def expression_from_specs(avatar: Avatar, specs: list[str]) -> torch.Tensor:
    """(E,) expression coefficients from ``--expr`` specs."""
    values = dict(parse_expr(s) for s in specs)
    try:
        return avatar.head.expression_vector(values)
    except ValueError as exc:
        raise PerseError(str(exc)) from None
