"""Retargeting tracked landmarks to head parameters for an avatar.

Per frame: the `HeadFitter` solves expression, jaw, eye and head pose with the *user's* identity shape
and the camera's focal length held fixed (both estimated once, on the first face or at calibration),
warm-started from the previous frame. The raw result is then turned into the avatar's parameters:

    avatar = clamp(gain * (raw - neutral))       for expression and jaw (and the eyes, without gain)
    head   = R(raw) R(neutral)^T, t - t_neutral  the head's turn and shift from its resting pose

`neutral` is the user's resting face from calibration (zeros before it, except the translation, which
is taken from the first frame so the avatar starts centred). The avatar keeps its own identity: the
user's shape is only used to explain the user's landmarks.

Parameter vector layout (`perse.motion.ParamLayout`, D = E + 15): expression (E) | jaw_rot (3) | eye_left_rot (3) |
eye_right_rot (3) | global_rot (3) | translation (3, metres, model frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from perse.geometry.rotations import relative_rotation
from perse.head.model import HeadModel
from perse.landmarks import EYE_INNER, EYE_OUTER, IRIS_CENTER
from perse.motion import ParamLayout
from perse.track.fit import R0, FitConfig, FitResult, HeadFitter

MAX_TRANSLATION = 0.2  # metres of head shift from rest the avatar follows
LOST_TRACK_IOD = 0.08  # a warm fit worse than this (fraction of the IOD) restarts from scratch
EYEBALL_RATIO = 2.3  # eye width (corner to corner) / eyeball radius, for gaze from iris offsets


@dataclass
class RetargetSettings:
    """gain: expression and jaw amplification; head_pose: follow the head's turn and shift; fov_deg:
    the camera's field of view along the image's longer side (sets the fixed focal length)."""

    gain: float = 1.0
    head_pose: bool = True
    fov_deg: float = 60.0


def gaze_from_irises(points: np.ndarray) -> np.ndarray:
    """Eye rotation (3,) axis-angle shared by both eyes, from the iris centres' offsets in the eyes.

    points: (478, 2) MediaPipe landmarks (pixels). The offset of each iris centre from its eye's corner
    midpoint, in eye widths, is read as sin(angle) * eyeball radius; both eyes are averaged (they move
    together). Used when the head model's landmarks cannot see the eyes (FLAME embeddings without iris
    points); the built-in head fits its eye joints to the iris landmarks directly.
    """
    offsets = []
    for side in ("R", "L"):
        outer, inner, iris = EYE_OUTER[side], EYE_INNER[side], IRIS_CENTER[side]
        a, b, c = points[outer], points[inner], points[iris]
        width = float(np.linalg.norm(b - a))
        if width < 1e-6:
            continue
        offsets.append((c - (a + b) / 2.0) / width)
    if not offsets:
        return np.zeros(3)
    du, dv = np.clip(np.mean(offsets, axis=0) * EYEBALL_RATIO, -0.9, 0.9)
    # Image right (+u) is the model's +x: a yaw about +y. Image up (-v) is +y: a negative turn about +x.
    return np.array([math.asin(dv), math.asin(du), 0.0])


class Retargeter:
    """Landmarks of one user -> avatar parameters. Holds the fit state between frames; not thread-safe."""

    def __init__(self, head: HeadModel, settings: RetargetSettings | None = None,
                 config: FitConfig | None = None):
        self.fitter = HeadFitter(head, config)
        self.config = self.fitter.config
        self.settings = settings or RetargetSettings()
        self.layout = ParamLayout(head.num_expression)
        self.is_arkit = self.fitter.is_arkit
        self.reset()

    # -- state --------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the user: the next frame refits shape and pose from scratch."""
        self.user_shape: torch.Tensor | None = None
        self.neutral = self.layout.zeros()
        self.calibrated = False
        self._image_size: tuple[int, int] | None = None
        self._focal: float | None = None
        self._previous: FitResult | None = None

    def lose_track(self) -> None:
        """The face left the frame: the next one is fitted without warm start (the shape is kept)."""
        self._previous = None

    @property
    def has_user(self) -> bool:
        return self.user_shape is not None

    # -- per frame ----------------------------------------------------------------------------------
    def focal_for(self, image_size: tuple[int, int]) -> float:
        return 0.5 * max(image_size) / math.tan(math.radians(self.settings.fov_deg) / 2.0)

    def track(self, points: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, FitResult]:
        """Fit one frame's (478, 2) landmarks; returns the raw parameter vector (D,) and the fit."""
        image_size = (int(image_size[0]), int(image_size[1]))
        if image_size != self._image_size:  # a new camera or resolution: the focal length changed
            self._image_size, self._focal, self._previous = image_size, self.focal_for(image_size), None
        if self.user_shape is None:
            fit = self.fitter.fit(points, image_size, fixed_focal=self._focal)
            self.user_shape = fit.params.identity.clone()
            self.neutral[self.layout["translation"]] = self._raw(fit, points)[self.layout["translation"]]
        else:
            fit = self.fitter.fit(points, image_size, init=self._previous, fixed_shape=self.user_shape,
                                  fixed_focal=self._focal)
            if self._previous is not None and fit.mean_error_iod > LOST_TRACK_IOD:
                fit = self.fitter.fit(points, image_size, fixed_shape=self.user_shape, fixed_focal=self._focal)
        self._previous = fit
        return self._raw(fit, points), fit

    def _raw(self, fit: FitResult, points: np.ndarray) -> np.ndarray:
        """The fit as a (D,) vector; the translation in the model frame (camera = [R0 | t])."""
        raw = self.layout.from_head_params(fit.params)
        raw[self.layout["translation"]] = R0.T @ fit.camera.world_to_cam[:3, 3].double().numpy()
        if not self.fitter.has_eyes:
            gaze = gaze_from_irises(points)
            raw[self.layout["eye_left_rot"]] = gaze
            raw[self.layout["eye_right_rot"]] = gaze
        return raw

    def retarget(self, raw: np.ndarray) -> np.ndarray:
        """Raw fit vector (D,) -> the avatar's parameter vector (D,): neutral removed, gain, clamped."""
        L, s = self.layout, self.settings
        out = raw - self.neutral
        out[L["expression"]] *= s.gain
        out[L["jaw_rot"]] *= s.gain
        if s.head_pose:
            out[L["global_rot"]] = relative_rotation(raw[L["global_rot"]], self.neutral[L["global_rot"]])
        else:
            out[L["global_rot"]] = 0.0
            out[L["translation"]] = 0.0
        return self.clamp(out)

    def clamp(self, vector: np.ndarray) -> np.ndarray:
        """Clamp a parameter vector (D,) to the head model's plausible range."""
        L, c = self.layout, self.config
        out = np.array(vector, dtype=np.float64)
        lo, hi = (0.0, 1.0) if self.is_arkit else (-3.0, 3.0)
        out[L["expression"]] = np.clip(out[L["expression"]], lo, hi)
        jaw_lo, jaw_hi = np.array(c.jaw_bounds, dtype=np.float64).T
        out[L["jaw_rot"]] = np.clip(out[L["jaw_rot"]], jaw_lo, jaw_hi)
        for eye in ("eye_left_rot", "eye_right_rot"):
            out[L[eye]] = np.clip(out[L[eye]], -c.eye_bound, c.eye_bound)
        rb = np.array(c.rotation_bounds, dtype=np.float64)
        out[L["global_rot"]] = np.clip(out[L["global_rot"]], -rb, rb)
        out[L["translation"]] = np.clip(out[L["translation"]], -MAX_TRANSLATION, MAX_TRANSLATION)
        return out

    # -- calibration --------------------------------------------------------------------------------
    def calibrate(self, landmarks: list[np.ndarray], image_size: tuple[int, int]) -> np.ndarray:
        """Take the user's resting face from frames of it: refit the identity shape on the mean landmarks,
        then make the fitted rest pose and expression the neutral. Returns the neutral vector (D,)."""
        if not landmarks:
            raise ValueError("calibration needs at least one frame with a face")
        mean = np.mean(np.stack(landmarks), axis=0)
        image_size = (int(image_size[0]), int(image_size[1]))
        self._image_size, self._focal = image_size, self.focal_for(image_size)
        fit = self.fitter.fit(mean, image_size, fixed_focal=self._focal)
        self.user_shape = fit.params.identity.clone()
        self.neutral = self._raw(fit, mean)
        self.calibrated = True
        self._previous = fit
        return self.neutral.copy()
