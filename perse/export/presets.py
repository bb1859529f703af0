"""Animation presets shared by `perse export`, the studio's export panel and its animate toggle.

A preset is a function of time giving an `AvatarState` and view angles; sequences sample it per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from perse.avatar.latent import Look, lerp_looks
from perse.avatar.model import Avatar, AvatarState
from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.motion import Take, head_params

PRESETS = ("turntable", "expressions", "morph", "take")  # take: a recorded parameter sequence (perse.motion)

# Built-in expression loop for heads with ARKit-named directions: (name, value) keyframes. "jawOpen" in a
# keyframe is played on the jaw joint (as the tracker fits it), not on the jawOpen blend shape: on the
# built-in head that shape is itself a full opening, and using both would open the mouth twice.
ARKIT_LOOP: list[dict[str, float]] = [
    {},
    {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.4, "cheekSquintRight": 0.4},
    {"jawOpen": 0.7, "browInnerUp": 0.6, "eyeWideLeft": 0.5, "eyeWideRight": 0.5},
    {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    {"mouthPucker": 0.9, "browDownLeft": 0.6, "browDownRight": 0.6},
    {"mouthFrownLeft": 0.8, "mouthFrownRight": 0.8, "browInnerUp": 0.7},
    {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.8},
]
JAW_FOR_JAWOPEN = 0.3  # radians of jaw rotation per unit of jawOpen (the built-in head's full opening)


@dataclass
class Keyframe:
    expression: torch.Tensor  # (E,)
    jaw: float


def expression_keyframes(avatar: Avatar) -> list[Keyframe]:
    """Keyframes of the built-in expression loop for this avatar's head model.

    Heads with ARKit names get the named loop; others (FLAME's PCA expressions) get a loop over the
    first expression components with jaw motion."""
    head = avatar.head
    names = head.expression_names
    if "jawOpen" in names:
        frames = []
        for values in ARKIT_LOOP:
            known = {k: v for k, v in values.items() if k in names and k != "jawOpen"}
            frames.append(Keyframe(head.expression_vector(known), JAW_FOR_JAWOPEN * values.get("jawOpen", 0.0)))
        return frames
    E = head.num_expression
    frames = [Keyframe(torch.zeros(E), 0.0)]
    for i in range(min(4, E)):
        e = torch.zeros(E)
        e[i] = 2.0 * (-1) ** i
        frames.append(Keyframe(e, 0.25 if i % 2 == 0 else 0.0))
    return frames


def expression_at(keyframes: list[Keyframe], phase: float) -> tuple[torch.Tensor, float]:
    """Loop through keyframes; phase in [0, 1) covers the whole loop, eased between keyframes."""
    n = len(keyframes)
    x = (phase % 1.0) * n
    i = int(x) % n
    t = float(smoothstep(0.0, 1.0, x - int(x)))
    a, b = keyframes[i], keyframes[(i + 1) % n]
    return torch.lerp(a.expression, b.expression, t), a.jaw + (b.jaw - a.jaw) * t


def morph_looks(avatar: Avatar, category: str | None, look_a: Look | None = None,
                look_b: Look | None = None) -> list[Look]:
    """Looks to sweep through: reference -> each variant of `category` -> back, or A -> B -> A."""
    if look_a is not None and look_b is not None:
        return [look_a, look_b, look_a]
    if category is None:
        raise PerseError("the morph preset needs a category or two looks (A and B)", setting=("category", "look_b"))
    spec = avatar.latent.category(category)
    ref = avatar.latent.reference_look()
    looks = [ref]
    for v in spec.variants:
        if v != spec.reference:
            looks.append(avatar.latent.blend(ref, category, v, 1.0))
    looks.append(ref)
    return looks


def check_preset(avatar: Avatar, preset: str, frames: int, category: str | None = None,
                 look_b: Look | None = None, take: Take | None = None) -> None:
    """Raise PerseError for settings a preset cannot use (before any work or output starts).
    take: a recorded take, needed by (and only by) the take preset."""
    if preset not in PRESETS:
        raise PerseError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    if preset == "take":
        if take is None:
            raise PerseError("the take preset needs a recorded take", setting="take")
        take.check_head(avatar.head)
        return
    if frames < 1:
        raise PerseError(f"the number of frames must be at least 1 (got {frames})", setting="frames")
    if preset == "morph":
        if category is None and look_b is None:
            raise PerseError("the morph preset needs a category or a second look", setting=("category", "look_b"))
        if category is not None:
            avatar.latent.category(category)


def sequence(avatar: Avatar, preset: str, frames: int, base_look: Look | None = None,
             category: str | None = None, look_b: Look | None = None, take: Take | None = None,
             fps: float = 30.0) -> Iterator[tuple[AvatarState, float, float]]:
    """(state, yaw_deg, pitch_deg) for each frame of a preset. The take preset plays `take` resampled
    at `fps` (its length, not `frames`, sets the frame count)."""
    check_preset(avatar, preset, frames, category, look_b, take)
    look = base_look if base_look is not None else avatar.latent.reference_look()
    if preset == "take":
        for params in take.head_params(fps):
            yield AvatarState(params, look), 0.0, 0.0
        return
    keyframes = expression_keyframes(avatar)
    looks = morph_looks(avatar, category, look, look_b) if preset == "morph" else None
    for i in range(frames):
        phase = i / frames
        if preset == "turntable":
            yield AvatarState(head_params(), look), 360.0 * phase, 0.0
        elif preset == "expressions":
            expr, jaw = expression_at(keyframes, phase)
            yield AvatarState(head_params(expr, jaw), look), 12.0 * math.sin(2 * math.pi * phase), 0.0
        else:
            x = phase * (len(looks) - 1)
            j = min(int(x), len(looks) - 2)
            t = float(smoothstep(0.0, 1.0, x - j))
            yield AvatarState(head_params(), lerp_looks(looks[j], looks[j + 1], t)), 0.0, 0.0
