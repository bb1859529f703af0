"""One frame in, the avatar's parameters out: detection, face selection, retargeting, filtering and what
to show when there is no face. Synchronous; `perse.drive.live` runs it on a thread for live input and
`perse drive --video` calls it frame by frame.

No face in the frame: the last pose is held for `hold_seconds`, then eased to neutral over
`ease_seconds` (a smoothstep), so a face that leaves briefly does not make the avatar twitch. The same
easing runs when the camera is lost (`no_signal`). When a face returns, the filter restarts from what
is shown, so the avatar glides back instead of jumping. Frames with a face that merely arrive far apart
(a slow, loaded machine) are filtered as usual: only an ease that was shown restarts the filter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from perse.drive.filters import OneEuroFilter
from perse.drive.retarget import Retargeter, RetargetSettings
from perse.head.model import HeadModel
from perse.motion import ParamLayout
from perse.track.fit import FitConfig
from perse.track.landmarks import FaceLandmarks, LandmarkDetector

# One-Euro speed coefficients per kind of parameter (units per second -> Hz of extra cutoff).
BETA_EXPRESSION = 4.0
BETA_ROTATION = 6.0
BETA_TRANSLATION = 40.0
EXPRESSION_PRIOR = 0.1


def drive_fit_config() -> FitConfig:
    """The per-frame fit's weights: a stronger expression prior than for portraits, so the jaw (not
    lip blend shapes, which can mimic it) explains mouth opening, and so noise does not spread over many
    small expression coefficients (less jitter)."""
    return FitConfig(expression_prior=EXPRESSION_PRIOR)


@dataclass
class DriveSettings:
    """User-facing driving settings.

    gain: expression/jaw amplification. head_pose: follow head turn and shift. mirror: flip frames
    left-right before tracking (the avatar moves like a mirror image). smoothing: 0 = raw tracker output,
    1 = heaviest filtering (One-Euro cutoff at rest from 3 Hz down to 0.1 Hz). hold_seconds /
    ease_seconds: behaviour without a face. fov_deg: camera field of view along the longer image side.
    """

    gain: float = 1.0
    head_pose: bool = True
    mirror: bool = False
    smoothing: float = 0.6
    hold_seconds: float = 0.5
    ease_seconds: float = 1.0
    fov_deg: float = 60.0

    def min_cutoff(self) -> float:
        s = float(np.clip(self.smoothing, 0.0, 1.0))
        return 3.0 * (0.1 / 3.0) ** s


@dataclass
class DriveSample:
    """What the driver produced for one frame (or one tick without a frame).

    vector: (D,) the avatar's parameters (see `ParamLayout`); status: "tracking", "calibrating i/n",
    "no face: holding", "no face: easing to neutral", "no face", or a camera message.
    capture_time / done_time: `time.perf_counter()` seconds when the frame was captured and when
    tracking finished. landmarks: (478, 2) pixels of the tracked face in `frame` (which is mirrored when
    the mirror setting is on), None without a face.
    """

    vector: np.ndarray
    status: str
    face_found: bool
    frame_index: int = -1
    capture_time: float = 0.0
    done_time: float = 0.0
    tracking_ms: float = 0.0
    fit_error_iod: float | None = None
    landmarks: np.ndarray | None = None
    frame: np.ndarray | None = field(default=None, repr=False)


def select_face(faces: list[FaceLandmarks], previous_centre: np.ndarray | None) -> FaceLandmarks | None:
    """The face to follow: the one nearest the previously tracked face (within its own size), else the
    largest. faces: MediaPipe faces, largest first."""
    if not faces:
        return None
    if previous_centre is not None:
        def distance(f: FaceLandmarks) -> float:
            return float(np.linalg.norm(f.points.mean(axis=0) - previous_centre))

        nearest = min(faces, key=distance)
        x0, y0, x1, y1 = nearest.bbox
        if distance(nearest) < max(x1 - x0, y1 - y0):
            return nearest
    return faces[0]


def ease_weight(seconds_without_face: float, hold: float, ease: float) -> float:
    """1 while holding, then a smoothstep down to 0 over `ease` seconds."""
    if seconds_without_face <= hold:
        return 1.0
    if ease <= 0:
        return 0.0
    t = min((seconds_without_face - hold) / ease, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


class Driver:
    """Turns frames into avatar parameters for one head model. Not thread-safe: one thread calls it.

    max_faces: faces MediaPipe looks for. 1 (default) keeps following the face it tracks and runs its
    face detector only when that face is lost (then the most confident face is taken); with more, the
    detector runs on every frame to look for the others (about 2.5 ms more per 640x480 frame) and
    `select_face` follows the one tracked before.
    """

    def __init__(self, head: HeadModel, settings: DriveSettings | None = None,
                 detector: LandmarkDetector | None = None, max_faces: int = 1,
                 fit_config: FitConfig | None = None):
        self.head = head
        self.settings = settings or DriveSettings()
        self.retargeter = Retargeter(head, RetargetSettings(self.settings.gain, self.settings.head_pose,
                                                           self.settings.fov_deg),
                                     fit_config or drive_fit_config())
        self.layout: ParamLayout = self.retargeter.layout
        self._own_detector = detector is None
        self.detector = detector or LandmarkDetector(static_image_mode=False, max_num_faces=max_faces)
        self.filter = OneEuroFilter(self.settings.min_cutoff(), self._betas())
        self.shown = self.layout.zeros()  # what the last sample showed
        self._last_tracked = self.layout.zeros()  # the last pose shown with a face in view
        self._last_face_time: float | None = None  # capture time of the last frame with a face
        self._last_face_done: float | None = None  # when that frame's tracking finished (wall clock)
        self._eased_away = False  # a sample without a face has shown the avatar easing since the last face
        self._last_centre: np.ndarray | None = None
        self._calibration: list[np.ndarray] | None = None
        self._calibration_target = 0

    def _betas(self) -> np.ndarray:
        beta = np.full(self.layout.size, BETA_ROTATION)
        beta[self.layout["expression"]] = BETA_EXPRESSION
        beta[self.layout["translation"]] = BETA_TRANSLATION
        return beta

    def apply_settings(self, settings: DriveSettings) -> None:
        """Change gain, head pose, mirror, smoothing... between frames."""
        if settings.fov_deg != self.settings.fov_deg:
            self.retargeter.reset()
        self.settings = settings
        r = self.retargeter.settings
        r.gain, r.head_pose, r.fov_deg = settings.gain, settings.head_pose, settings.fov_deg
        self.filter.min_cutoff = settings.min_cutoff()

    def calibrate(self, frames: int = 30) -> None:
        """Collect the next `frames` frames with a face as the user's resting face (see Retargeter.calibrate)."""
        if frames < 1:
            raise ValueError("calibration needs at least one frame")
        self._calibration, self._calibration_target = [], int(frames)

    @property
    def calibrating(self) -> bool:
        return self._calibration is not None

    def reset(self) -> None:
        """Forget the user and the filter state (a new person, a new camera)."""
        self.retargeter.reset()
        self.filter.reset()
        self._last_centre = None

    # -- per frame ----------------------------------------------------------------------------------
    def process(self, image: np.ndarray, capture_time: float | None = None, frame_index: int = -1) -> DriveSample:
        """Track one RGB uint8 (H, W, 3) frame; returns the sample to show."""
        capture_time = time.perf_counter() if capture_time is None else capture_time
        t0 = time.perf_counter()
        if self.settings.mirror:
            image = np.ascontiguousarray(image[:, ::-1])
        h, w = image.shape[:2]
        face = select_face(self.detector.detect(image), self._last_centre)
        if face is None:
            sample = self._without_face(capture_time, "no face")
            sample.frame, sample.frame_index = image, frame_index
            sample.tracking_ms = (time.perf_counter() - t0) * 1000.0
            return sample
        self._last_centre = face.points.mean(axis=0)
        raw, fit = self.retargeter.track(face.points, (w, h))
        status = "tracking"
        if self._calibration is not None:
            self._calibration.append(face.points)
            status = f"calibrating {len(self._calibration)}/{self._calibration_target}"
            if len(self._calibration) >= self._calibration_target:
                self.retargeter.calibrate(self._calibration, (w, h))
                self._calibration = None
                raw, fit = self.retargeter.track(face.points, (w, h))
                status = "calibrated"
                self._restart_filter(capture_time)  # the neutral moved: glide to the new output
        target = self.retargeter.retarget(raw)
        if self._last_face_time is None or self._eased_away:
            self._restart_filter(capture_time)
            self._eased_away = False
        smoothed = self.filter(target, capture_time) if self.settings.smoothing > 0 else target
        self.shown = self.retargeter.clamp(smoothed)
        self._last_tracked = self.shown.copy()
        self._last_face_time = capture_time
        done = time.perf_counter()
        self._last_face_done = done
        return DriveSample(self.shown.copy(), status, True, frame_index, capture_time, done, (done - t0) * 1000.0,
                           fit.mean_error_iod, face.points, image)

    def _restart_filter(self, now: float) -> None:
        """Restart the filter from what is shown (a frame ago), so the avatar glides to the new target."""
        self.filter.reset()
        if self._last_face_time is not None:
            self.filter(self.shown, now - 1.0 / 30.0)

    def no_signal(self, status: str, now: float | None = None) -> DriveSample:
        """A sample for a tick without any frame (camera lost or stopped): hold, then ease to neutral.
        The hold counts from when the last face was tracked (not captured), so the capture -> tracking
        delay of a loaded machine does not eat into it."""
        now = time.perf_counter() if now is None else now
        return self._without_face(now, status, self._last_face_done)

    def _without_face(self, now: float, status: str, since: float | None = None) -> DriveSample:
        """Hold, then ease. now and `since` (default: the last face's capture time) share one clock."""
        since = self._last_face_time if since is None else since
        if self._last_face_time is None:
            self.shown = self.layout.zeros()
            return DriveSample(self.shown.copy(), status, False, capture_time=now, done_time=time.perf_counter())
        self.retargeter.lose_track()
        self._last_centre = None
        gone = now - since
        weight = ease_weight(gone, self.settings.hold_seconds, self.settings.ease_seconds)
        self._eased_away = self._eased_away or weight < 1.0
        if gone <= self.settings.hold_seconds:
            label = f"{status}: holding"
        elif weight > 0:
            label = f"{status}: easing to neutral"
        else:
            label = status
        self.shown = self._last_tracked * weight
        return DriveSample(self.shown.copy(), label, False, capture_time=now, done_time=time.perf_counter())

    def close(self) -> None:
        if self._own_detector:
            self.detector.close()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
