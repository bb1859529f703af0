"""Quality presets of `perse create`: dataset size, texture size, training length and stage costs."""

from __future__ import annotations

from dataclasses import dataclass

from perse.errors import PerseError


@dataclass(frozen=True)
class Quality:
    name: str
    image_size: int            # dataset frames
    frames_per_variant: int
    texture_size: int
    cpu_steps: int
    cuda_steps: int
    num_gaussians: int
    # rough stage costs in seconds on the 2-core CPU, one per stage (`perse.create.stages.STAGES`), for
    # the overall ETA before a stage has run
    expected_s: tuple[float, ...]


QUALITIES = {
    "draft": Quality("draft", 256, 8, 512, 2500, 6000, 12000, (3, 2, 8, 25, 420, 20, 2)),
    "standard": Quality("standard", 256, 24, 1024, 6000, 15000, 16000, (3, 2, 10, 60, 900, 30, 2)),
    "high": Quality("high", 512, 32, 1024, 12000, 30000, 40000, (3, 2, 12, 200, 3600, 60, 2)),
}


def resolve_quality(quality: str | Quality) -> Quality:
    """A preset by name, or `quality` itself when it already is one."""
    if isinstance(quality, Quality):
        return quality
    if quality in QUALITIES:
        return QUALITIES[quality]
    raise PerseError(f"unknown quality '{quality}'; choose one of: {', '.join(QUALITIES)}", setting="quality")
