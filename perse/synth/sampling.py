"""What a synthetic dataset shows: its settings, the look and split of every frame, and the random
expressions, poses and cameras of the sampled frames.

Everything here is a pure function of a numpy Generator; the generator (`perse.synth.generator`) seeds
one stream per purpose, so that drawing more from one keeps the others' values:

    (seed, 0) training frames' params and cameras    (seed, 1) test frames' params and cameras
    (seed, 2) the frame plan (looks and splits)      (seed, 3) the wide-view coin of training frames
    (seed, 5) mouth close-ups: their coin, jaw opening and camera
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from perse.errors import PerseError
from perse.geometry.rotations import euler_to_axis_angle
from perse.head.model import HeadModel, HeadParams
from perse.render.camera import Camera, orbit_camera
from perse.synth.frame_renderer import NECK_FADE_M
from perse.synth.variants import CATEGORIES, Category, category_by_name, reference_look

WIDE_VIEW_CATEGORIES = ("hair", "hat")   # categories whose variants are seen from behind too
MOUTH_CATEGORIES = ("beard", "lips", "skin")   # categories a mouth close-up shows

# ARKit expression units used for random expressions (those the head has are used).
EXPRESSION_POOL = (
    "jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthPucker",
    "mouthFunnel", "mouthLeft", "mouthRight", "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft",
    "mouthPressRight", "mouthShrugUpper", "mouthShrugLower", "mouthRollUpper", "mouthRollLower",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "jawLeft", "jawRight", "jawForward",
)
# Units that usually act in left/right pairs: sampled together most of the time.
_PAIRS = {"mouthSmileLeft": "mouthSmileRight", "eyeBlinkLeft": "eyeBlinkRight", "browDownLeft": "browDownRight",
          "browOuterUpLeft": "browOuterUpRight", "eyeWideLeft": "eyeWideRight", "eyeSquintLeft": "eyeSquintRight",
          "mouthFrownLeft": "mouthFrownRight", "cheekSquintLeft": "cheekSquintRight",
          "noseSneerLeft": "noseSneerRight", "mouthStretchLeft": "mouthStretchRight"}


@dataclass
class SynthSettings:
    """What the generator makes, all recorded in dataset.json["generator"]: counts and shares of frames,
    image and texture sizes, the seed, the categories (catalogue order by default), and the ranges of
    the random poses and cameras. The person's data (textures, hair layer, portrait view) are inputs of
    `generate_dataset`, not settings."""

    num_frames_per_variant: int = 8
    image_size: int = 256
    texture_size: int = 512
    seed: int = 0
    test_fraction: float = 0.1
    double_fraction: float = 0.1
    categories: list[str] = field(default_factory=lambda: [c.name for c in CATEGORIES])
    head_yaw_deg: float = 35.0
    head_pitch_deg: float = 15.0
    head_roll_deg: float = 8.0
    neck_deg: float = 6.0
    camera_yaw_deg: float = 20.0
    camera_yaw_test_deg: float = 30.0
    # Share of the training frames that show only whole-head categories (`WIDE_VIEW_CATEGORIES`, or the
    # reference look) seen from anywhere around the head, back included: without them the back of the
    # head is never in a training image and the avatar shows noise there. Face variants stay in front.
    wide_view_fraction: float = 0.5
    neck_fade_m: tuple[float, float] | None = NECK_FADE_M   # None: a hard-edged neck
    camera_pitch_deg: float = 10.0
    # Share of the training frames whose look changes only MOUTH_CATEGORIES that are framed on the open
    # mouth instead (`mouth_camera`, jaw opened up to MOUTH_CLOSEUP_JAW; about 10 % of all training
    # frames): in whole-head frames the teeth are a few pixels tall, too few for the avatar's teeth,
    # tongue and cavity to learn anything but grey streaks. Frames of other variants (brows, glasses,
    # earrings, hats, hair) keep their whole-head views.
    mouth_closeup_fraction: float = 0.25
    fov_deg: tuple[float, float] = (14.0, 22.0)
    fill: float = 0.7
    max_expression_units: int = 4
    region_dilation_px: int = -1   # -1: max(2, image_size // 64)

    def validate(self) -> None:
        if self.num_frames_per_variant < 1:
            raise PerseError(f"num_frames_per_variant must be >= 1, got {self.num_frames_per_variant}")
        if not 16 <= self.image_size <= 4096:
            raise PerseError(f"image size {self.image_size} is out of range; use 64 to 1024 (256 is typical)")
        if not 0.0 <= self.test_fraction < 0.9:
            raise PerseError(f"test fraction {self.test_fraction} must be in [0, 0.9)")
        if not 0.0 <= self.wide_view_fraction <= 1.0:
            raise PerseError(f"wide view fraction {self.wide_view_fraction} must be in [0, 1]")
        if not 0.0 <= self.mouth_closeup_fraction <= 0.5:
            raise PerseError(f"mouth close-up fraction {self.mouth_closeup_fraction} must be in [0, 0.5]")
        if not 0.0 <= self.double_fraction <= 1.0:
            raise PerseError(f"double fraction {self.double_fraction} must be in [0, 1]")
        for name in self.categories:
            category_by_name(name)
        if len(self.categories) > 16:
            raise PerseError("at most 16 categories fit the uint16 region masks")
        if len(set(self.categories)) != len(self.categories):
            raise PerseError(f"categories listed twice: {self.categories}")

    def region_dilation(self) -> int:
        """Pixels the region masks are dilated by (`region_dilation_px`, or its default for the size)."""
        return self.region_dilation_px if self.region_dilation_px >= 0 else max(2, self.image_size // 64)


@dataclass
class FramePlan:
    look: dict[str, str]
    split: str


def plan_frames(categories: list[Category], settings: SynthSettings, rng: np.random.Generator) -> list[FramePlan]:
    """The looks and splits of all frames, in a shuffled but seed-determined order."""
    n = settings.num_frames_per_variant
    ref = reference_look(categories)
    singles = [(c.name, v) for c in categories for v in c.non_reference]
    train: list[dict[str, str]] = [dict(ref) for _ in range(n)]
    for cat, var in singles:
        train += [{**ref, cat: var} for _ in range(n)]
    n_double = int(round(settings.double_fraction * len(train))) if len(categories) >= 2 else 0
    switchable = [c for c in categories if c.non_reference]
    for _ in range(n_double):
        if len(switchable) < 2:
            break
        ca, cb = rng.choice(len(switchable), size=2, replace=False)
        look = dict(ref)
        for ci in (ca, cb):
            cat = switchable[int(ci)]
            look[cat.name] = cat.non_reference[int(rng.integers(len(cat.non_reference)))]
        train.append(look)
    frac = settings.test_fraction
    n_test = int(round(frac / (1.0 - frac) * len(train))) if frac > 0 else 0
    cycle = [dict(ref)] + [{**ref, cat: var} for cat, var in singles]
    test = [dict(cycle[i % len(cycle)]) for i in range(n_test)]
    plans = [FramePlan(lk, "train") for lk in train] + [FramePlan(lk, "test") for lk in test]
    order = rng.permutation(len(plans))
    return [plans[i] for i in order]


def sample_expression(names: list[str], rng: np.random.Generator, max_units: int) -> np.ndarray:
    """(E,) sparse expression coefficients: a few ARKit units in [0, 1] (Gaussian PCA coefficients for
    heads without ARKit names, e.g. FLAME)."""
    E = len(names)
    out = np.zeros(E, dtype=np.float32)
    pool = [n for n in EXPRESSION_POOL if n in names]
    if not pool:  # PCA expression space: small Gaussian coefficients on the leading directions
        k = min(E, 10)
        out[:k] = rng.normal(0.0, 0.7, size=k) * (rng.random() < 0.85)
        return out
    k = int(rng.integers(0, max_units + 1))
    for name in rng.choice(pool, size=min(k, len(pool)), replace=False):
        value = float(rng.uniform(0.15, 1.0))
        out[names.index(name)] = value
        partner = _PAIRS.get(str(name))
        if partner in names and rng.random() < 0.75:
            out[names.index(partner)] = float(np.clip(value + rng.normal(0, 0.1), 0, 1))
    return out


def sample_params(head: HeadModel, rng: np.random.Generator, s: SynthSettings) -> HeadParams:
    """Random expression, jaw, gaze, neck and head pose (batch 1, every field filled)."""
    deg = math.radians
    expr = sample_expression(head.expression_names, rng, s.max_expression_units)
    jaw = np.zeros(3)
    if rng.random() < 0.4:
        jaw[0] = rng.uniform(0.0, 0.22)   # opening: rotation about +x
        if "jawOpen" in head.expression_names:  # the built-in head's jawOpen is the same opening: not both
            expr[head.expression_names.index("jawOpen")] = 0.0
    gaze = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.3, 0.3), 0.0])  # pitch, yaw
    head_rot = euler_to_axis_angle(deg(rng.uniform(-s.head_yaw_deg, s.head_yaw_deg)),
                                   deg(rng.uniform(-s.head_pitch_deg, s.head_pitch_deg)),
                                   deg(rng.uniform(-s.head_roll_deg, s.head_roll_deg)))
    neck = rng.uniform(-deg(s.neck_deg), deg(s.neck_deg), size=3) * np.array([1.0, 1.0, 0.5])
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(1, -1)  # noqa: E731
    return HeadParams(identity=torch.zeros(1, head.num_shape), expression=t(expr), global_rot=t(head_rot),
                      neck_rot=t(neck), jaw_rot=t(jaw), eye_left_rot=t(gaze), eye_right_rot=t(gaze),
                      translation=torch.zeros(1, 3))


def frame_camera(vertices: np.ndarray, rng: np.random.Generator, s: SynthSettings, test: bool,
                 wide: bool = False) -> Camera:
    """Orbit camera around the posed head so that it fills about `s.fill` of the frame height; `wide`
    views come from any yaw around the head (sides and back)."""
    y = vertices[:, 1]
    lo, hi = float(y.min()), float(y.max())
    upper = vertices[y > lo + 0.2 * (hi - lo)]  # ignore the bottom of the neck for centring
    centre = 0.5 * (upper.max(0) + upper.min(0))
    radius = float(np.linalg.norm(upper - centre, axis=1).max())
    fov = float(rng.uniform(*s.fov_deg))
    yaw_max = s.camera_yaw_test_deg if test else s.camera_yaw_deg
    yaw = float(rng.uniform(-yaw_max, yaw_max))
    if wide:
        yaw = float(rng.uniform(-180.0, 180.0))
    pitch = float(rng.uniform(-s.camera_pitch_deg, s.camera_pitch_deg))
    distance = radius / math.tan(math.radians(fov) / 2) / s.fill * float(rng.uniform(0.95, 1.05))
    target = centre + rng.uniform(-0.03, 0.03, size=3) * radius
    return orbit_camera(yaw, pitch, distance, tuple(float(v) for v in target), fov, s.image_size, s.image_size)


MOUTH_CLOSEUP_JAW = (0.08, 0.30)   # rad, jaw opening of a close-up (jawOpen = 1 is 0.3 on the built-in head)
MOUTH_CLOSEUP_RADIUS_M = 0.045     # framed half-height at the mouth: lips, chin and the base of the nose


def open_jaw(params: HeadParams, head: HeadModel, rng: np.random.Generator) -> HeadParams:
    """params (batch 1) with the jaw opened by a rotation drawn from MOUTH_CLOSEUP_JAW (and the built-in
    head's jawOpen unit, the same opening, cleared). Modified in place and returned."""
    params.jaw_rot[0, 0] = float(rng.uniform(*MOUTH_CLOSEUP_JAW))
    if "jawOpen" in head.expression_names:
        params.expression[0, head.expression_names.index("jawOpen")] = 0.0
    return params


def mouth_camera(mouth_vertices: np.ndarray, rng: np.random.Generator, s: SynthSettings) -> Camera:
    """A camera framed on posed mouth vertices (M, 3) (the lips): MOUTH_CLOSEUP_RADIUS_M fills `s.fill`
    of the frame height, seen from the front band and a little from above (the lower teeth then show)."""
    centre = mouth_vertices.mean(axis=0)
    fov = float(rng.uniform(*s.fov_deg))
    yaw = float(rng.uniform(-s.camera_yaw_deg, s.camera_yaw_deg))
    pitch = float(rng.uniform(-0.5 * s.camera_pitch_deg, 2.0 * s.camera_pitch_deg))
    distance = MOUTH_CLOSEUP_RADIUS_M / math.tan(math.radians(fov) / 2) / s.fill * float(rng.uniform(0.9, 1.1))
    return orbit_camera(yaw, pitch, distance, tuple(float(v) for v in centre), fov, s.image_size, s.image_size)


class ViewSampler:
    """The random params and cameras of the sampled frames: a training stream (seed, 0), a test stream
    (seed, 1), the wide-view coin (seed, 3) and the mouth close-ups (seed, 5), each drawn in frame order.

    Per frame call `params(plan)`, pose the head, then `camera(plan, vertices)`: that order is part of
    the streams' values, and `params` decides whether the frame is a mouth close-up (when `mouth` vertex
    ids are given: `mouth_closeup_fraction` of the training frames whose look changes only
    MOUTH_CATEGORIES): its jaw is opened and its camera framed on the mouth."""

    def __init__(self, head: HeadModel, categories: list[Category], settings: SynthSettings,
                 mouth: np.ndarray | None = None):
        self.head, self.categories, self.settings = head, categories, settings
        self.mouth = mouth   # (M,) vertex ids of the lips, or None: no close-ups
        self._train = np.random.default_rng([settings.seed, 0])
        self._test = np.random.default_rng([settings.seed, 1])
        self._wide = np.random.default_rng([settings.seed, 3])   # its own stream: other draws keep their values
        self._closeup = np.random.default_rng([settings.seed, 5])
        self._closeup_now = False

    def _stream(self, plan: FramePlan) -> np.random.Generator:
        return self._test if plan.split == "test" else self._train

    def _changes_only(self, plan: FramePlan, names: tuple[str, ...]) -> bool:
        """Whether the frame's look keeps every category outside `names` at its reference variant."""
        return all(plan.look[c.name] == c.reference for c in self.categories if c.name not in names)

    def params(self, plan: FramePlan) -> HeadParams:
        """Random params of the frame (batch 1, template identity)."""
        params = sample_params(self.head, self._stream(plan), self.settings)
        self._closeup_now = (self.mouth is not None and plan.split == "train"
                             and self._closeup.random() < self.settings.mouth_closeup_fraction
                             and self._changes_only(plan, MOUTH_CATEGORIES))
        return open_jaw(params, self.head, self._closeup) if self._closeup_now else params

    def camera(self, plan: FramePlan, vertices: np.ndarray) -> tuple[Camera, str]:
        """The frame's camera around posed head vertices (V, 3), and its kind: "wide" (a training frame
        whose look changes only whole-head categories, seen from any angle), "mouth" (a close-up of the
        open mouth) or "head"."""
        s = self.settings
        wide = (plan.split == "train" and self._wide.random() < s.wide_view_fraction
                and self._changes_only(plan, WIDE_VIEW_CATEGORIES))
        camera = frame_camera(vertices, self._stream(plan), s, plan.split == "test", wide)
        if self._closeup_now:   # the head camera is still drawn: the other frames keep their values
            return mouth_camera(vertices[self.mouth], self._closeup, s), "mouth"
        return camera, "wide" if wide else "head"
