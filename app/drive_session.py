"""`DriveSession`: the main thread's side of live driving and take replay (no DearPyGui or GL here).

    LiveDriver threads ──latest()──► poll(state) ──state.set_driven(params)──► viewport renders
                                         │                                          │
                                         └── pending (sample, state version) ◄──────┘
                                              after_display(shown_version) -> mark_displayed(sample)

The main thread calls `poll` once per frame tick, before the viewport renders, and `after_display` at
the start of the next tick: by then `dpg.render_dearpygui_frame()` has drawn the frame that used the
sample, so the recorded latency runs from frame capture to the avatar on screen. The drive threads
never call back into the studio; they only publish the newest sample.

While a session or a replay drives the avatar, `StudioState.driven` overrides the expression and pose
controls; when it ends, `driven` returns to None and the controls rule again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from perse.drive import DriveSample, DriveSettings, FrameSource, LiveDriver, LiveStats
from perse.drive.sources import VideoFileSource, WebcamSource
from perse.errors import PerseError
from perse.head.model import HeadModel
from perse.motion import ParamLayout, Take

CALIBRATION_FRAMES = 30
PREVIEW_POINT = (0.35, 1.0, 0.45)  # landmark dot colours in the preview
PREVIEW_IRIS = (0.3, 0.85, 1.0)


def format_stats(stats: LiveStats | None) -> str:
    """The panel's figures, two lines: camera fps and tracking ms (median); capture->display latency
    (median and 90th percentile) and frames skipped as stale."""
    if stats is None:
        return "camera - fps | tracking - ms\nlatency - ms"

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    text = (f"camera {num(stats.camera_fps, '.1f')} fps | tracking {num(stats.tracking_ms, '.0f')} ms\n"
            f"latency {num(stats.latency_ms, '.0f')} ms")
    if stats.latency_p90_ms is not None:
        text += f" (p90 {stats.latency_p90_ms:.0f})"
    return text + f" | {stats.frames_skipped} skipped"


def preview_ids() -> np.ndarray:
    """Landmark ids the preview draws: the contours (face oval, lips, eyes, brows, nose) and irises.
    All 478 points would merge into a green blob at thumbnail size."""
    from perse.track.landmarks import landmark_groups

    return np.unique(np.concatenate(list(landmark_groups().values())))


def draw_preview(frame: np.ndarray, landmarks: np.ndarray | None, out: np.ndarray,
                 ids: np.ndarray | None = None) -> np.ndarray:
    """Letterbox an RGB uint8 frame (H, W, 3) into `out` (h, w, 4) float32 RGBA in [0, 1] and draw the
    landmarks (N, 2), given in the frame's pixels, as dots: green, irises (ids 468+) cyan. `ids` picks
    the landmarks to draw (all when None). Dots are 2x2 when the face is large in the preview, else 1 px.

    Nearest-neighbour sampling: the preview is a thumbnail, and this costs well under a millisecond.
    Returns `out`, written in place (DearPyGui raw textures keep pointing at the same buffer).
    """
    H, W = frame.shape[:2]
    h, w = out.shape[:2]
    scale = min(w / W, h / H)
    nw, nh = max(1, int(round(W * scale))), max(1, int(round(H * scale)))
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out[...] = (0.08, 0.08, 0.09, 1.0)
    ys = np.minimum((np.arange(nh) / scale).astype(np.int64), H - 1)
    xs = np.minimum((np.arange(nw) / scale).astype(np.int64), W - 1)
    out[y0:y0 + nh, x0:x0 + nw, :3] = frame[ys][:, xs, :3] * (1.0 / 255.0)
    if landmarks is None or not len(landmarks):
        return out
    ids = np.arange(len(landmarks)) if ids is None else ids[ids < len(landmarks)]
    pts = landmarks[ids] * scale + (x0, y0)
    px, py = np.floor(pts[:, 0]).astype(np.int64), np.floor(pts[:, 1]).astype(np.int64)
    colours = np.where((ids >= 468)[:, None], PREVIEW_IRIS, PREVIEW_POINT).astype(np.float32)
    size = 2 if np.ptp(pts[:, 0]) > 90 else 1
    for dy in range(size):
        for dx in range(size):
            x, y = px + dx, py + dy
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            out[y[inside], x[inside], :3] = colours[inside]
    return out


class DriveSession:
    """One head's live driving (a `LiveDriver` per source) and take replay, polled by the main thread.

    head: the avatar's head model (takes must match its expression directions).
    """

    def __init__(self, head: HeadModel, settings: DriveSettings | None = None):
        self.head = head
        self.layout = ParamLayout(head.num_expression)
        self.settings = settings or DriveSettings()
        self.live: LiveDriver | None = None
        self.source_key: object = None   # what the current LiveDriver reads (reused to restart the same source)
        self.take: Take | None = None    # the last recorded or loaded take
        self.take_path: Path | None = None
        self.sample: DriveSample | None = None  # the newest sample received from the live driver
        self.samples_applied = 0
        self.samples_displayed = 0
        self._seen = 0
        self._pending: tuple[DriveSample, int] | None = None
        self._applied: np.ndarray | None = None  # the vector last applied to the state
        self._driving = False  # the state is driven by the live session
        self._replay_start: float | None = None

    # -- live driving ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.live is not None and self.live.running

    @property
    def recording(self) -> bool:
        return self.live is not None and self.live.recording

    @property
    def replaying(self) -> bool:
        return self._replay_start is not None

    def start(self, key: object, factory: Callable[[], FrameSource], loop: bool = False) -> None:
        """Start driving from the source `factory` opens (PerseError if it cannot be opened).

        key: identifies the source; starting the same key again reuses the driver (its calibration and
        face tracker), a new key gets a fresh one. loop: rewind finite sources at their end.
        """
        if self.replaying:
            self.stop_replay(None)
        if self.live is not None and key != self.source_key:
            self.live.close()
            self.live = None
        if self.live is None:
            # a copy: the tracking thread must only see settings through update_settings
            self.live = LiveDriver(self.head, factory, DriveSettings(**vars(self.settings)), realtime=True, loop=loop,
                                   paced=True)  # track in turn with the render: lowest latency on a CPU
            self.source_key, self._seen = key, 0
        self.live.source_factory, self.live.loop = factory, loop
        self.live.start()
        self._driving = True

    def start_camera(self, index: int) -> None:
        self.start(("camera", int(index)), lambda: WebcamSource(int(index)))

    def start_video(self, path: str | Path) -> None:
        """A video file played in real time and looped, like a camera that never stops."""
        path = Path(path).expanduser()
        self.start(("video", str(path)), lambda: VideoFileSource(path), loop=True)

    def stop(self, state) -> None:
        """Stop driving; the expression/pose controls rule again."""
        if self.live is not None:
            if self.live.recording:  # stopping mid-take keeps what was recorded
                take = self.live.stop_recording()
                if take.num_frames >= 2:
                    self.take, self.take_path = take, None
            self.live.stop()
        self._end_driving(state)

    def _end_driving(self, state) -> None:
        self._driving = False
        self._pending = None
        if state is not None and state.driven is not None:
            state.set_driven(None)

    def update_settings(self, **values) -> None:
        """gain=, smoothing=, head_pose=, mirror=: kept for the next session and sent to a running one."""
        for key, value in values.items():
            if not hasattr(self.settings, key):
                raise ValueError(f"unknown drive setting {key}")
            setattr(self.settings, key, value)
        if self.live is not None:
            self.live.update_settings(DriveSettings(**vars(self.settings)))

    def calibrate(self, frames: int = CALIBRATION_FRAMES) -> None:
        if not self.running:
            raise PerseError("start driving first: calibration takes your resting face from the live frames")
        self.live.calibrate(frames)

    def status(self) -> str:
        if self.replaying:
            return "replaying the take"
        return self.live.status if self.live is not None else "stopped"

    def stats(self) -> LiveStats | None:
        return self.live.stats() if self.live is not None else None

    # -- recording ---------------------------------------------------------------------------------
    def start_recording(self) -> None:
        if not self.running:
            raise PerseError("start driving first; a take records the driven parameters")
        self.live.start_recording()

    def stop_recording(self) -> Take:
        """The recorded take (also kept as `take`); PerseError if nothing was recorded."""
        if self.live is None or not self.live.recording:
            raise PerseError("not recording")
        take = self.live.stop_recording()
        if take.num_frames < 2:
            raise PerseError("the take has fewer than two samples; record for longer")
        self.take, self.take_path = take, None
        return take

    def save_take(self, path: str | Path) -> Path:
        if self.take is None:
            raise PerseError("no take to save; record one first")
        path = Path(path).expanduser()
        if not path.suffix:
            path = path.with_suffix(".npz")
        self.take_path = self.take.save(path)
        return self.take_path

    def load_take(self, path: str | Path) -> Take:
        take = Take.load(Path(path).expanduser())
        take.check_head(self.head, f"take {path}")
        self.take, self.take_path = take, Path(path)
        return take

    # -- replay ------------------------------------------------------------------------------------
    def replay(self, state, now: float | None = None) -> None:
        """Play the take on the avatar in real time (live driving must be stopped first)."""
        if self.take is None:
            raise PerseError("no take to replay; record or load one first")
        if self.running:
            raise PerseError("stop driving before replaying a take")
        self._driving = False
        self._replay_start = time.perf_counter() if now is None else now
        self._apply_replay(state, self._replay_start)

    def stop_replay(self, state) -> None:
        self._replay_start = None
        if state is not None and state.driven is not None:
            state.set_driven(None)

    def _apply_replay(self, state, now: float) -> None:
        t = now - self._replay_start
        if t > self.take.duration:
            self.stop_replay(state)
            return
        state.set_driven(self.layout.to_head_params(self.take.vector_at(t)))

    # -- per frame (main thread) -------------------------------------------------------------------
    def after_display(self, shown_version: int, now: float | None = None) -> None:
        """Call at the start of a tick: closes the latency measurement of the sample last applied if the
        frame showing it (state version >= the sample's) has been drawn since."""
        if self._pending is None or self.live is None:
            return
        sample, version = self._pending
        if shown_version >= version:
            self.live.mark_displayed(sample, now)
            self.samples_displayed += 1
            self._pending = None

    def poll(self, state, now: float | None = None) -> DriveSample | None:
        """Apply the newest sample (or the replay's current frame) to the state. Returns the new live
        sample (for the preview), or None when there was none."""
        if self.replaying:
            self._apply_replay(state, time.perf_counter() if now is None else now)
            return None
        if self.live is None or not self._driving:
            return None
        sample, version = self.live.latest()
        if sample is None or version == self._seen:
            if not self.live.running and self._pending is None:
                self._end_driving(state)  # the session ended by itself (eased to neutral)
            return None
        self._seen = version
        self.sample = sample
        if (state.driven is not None and self._applied is not None and not sample.face_found
                and np.array_equal(sample.vector, self._applied)):
            return sample  # a face-less sample repeating the shown pose (held or neutral): nothing to re-render
        self._applied = sample.vector
        state.set_driven(self.layout.to_head_params(sample.vector))
        self.samples_applied += 1
        self._pending = (sample, state.version)
        return sample

    def close(self, state=None) -> None:
        """Stop every thread (closing the window or switching avatars)."""
        self._replay_start = None
        if self.live is not None:
            self.live.close()
            self.live = None
        self._end_driving(state)
