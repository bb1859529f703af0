"""`StudioState`: everything the studio shows, as plain values (no DearPyGui here).

Widgets and the headless flags (``--attr``, ``--expr``) change the state only through these methods, so
both paths mean the same thing. Every change bumps `version`; the viewport re-renders when it differs
from the version it last showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from perse.avatar.latent import Look, lerp_looks
from perse.avatar.model import Avatar, AvatarState
from perse.controls import parse_attr, parse_expr
from perse.errors import PerseError
from perse.head.model import HeadParams
from perse.render.camera import Camera
from perse.render.framing import DEFAULT_FOV, orbit_view

ATTR_RANGE = (-0.25, 1.25)  # slider range: a little extrapolation past reference and variant


@dataclass
class ViewState:
    yaw: float = 0.0
    pitch: float = 0.0
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)
    fov: float = DEFAULT_FOV
    background: tuple[float, float, float] = (0.16, 0.17, 0.19)
    render_scale: float = 1.0


@dataclass
class AttributeSetting:
    """One category's row: the variant to move toward, the slider weight, or a sampled code."""

    variant: str
    weight: float = 0.0
    sampled: torch.Tensor | None = None  # a code drawn by "random"; overrides variant/weight


@dataclass
class PoseState:
    """Expression and pose controls (radians for rotations)."""

    expression: torch.Tensor
    jaw: float = 0.0
    gaze: tuple[float, float] = (0.0, 0.0)       # (yaw, pitch) of both eyes
    neck: tuple[float, float, float] = (0.0, 0.0, 0.0)
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class Interpolation:
    look_a: Look | None = None
    look_b: Look | None = None
    alpha: float = 0.0
    active: bool = False  # True: the viewport shows lerp(A, B, alpha)


class StudioState:
    def __init__(self, avatar: Avatar, path: Path):
        self.avatar = avatar
        self.path = Path(path)
        self.view = ViewState()
        self.attributes = {c.name: AttributeSetting(self._default_target(c.name)) for c in avatar.categories}
        self.pose = PoseState(torch.zeros(avatar.head.num_expression))
        self.interp = Interpolation()
        self.named_looks: dict[str, Look] = {}
        self.driven: HeadParams | None = None  # live driving / take replay; overrides the pose controls
        self.version = 0
        with torch.no_grad():
            self.rest_vertices = avatar.head_vertices(avatar.reference_state().head)

    def _default_target(self, category: str) -> str:
        spec = self.avatar.latent.category(category)
        others = spec.non_reference
        return others[0] if others else spec.reference

    def touch(self) -> None:
        self.version += 1

    # -- attributes -----------------------------------------------------------------------------
    def set_attribute(self, category: str, variant: str | None = None, weight: float | None = None) -> None:
        spec = self.avatar.latent.category(category)
        row = self.attributes[category]
        if variant is not None:
            spec.index(variant)
            row.variant = variant
        if weight is not None:
            row.weight = float(min(max(weight, ATTR_RANGE[0]), ATTR_RANGE[1]))
        row.sampled = None
        self.interp.active = False
        self.touch()

    def apply_attr_spec(self, spec: str) -> None:
        """``CATEGORY=VARIANT[:WEIGHT]`` (the --attr flag) through the same path as the widgets."""
        category, variant, weight = parse_attr(spec)
        self.set_attribute(category, variant, weight)

    def reset_attribute(self, category: str) -> None:
        self.set_attribute(category, weight=0.0)

    def random_attribute(self, category: str, generator: torch.Generator | None = None) -> None:
        self.attributes[category].sampled = self.avatar.latent.sample_code(category, generator, temperature=0.7)
        self.interp.active = False
        self.touch()

    def reset_all_attributes(self) -> None:
        for name in self.attributes:
            self.attributes[name].weight = 0.0
            self.attributes[name].sampled = None
        self.interp.active = False
        self.touch()

    def randomize_all_attributes(self, generator: torch.Generator | None = None) -> None:
        for name in self.attributes:
            self.attributes[name].sampled = self.avatar.latent.sample_code(name, generator, temperature=0.7)
        self.interp.active = False
        self.touch()

    def slider_look(self) -> Look:
        """The look the attribute rows describe."""
        latent = self.avatar.latent
        look = latent.reference_look()
        for name, row in self.attributes.items():
            if row.sampled is not None:
                look = look.with_code(name, row.sampled)
            elif row.weight != 0.0:
                look = latent.blend(look, name, row.variant, row.weight)
        return look

    def look(self) -> Look:
        """What the viewport shows: the interpolation when active, else the attribute rows."""
        i = self.interp
        if i.active and i.look_a is not None and i.look_b is not None:
            return lerp_looks(i.look_a, i.look_b, i.alpha)
        return self.slider_look()

    # -- interpolation --------------------------------------------------------------------------
    def store_look(self, slot: str) -> None:
        """slot 'A' or 'B' stores the current look for interpolation; any other name is a named look."""
        look = self.look()
        if slot == "A":
            self.interp.look_a = look
        elif slot == "B":
            self.interp.look_b = look
        else:
            if not slot.strip():
                raise PerseError("a look needs a name")
            self.named_looks[slot.strip()] = look

    def set_alpha(self, alpha: float) -> None:
        if self.interp.look_a is None or self.interp.look_b is None:
            raise PerseError("store a look as A and one as B first")
        self.interp.alpha = float(alpha)
        self.interp.active = True
        self.touch()

    def recall_look(self, name: str) -> None:
        """Show a named look (its codes become sampled codes of every row)."""
        look = self.named_looks[name]
        for category, code in look.codes.items():
            if category in self.attributes:
                self.attributes[category].sampled = code.clone()
        self.interp.active = False
        self.touch()

    # -- expression and pose --------------------------------------------------------------------
    def set_expression(self, name: str, value: float) -> None:
        names = self.avatar.head.expression_names
        if name not in names:
            raise PerseError(f"unknown expression '{name}'; known: {', '.join(names)}")
        self.pose.expression[names.index(name)] = float(value)
        self.touch()

    def apply_expr_spec(self, spec: str) -> None:
        """``NAME=VALUE`` (the --expr flag) through the same path as the widgets."""
        self.set_expression(*parse_expr(spec))

    def set_pose(self, **values) -> None:
        """jaw=float, gaze=(yaw, pitch), neck=(x, y, z), head=(x, y, z)."""
        for key, value in values.items():
            if not hasattr(self.pose, key) or key == "expression":
                raise ValueError(f"unknown pose control {key}")
            setattr(self.pose, key, value)
        self.touch()

    def set_expression_vector(self, expression: torch.Tensor, jaw: float | None = None) -> None:
        self.pose.expression = expression.clone().float()
        if jaw is not None:
            self.pose.jaw = float(jaw)
        self.touch()

    def reset_expression(self) -> None:
        self.pose = PoseState(torch.zeros(self.avatar.head.num_expression))
        self.touch()

    def random_expression(self, generator: torch.Generator | None = None) -> None:
        """A few random named expressions (sparse, like real faces) and a little jaw."""
        E = self.avatar.head.num_expression
        expr = torch.zeros(E)
        idx = torch.randperm(E, generator=generator)[:3]
        expr[idx] = torch.rand(3, generator=generator) * 0.8
        self.set_expression_vector(expr, float(torch.rand(1, generator=generator)) * 0.2)

    def set_driven(self, params: HeadParams | None) -> None:
        """Head parameters from webcam driving or a replayed take (shape None: the avatar's identity).
        While set they replace the expression and pose controls; None hands control back to them."""
        self.driven = params
        self.touch()

    def head_params(self) -> HeadParams:
        if self.driven is not None:
            return self.driven
        p = self.pose
        gaze = torch.tensor([[p.gaze[1], p.gaze[0], 0.0]])  # pitch about x, yaw about y
        return HeadParams(
            expression=p.expression[None].clone(), jaw_rot=torch.tensor([[p.jaw, 0.0, 0.0]]),
            eye_left_rot=gaze, eye_right_rot=gaze.clone(), neck_rot=torch.tensor([list(p.neck)]),
            global_rot=torch.tensor([list(p.head)]))

    def avatar_state(self) -> AvatarState:
        return AvatarState(self.head_params(), self.look())

    # -- view -----------------------------------------------------------------------------------
    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        v = self.view
        v.yaw = (v.yaw + d_yaw + 180.0) % 360.0 - 180.0
        v.pitch = min(max(v.pitch + d_pitch, -80.0), 80.0)
        self.touch()

    def pan_by(self, dx: float, dy: float) -> None:
        """Pan in metres (screen right, screen up)."""
        v = self.view
        yaw = math.radians(v.yaw)
        # Screen-right in world coordinates for an orbit camera at this yaw.
        v.pan = (v.pan[0] + dx * math.cos(yaw), v.pan[1] + dy)
        self.touch()

    def zoom_by(self, factor: float) -> None:
        self.view.zoom = min(max(self.view.zoom * factor, 0.2), 8.0)
        self.touch()

    def reset_view(self) -> None:
        self.view = ViewState(background=self.view.background, render_scale=self.view.render_scale)
        self.touch()

    def set_view(self, **values) -> None:
        for key, value in values.items():
            if not hasattr(self.view, key):
                raise ValueError(f"unknown view setting {key}")
            setattr(self.view, key, value)
        self.touch()

    def camera(self, width: int, height: int | None = None) -> Camera:
        """The orbit camera; the vertical field of view spans `height` (the head fills the height)."""
        v = self.view
        return orbit_view(self.rest_vertices, v.yaw, v.pitch, width, fov_deg=v.fov, zoom=v.zoom, pan=v.pan,
                          height=height)
