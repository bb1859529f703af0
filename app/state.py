"""`StudioState`: everything the studio shows, as plain values (no DearPyGui here).

Widgets, actions (app/actions.py) and the headless flags change the state only through these methods, so
every path means the same thing. Every change that moves the picture bumps `version`; the viewport
re-renders when it differs from the version it last showed.

Besides the avatar's look, expression and view it holds what the panels show: the playback (Play, Animate),
the export request and the running export, and the Webcam panel's sources with its drive session.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.drive_session import DriveSession
from app.export_job import ExportJob
from perse.avatar.latent import Look, lerp_looks
from perse.avatar.model import Avatar, AvatarState
from perse.controls import parse_attr, parse_expr
from perse.errors import PerseError
from perse.export.presets import expression_at, expression_keyframes
from perse.export.render_sequence import ExportSettings
from perse.head.model import HeadParams
from perse.motion import Take, head_params
from perse.render.camera import Camera
from perse.render.framing import DEFAULT_FOV, orbit_view

ATTR_RANGE = (-0.25, 1.25)  # slider range: a little extrapolation past reference and variant
EXPRESSION_LOOP_S = 8.0     # Animate: one pass through the expression keyframes
NO_TAKE_TO_EXPORT = "no take to export: record or load one in the Webcam panel, then Export take..."


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


@dataclass
class Playback:
    """What moves by itself every frame: the A <-> B morph (Interpolation "Play") and the built-in
    expression loop (Expression "Animate"). Times are `time.perf_counter()` seconds."""

    playing: bool = False
    loop: bool = True            # ping-pong between A and B; otherwise stop at B
    speed: float = 0.5           # alpha per second
    direction: float = 1.0       # +1 toward B, -1 toward A
    last_step: float = 0.0       # when alpha last moved
    animating: bool = False
    animate_start: float = 0.0   # phase 0 of the expression loop


@dataclass
class ExportRequest:
    """The Export panel's form, and the take the Webcam panel handed over (preset "take")."""

    preset: str = "turntable"
    category: str = ""           # the morph preset's category (without a look B)
    size: int = 512
    fps: int = 30
    seconds: float = 3.0
    out: str = field(default_factory=lambda: str(Path.cwd() / "perse_export.mp4"))
    take: Take | None = None


@dataclass
class DriveUI:
    """The Webcam panel's choices: the sources it lists, the selected one, the last failed start."""

    sources: dict[str, tuple[str, object]] = field(default_factory=dict)  # label -> ("camera", i) | ("video", path)
    selected: str = ""
    error: str | None = None     # a failed start, shown until the next start

    def set_cameras(self, cameras: list[int], none_label: str) -> None:
        """List these camera indices (`none_label` for camera 0 when there are none); video files chosen
        before stay listed, and the selection stays unless its source is gone."""
        videos = {k: v for k, v in self.sources.items() if v[0] == "video"}
        self.sources = {f"camera {i}": ("camera", i) for i in cameras} or {none_label: ("camera", 0)}
        self.sources.update(videos)
        if self.selected not in self.sources:
            self.selected = next(iter(self.sources))

    def add_video(self, path: str | Path) -> str:
        """List a video file and select it; returns its label."""
        path = Path(path).expanduser()
        label = f"video: {path.name}"
        self.sources[label] = ("video", str(path))
        self.selected = label
        return label

    def select(self, label: str) -> None:
        if label not in self.sources:
            raise PerseError(f"unknown source '{label}'; choose one of: {', '.join(self.sources)}")
        self.selected = label


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
        self.playback = Playback()
        self.export = ExportRequest(category=avatar.categories[0].name)
        self.export_job: ExportJob | None = None
        self.drive_ui = DriveUI()
        self.drive = DriveSession(avatar.head)
        self._keyframes = None  # the expression loop's, made on first use
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

    def ab_looks(self) -> tuple[Look, Look]:
        """Looks A and B; PerseError until both are stored."""
        if self.interp.look_a is None or self.interp.look_b is None:
            raise PerseError("store a look as A and one as B first")
        return self.interp.look_a, self.interp.look_b

    def set_alpha(self, alpha: float) -> None:
        self.ab_looks()
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

    def named_to_slot(self, name: str, slot: str) -> None:
        """A named look becomes look A or B (what the viewport shows is unchanged)."""
        look = self.named_looks[name]
        if slot == "A":
            self.interp.look_a = look
        else:
            self.interp.look_b = look

    # -- playback -------------------------------------------------------------------------------
    def set_playing(self, on: bool, now: float | None = None) -> None:
        """Start or stop the A <-> B morph (needs both looks)."""
        if on:
            self.ab_looks()
        self.playback.playing = bool(on)
        self.playback.last_step = time.perf_counter() if now is None else now

    def set_animating(self, on: bool, now: float | None = None) -> None:
        """Start (from the loop's first keyframe) or stop the expression loop."""
        self.playback.animating = bool(on)
        self.playback.animate_start = time.perf_counter() if now is None else now

    def advance(self, now: float | None = None) -> None:
        """One frame of playback: step alpha (ping-pong when looping, stop at the end otherwise) and the
        expression loop. Called once per main-loop tick."""
        now = time.perf_counter() if now is None else now
        p = self.playback
        if p.animating:
            if self._keyframes is None:
                self._keyframes = expression_keyframes(self.avatar)
            expression, jaw = expression_at(self._keyframes, ((now - p.animate_start) / EXPRESSION_LOOP_S) % 1.0)
            self.set_expression_vector(expression, jaw)
        if p.playing:
            dt, p.last_step = now - p.last_step, now
            alpha = self.interp.alpha + p.direction * dt * p.speed
            if alpha >= 1.0 or alpha <= 0.0:
                if p.loop:
                    p.direction *= -1.0
                else:
                    self.set_playing(False, now)
                alpha = min(max(alpha, 0.0), 1.0)
            self.set_alpha(alpha)

    # -- export ---------------------------------------------------------------------------------
    def set_export(self, **values) -> None:
        """preset=, category=, size=, fps=, seconds=, out=: the export form's fields."""
        for key, value in values.items():
            if key == "take" or not hasattr(self.export, key):
                raise ValueError(f"unknown export setting {key}")
            setattr(self.export, key, value)

    def hand_take_to_export(self, take: Take, name: str = "take") -> None:
        """Select the take preset for `take` (it must fit this head) and name the output after it."""
        take.check_head(self.avatar.head)
        e = self.export
        e.take, e.preset, e.fps = take, "take", 30
        e.out = str(Path(e.out).expanduser().with_name(f"{name}.mp4"))

    @property
    def exporting(self) -> bool:
        return self.export_job is not None and not self.export_job.done

    def export_settings(self, backend: str, morph: tuple[Look, Look] | None = None) -> ExportSettings:
        """The export the form asks for; `morph` (looks A, B) makes it one morph A -> B -> A."""
        e = self.export
        look_a, look_b = morph or (self.look(), None)
        if e.preset == "take" and e.take is None:
            raise PerseError(NO_TAKE_TO_EXPORT)
        frames = e.take.frame_count(e.fps) if e.preset == "take" else max(1, round(float(e.seconds) * e.fps))
        return ExportSettings(
            preset=e.preset, out=Path(e.out).expanduser(), frames=frames, fps=int(e.fps), size=int(e.size),
            backend=backend, background=self.view.background,
            category=e.category if e.preset == "morph" and look_b is None else None,
            look=look_a, look_b=look_b, take=e.take if e.preset == "take" else None)

    # -- driving --------------------------------------------------------------------------------
    def start_drive(self) -> None:
        """Drive from the Webcam panel's selected source (PerseError if it cannot be opened)."""
        kind, spec = self.drive_ui.sources.get(self.drive_ui.selected, (None, None))
        if kind is None:
            raise PerseError("choose a camera or a video file first")
        self.start_drive_source(lambda: self.drive.start_camera(spec) if kind == "camera"
                                else self.drive.start_video(spec))

    def start_drive_source(self, start) -> None:
        """Run `start()` (one of the drive session's starts); a failure is kept in `drive_ui.error`, shown
        in the panel until the next start, and raised."""
        try:
            start()
        except PerseError as exc:
            self.drive_ui.error = str(exc)
            raise
        self.drive_ui.error = None

    def close(self) -> None:
        """Closing the window or switching avatars: cancel a running export and wait (no partial file is
        left), stop the drive threads."""
        if self.exporting:
            self.export_job.cancel()
            self.export_job.wait(timeout=30)
        self.drive.close(self)

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
        """Head parameters from webcam driving or a replayed take (identity None: the avatar's own).
        While set they replace the expression and pose controls; None hands control back to them."""
        self.driven = params
        self.touch()

    def head_params(self) -> HeadParams:
        if self.driven is not None:
            return self.driven
        p = self.pose
        return head_params(p.expression, p.jaw, global_rot=p.head, gaze=p.gaze, neck=p.neck)

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
