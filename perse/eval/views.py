"""The views every outside-in measure looks at, rendered through the one render path (`perse.render.render`).

Front views use the same framing as ``perse render`` (an orbit around the reference-posed head); the
reference view is the portrait's fitted camera and parameters stored in ``avatar.meta["reference_view"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from perse.avatar.latent import Look
from perse.avatar.model import Avatar, AvatarState
from perse.errors import PerseError
from perse.render import Camera, render
from perse.render.framing import framed_on_head, head_bounds, orbit_view


@dataclass(frozen=True)
class View:
    """One render. rgb: (H, W, 3) float32 in [0, 1]; alpha: (H, W) float32 in [0, 1]."""

    rgb: np.ndarray
    alpha: np.ndarray


def front_state(avatar: Avatar, look: Look | None = None, expression: dict[str, float] | None = None,
                jaw: float = 0.0) -> AvatarState:
    """Neutral pose with named expression coefficients (``{"jawOpen": 1.0}``), a jaw rotation (radians)
    and a look (None = reference): what ``perse render --expr --jaw --attr`` renders."""
    from perse.motion import head_params

    try:
        expr = avatar.head.expression_vector(expression or {})
    except ValueError as exc:
        raise PerseError(str(exc)) from None
    return AvatarState(head_params(expr, jaw), look)


@torch.no_grad()
def front_camera(avatar: Avatar, size: int, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> Camera:
    """The ``perse render --yaw --pitch`` camera: (size x size), orbiting the head's centre; positive yaw
    turns toward the subject's left."""
    verts = avatar.head_vertices(avatar.reference_state().head)
    return orbit_view(verts, yaw_deg, pitch_deg, size)


def has_reference_view(avatar: Avatar) -> bool:
    """Whether the avatar was made from a portrait (it stores the portrait's camera and parameters)."""
    ref = avatar.meta.get("reference_view") or {}
    return "camera" in ref and "params" in ref


def reference_camera(avatar: Avatar, size: int | None = None) -> Camera:
    """The portrait's fitted camera, resized to (size x size) (None: as stored). Raises PerseError
    for avatars without a reference view."""
    if not has_reference_view(avatar):
        raise PerseError("this avatar has no reference view (it was not created from a portrait)")
    cam = Camera.from_dict(avatar.meta["reference_view"]["camera"])
    return cam if size is None else cam.resized(size, size)


def reference_head_camera(avatar: Avatar, size: int) -> Camera:
    """The reference view framed on the head (`framed_on_head`), (size x size)."""
    state = reference_state(avatar)
    with torch.no_grad():
        centre, radius = head_bounds(avatar.head_vertices(state.head))
    return framed_on_head(reference_camera(avatar), centre, radius, size)


def reference_state(avatar: Avatar, look: Look | None = None) -> AvatarState:
    """The portrait's fitted head parameters with a look (None = reference look)."""
    return AvatarState(avatar.reference_state().head, look)


@torch.no_grad()
def head_centre(avatar: Avatar, state: AvatarState) -> torch.Tensor:
    """(3,) world-space centre of the posed head (the neck excluded, as the front framing does)."""
    return head_bounds(avatar.head_vertices(state.head))[0]


@torch.no_grad()
def render_view(avatar: Avatar, state: AvatarState, camera: Camera, backend: str = "cpu",
                background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> View:
    """Render one state through `perse.render.render`; returns numpy rgb (H, W, 3) and alpha (H, W)."""
    out = render(avatar.gaussians(state), camera, backend=backend, background=torch.tensor(background))
    rgb = out.rgb.clamp(0, 1).cpu().numpy().astype(np.float32)
    alpha = out.alpha.reshape(rgb.shape[:2]).clamp(0, 1).cpu().numpy().astype(np.float32)
    return View(rgb, alpha)


def variant_looks(avatar: Avatar) -> list[tuple[str, str, Look]]:
    """(category, variant, look) for every non-reference variant at weight 1 from the reference look,
    in the avatar's category order."""
    ref = avatar.latent.reference_look()
    out = []
    for cat in avatar.categories:
        for variant in cat.variants:
            if variant != cat.reference:
                out.append((cat.name, variant, avatar.latent.blend(ref, cat.name, variant, 1.0)))
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> uint8, rounded."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
