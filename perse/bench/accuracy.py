"""Accuracy checks of the driving pipeline, kept as code: tests assert on them and
``python -m perse.bench.accuracy`` prints the figures.

* closed loop: render a head with known parameters, track the renders, compare what comes back
  (jaw opening, head rotation, expression) and the landmark reprojection error;
* stability: a real photo under small image motions (shift, scale, in-plane rotation) should give the
  same expression and jaw on every frame;
* jitter: on a static face with sensor noise, frame-to-frame change of the filtered output against
  the unfiltered tracker's;
* speed: tracking + retargeting per frame (MediaPipe video mode + the warm per-frame fit).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from perse.drive.driver import Driver, DriveSettings
from perse.head.model import HeadModel, HeadParams
from perse.render.camera import Camera
from perse.geometry.rotations import axis_angle_to_matrix, euler_to_axis_angle, matrix_to_axis_angle


@dataclass
class Pose:
    """A known test pose: name, jaw opening (rad), yaw/pitch (rad), expression {name: value}."""

    name: str
    jaw: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    expression: dict[str, float] | None = None

    def params(self, head: HeadModel) -> HeadParams:
        expression = head.expression_vector(self.expression or {})[None]
        rot = torch.tensor(euler_to_axis_angle(self.yaw, self.pitch, 0.0), dtype=torch.float32)[None]
        return HeadParams(expression=expression, jaw_rot=torch.tensor([[self.jaw, 0.0, 0.0]]), global_rot=rot)


CLOSED_LOOP_POSES = [
    Pose("jaw 0.1", jaw=0.1), Pose("jaw 0.2", jaw=0.2), Pose("jaw 0.3", jaw=0.3),
    Pose("yaw -0.3", yaw=-0.3), Pose("yaw +0.3", yaw=0.3), Pose("pitch -0.2", pitch=-0.2), Pose("pitch +0.2", pitch=0.2),
    Pose("smile", expression={"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}),
    Pose("brows up", expression={"browInnerUp": 0.8, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.6}),
    Pose("jaw 0.2 + yaw 0.2", jaw=0.2, yaw=0.2),
    Pose("neutral"),
]


@dataclass
class ClosedLoopRow:
    name: str
    reprojection_iod: float  # the tracker's own mean landmark reprojection error / IOD
    jaw_error: float         # |recovered - true| jaw opening, radians
    rotation_error_deg: float
    expression_error: float  # mean |recovered - true| over the expression coefficients


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) of the rotation between axis-angles a and b."""
    return math.degrees(float(np.linalg.norm(matrix_to_axis_angle(axis_angle_to_matrix(a) @ axis_angle_to_matrix(b).T))))


def closed_loop(head: HeadModel, render_fn: Callable[[HeadParams], np.ndarray], camera: Camera,
                poses: Iterable[Pose] = CLOSED_LOOP_POSES, frames_per_pose: int = 3,
                calibration_frames: int = 3, fit_config=None) -> list[ClosedLoopRow]:
    """Track renders of known poses. render_fn(params) -> (H, W, 3) uint8 image of the head in `params`
    seen by `camera` (whose field of view the driver is told, as a user sets their webcam's).

    The driver is calibrated on renders of the neutral pose first (as a user would sit still), without
    smoothing; each pose is shown for `frames_per_pose` frames (the warm fit converges over them).
    """
    settings = DriveSettings(smoothing=0.0, gain=1.0, head_pose=True, fov_deg=camera_fov_deg(camera))
    rows = []
    with Driver(head, settings, fit_config=fit_config) as driver:
        L = driver.layout
        neutral = render_fn(Pose("neutral").params(head))
        t = 0.0
        driver.calibrate(calibration_frames)
        while driver.calibrating:
            sample = driver.process(neutral, t)
            t += 1 / 30
            if not sample.face_found:
                raise RuntimeError("the tracker finds no face in the neutral render")
        for pose in poses:
            truth = pose.params(head)
            image = render_fn(truth)
            for _ in range(frames_per_pose):
                sample = driver.process(image, t)
                t += 1 / 30
            if not sample.face_found:
                rows.append(ClosedLoopRow(pose.name, math.inf, math.inf, math.inf, math.inf))
                continue
            v = sample.vector
            true_expr = truth.expression[0].double().numpy()
            rows.append(ClosedLoopRow(
                pose.name, float(sample.fit_error_iod),
                abs(float(v[L["jaw_rot"]][0]) - pose.jaw),
                rotation_angle_deg(v[L["global_rot"]], truth.global_rot[0].double().numpy()),
                float(np.abs(v[L["expression"]] - true_expr).mean())))
    return rows


def camera_fov_deg(camera: Camera) -> float:
    """Field of view along the camera's longer image side, degrees."""
    return math.degrees(2.0 * math.atan(0.5 * max(camera.width, camera.height) / float(camera.K[0, 0])))


def gl_head_renderer(head: HeadModel, size: int = 512) -> tuple[Callable[[HeadParams], np.ndarray], Camera,
                                                                 Callable[[], None]]:
    """render_fn for `closed_loop`: the head with its procedural texture, lit (needs OpenGL), on white;
    returns (render_fn, camera, close)."""
    from perse.render.framing import orbit_view
    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.variants import CATEGORIES, reference_look

    frames = FrameRenderer(head, CATEGORIES)
    look = reference_look()
    with torch.no_grad():
        rest = head(head.zero_params()).vertices[0]
    camera = orbit_view(rest, 0.0, 0.0, size)

    def render_fn(params: HeadParams) -> np.ndarray:
        with torch.no_grad():
            verts = head(params).vertices[0].numpy()
        rotation = axis_angle_to_matrix(params.global_rot[0].double().numpy())
        rgba, _, _ = frames.render(look, verts, camera, 0, rotation)
        alpha = rgba[..., 3:] / 255.0
        return (rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)

    return render_fn, camera, frames.close


def avatar_renderer(avatar, size: int = 512, backend: str = "auto") -> tuple[Callable[[HeadParams], np.ndarray], Camera]:
    """render_fn for `closed_loop` and its camera: a Gaussian avatar on white, front view."""
    from perse.avatar.model import AvatarState
    from perse.export.video import to_uint8
    from perse.render import render
    from perse.render.framing import orbit_view

    with torch.no_grad():
        camera = orbit_view(avatar.head_vertices(avatar.reference_state().head), 0.0, 0.0, size)

    def render_fn(params: HeadParams) -> np.ndarray:
        with torch.no_grad():
            out = render(avatar.gaussians(AvatarState(params)), camera, backend=backend, background=torch.ones(3))
        return to_uint8(out.rgb)

    return render_fn, camera


# --------------------------------------------------------------------------------------------------
# Real photo under motion
# --------------------------------------------------------------------------------------------------
def place_on_canvas(photo: np.ndarray, size: tuple[int, int] = (640, 480), scale: float = 1.0,
                    shift: tuple[float, float] = (0.0, 0.0), angle_deg: float = 0.0, fill: int = 90) -> np.ndarray:
    """The photo scaled/rotated about its centre and placed at the canvas centre + shift: a webcam-like
    (H, W, 3) uint8 frame. scale 1 fits the photo's height to 80% of the canvas height."""
    import cv2

    W, H = size
    h, w = photo.shape[:2]
    s = scale * 0.8 * H / h
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, s)
    M[:, 2] += np.array([W / 2.0 + shift[0], H / 2.0 + shift[1]]) - np.array([w / 2.0, h / 2.0])
    return cv2.warpAffine(photo, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(fill, fill, fill))


def moving_photo_frames(photo: np.ndarray, count: int, seed: int = 0, size: tuple[int, int] = (640, 480),
                        noise: float = 2.0) -> list[np.ndarray]:
    """Frames of the photo drifting smoothly (shift +-20 px, scale +-5%, roll +-4 deg) with sensor noise."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * math.pi, 4)
    frames = []
    for i in range(count):
        a = 2 * math.pi * i / max(count, 1)
        frame = place_on_canvas(photo, size, scale=1.0 + 0.05 * math.sin(a + phase[0]),
                                shift=(20 * math.sin(a + phase[1]), 12 * math.sin(2 * a + phase[2])),
                                angle_deg=4 * math.sin(a + phase[3]))
        frames.append(add_noise(frame, noise, rng))
    return frames


def add_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise (sigma in 0..255 units)."""
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).astype(np.uint8)


@dataclass
class SequenceFigures:
    """Per-sequence statistics of the driven parameters (unfiltered unless stated)."""

    tracking_ms_median: float
    tracking_ms_p90: float
    faces: int
    frames: int
    expression_std: float    # mean over coefficients of the std across frames
    jaw_std: float           # radians
    mean_error_iod: float


def run_sequence(head: HeadModel, frames: list[np.ndarray], settings: DriveSettings, fps: float = 30.0,
                 warmup: int = 3) -> tuple[np.ndarray, SequenceFigures]:
    """Drive through frames; returns the (T, D) outputs (frames with a face) and figures (the first
    `warmup` frames, which include the cold fit, are left out of the timing)."""
    outputs, ms, errors = [], [], []
    with Driver(head, settings) as driver:
        L = driver.layout
        for i, frame in enumerate(frames):
            sample = driver.process(frame, i / fps, i)
            if sample.face_found:
                outputs.append(sample.vector)
                errors.append(sample.fit_error_iod)
            if i >= warmup:
                ms.append(sample.tracking_ms)
    out = np.array(outputs) if outputs else np.zeros((0, L.size))
    ms_arr = np.array(ms) if ms else np.array([math.nan])
    return out, SequenceFigures(float(np.median(ms_arr)), float(np.percentile(ms_arr, 90)), len(outputs), len(frames),
                                float(out[:, L["expression"]].std(axis=0).mean()) if len(out) else math.nan,
                                float(out[:, L["jaw_rot"]][:, 0].std()) if len(out) else math.nan,
                                float(np.mean(errors)) if errors else math.nan)


def mean_step(outputs: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of a (T, D) parameter sequence."""
    return float(np.abs(np.diff(outputs, axis=0)).mean()) if len(outputs) > 1 else 0.0


def jitter_ratio(head: HeadModel, photo: np.ndarray, frames: int = 90, smoothing: float | None = None,
                 noise: float = 3.0, seed: int = 0) -> tuple[float, float, float]:
    """On a static face with sensor noise: (filtered mean step, unfiltered mean step, ratio)."""
    rng = np.random.default_rng(seed)
    still = place_on_canvas(photo)
    sequence = [add_noise(still, noise, rng) for _ in range(frames)]
    raw, _ = run_sequence(head, sequence, DriveSettings(smoothing=0.0))
    settings = DriveSettings() if smoothing is None else DriveSettings(smoothing=smoothing)
    filtered, _ = run_sequence(head, sequence, settings)
    skip = 10  # leave out the filter's settling from the cold start
    a, b = mean_step(filtered[skip:]), mean_step(raw[skip:])
    return a, b, a / max(b, 1e-12)


def main() -> None:
    """Print every figure on the built-in head and the astronaut photo (and the default avatar)."""
    import argparse

    from skimage.data import astronaut

    from perse.head import load_builtin_head

    parser = argparse.ArgumentParser(description="accuracy, stability, jitter and speed of perse.drive")
    parser.add_argument("--avatar", default="default", help="also run the closed loop on this avatar ('' to skip)")
    args = parser.parse_args()
    head = load_builtin_head()
    photo = astronaut()[:300, 90:360]  # the face and shoulders

    def table(title: str, rows: list[ClosedLoopRow]) -> None:
        print(f"\n{title}\n  {'pose':<20} {'reproj %IOD':>11} {'jaw err rad':>11} {'rot err deg':>11} {'expr err':>9}")
        for r in rows:
            print(f"  {r.name:<20} {100 * r.reprojection_iod:>11.2f} {r.jaw_error:>11.3f} {r.rotation_error_deg:>11.2f} "
                  f"{r.expression_error:>9.3f}")
        print(f"  {'mean':<20} {100 * np.mean([r.reprojection_iod for r in rows]):>11.2f} "
              f"{np.mean([r.jaw_error for r in rows]):>11.3f} {np.mean([r.rotation_error_deg for r in rows]):>11.2f} "
              f"{np.mean([r.expression_error for r in rows]):>9.3f}")

    render_fn, camera, close = gl_head_renderer(head)
    try:
        table("closed loop: built-in head, procedural texture, lit (OpenGL), 512x512",
              closed_loop(head, render_fn, camera))
    finally:
        close()
    if args.avatar:
        from perse.avatar.io import load_avatar
        from perse.paths import resolve_avatar_path

        avatar = load_avatar(resolve_avatar_path(args.avatar))
        table(f"closed loop: Gaussian avatar '{args.avatar}', 512x512",
              closed_loop(avatar.head, *avatar_renderer(avatar)))

    frames = moving_photo_frames(photo, 120)
    _, fig = run_sequence(head, frames, DriveSettings(smoothing=0.0))
    print(f"\nastronaut photo moving (640x480, {fig.frames} frames, face in {fig.faces}): expression std "
          f"{fig.expression_std:.4f}, jaw std {fig.jaw_std:.4f} rad, mean reprojection {100 * fig.mean_error_iod:.2f}% IOD")
    print(f"tracking + retargeting per 640x480 frame: median {fig.tracking_ms_median:.1f} ms, "
          f"p90 {fig.tracking_ms_p90:.1f} ms")
    filtered, raw, ratio = jitter_ratio(head, photo)
    print(f"jitter on a static face (noise sigma 3): filtered step {filtered:.5f}, unfiltered {raw:.5f}, "
          f"ratio {100 * ratio:.1f}% (default smoothing {DriveSettings().smoothing})")


if __name__ == "__main__":
    main()
