"""Live driving: a capture thread and a tracking thread joined by latest-value slots.

    source ──CaptureThread──► LatestValue[Frame] ──tracking thread (Driver)──► LatestValue[DriveSample]
                                                                                   │
                                        consumer (the studio's main thread) ◄──────┘ latest() each tick

Each stage takes only the newest item from the one before, so a slow stage drops stale frames instead
of queueing them: latency stays bounded however long the session runs. The consumer reports when it
has displayed a sample (`mark_displayed`), which closes the end-to-end latency measurement (frame
capture to avatar on screen).

The camera disappearing is not an error for the session: the capture thread stops with a message, the
tracking thread keeps producing samples that hold and then ease the avatar to neutral, and `start()`
can be called again when the camera is back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from perse.drive.driver import Driver, DriveSample, DriveSettings
from perse.drive.latest import LatestValue
from perse.drive.sources import CameraLost, FrameSource
from perse.head.model import HeadModel
from perse.motion import Take, TakeRecorder

IDLE_TICK = 1.0 / 30.0  # seconds between samples while no frames arrive


@dataclass
class Frame:
    """A captured frame: image (H, W, 3) RGB uint8, its index and `time.perf_counter()` capture time."""

    image: np.ndarray
    index: int
    capture_time: float


class RollingStats:
    """The last `size` values of a measurement: median, 90th percentile and rate."""

    def __init__(self, size: int = 120):
        self._values: deque[float] = deque(maxlen=size)
        self._times: deque[float] = deque(maxlen=size)

    def add(self, value: float, t: float | None = None) -> None:
        self._values.append(float(value))
        self._times.append(time.perf_counter() if t is None else t)

    def __len__(self) -> int:
        return len(self._values)

    def median(self) -> float | None:
        return float(np.median(self._values)) if self._values else None

    def p90(self) -> float | None:
        return float(np.percentile(self._values, 90)) if self._values else None

    def rate(self) -> float | None:
        """Events per second over the window (None with fewer than two)."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return None
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


class CaptureThread(threading.Thread):
    """Reads a source into a latest-value slot. `realtime` paces finite sources at their fps (a video
    file then behaves like a camera); `loop` rewinds them at the end (soak tests)."""

    def __init__(self, source: FrameSource, slot: LatestValue[Frame], realtime: bool = True, loop: bool = False):
        super().__init__(name=f"capture {source.name}", daemon=True)
        self.source, self.slot, self.realtime, self.loop = source, slot, realtime, loop
        self.error: str | None = None
        self.finished = False
        self.frames = RollingStats(60)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        index, start = 0, time.perf_counter()
        period = 1.0 / self.source.fps if (self.realtime and not self.source.live and self.source.fps > 0) else 0.0
        try:
            while not self._stop_event.is_set():
                image = self.source.read()
                if image is None:
                    if not self.loop:
                        break
                    self.source.rewind()
                    continue
                if period:  # pace a file like a camera would deliver it
                    delay = start + index * period - time.perf_counter()
                    if delay > 0:
                        self._stop_event.wait(delay)
                now = time.perf_counter()
                self.slot.put(Frame(image, index, now))
                self.frames.add(0.0, now)
                index += 1
        except CameraLost as exc:
            self.error = f"{exc}; the avatar eases to neutral; press Start when it is back"
        except Exception as exc:  # a decoder failure must reach the UI, not kill the thread silently
            self.error = f"capture failed: {exc}"
        finally:
            self.finished = True
            self.source.close()
            self.slot.close()


@dataclass
class LiveStats:
    """Figures for the status line: camera fps, tracking ms (median), end-to-end latency ms (median,
    frame capture -> displayed), frames captured but skipped as stale."""

    camera_fps: float | None
    tracking_ms: float | None
    latency_ms: float | None
    latency_p90_ms: float | None
    frames_tracked: int
    frames_skipped: int


class ConsumerPacer:
    """Tracking in turn with a consumer slower than the camera (a CPU render at 512 px).

    Unpaced, the tracker publishes samples faster than the consumer takes them: each sample then waits
    for the consumer's current render to end (half a render on average), and the surplus tracking runs
    alongside the render, slowing both on a small CPU. Paced, the tracker waits until the consumer has
    displayed the sample it published, then tracks the newest frame: latency is then about the frame's
    age + tracking + render, and only displayed frames are tracked. (Overlapping tracking with the
    render was measured worse on 2 cores: both slow down.) Without a consumer (nothing displayed within
    `timeout_s`), tracking runs at the camera's rate.
    """

    def __init__(self, timeout_s: float = 0.25):
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._taken_version = 0
        self._displayed_version = 0

    def taken(self, version: int) -> None:
        """The consumer took sample `version` (consumer thread)."""
        with self._cond:
            self._taken_version = max(self._taken_version, version)

    def displayed(self) -> None:
        """The consumer displayed the sample it took last (consumer thread)."""
        with self._cond:
            self._displayed_version = self._taken_version
            self._cond.notify_all()

    def wait_turn(self, published_version: int, stop: threading.Event) -> None:
        """Block the tracking thread until the consumer has displayed `published_version` (or timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._displayed_version >= published_version or stop.is_set(),
                                self.timeout_s)


class LiveDriver:
    """Runs capture and tracking threads for one source at a time; the consumer polls `latest()`.

    source_factory: opens the source (called by `start`, so a camera can be reopened after it was lost).
    paced: track in turn with a consumer that calls `latest` and `mark_displayed` (see
        `ConsumerPacer`); recorded takes then hold the displayed samples. Unpaced, every frame the
        tracker can keep up with is tracked (and recorded).
    """

    def __init__(self, head: HeadModel, source_factory: Callable[[], FrameSource],
                 settings: DriveSettings | None = None, realtime: bool = True, loop: bool = False,
                 paced: bool = False):
        self.head = head
        self.source_factory = source_factory
        self.settings = settings or DriveSettings()
        self.realtime, self.loop = realtime, loop
        self.output: LatestValue[DriveSample] = LatestValue()
        self.status = "stopped"
        self.tracking = RollingStats()
        self.latency = RollingStats()
        self.pacer = ConsumerPacer() if paced else None
        self._driver: Driver | None = None
        self._capture: CaptureThread | None = None
        self._tracker: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()  # guards requests from the consumer to the tracking thread
        self._pending_settings: DriveSettings | None = None
        self._pending_calibration: int | None = None
        self._recorder: TakeRecorder | None = None
        self._tracked = 0
        self._skipped = 0

    # -- control (consumer thread) ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._tracker is not None and self._tracker.is_alive()

    def start(self) -> None:
        """Open the source and start both threads. Raises PerseError if the source cannot be opened."""
        if self.running:
            if self._capture is not None and not self._capture.finished:
                return
            # The capture ended (camera lost, video over) and the tracker is only easing to neutral:
            # finish that session so the new source starts now instead of being ignored.
            self.stop()
        source = self.source_factory()
        if self._driver is None:
            self._driver = Driver(self.head, self.settings)
        frames: LatestValue[Frame] = LatestValue()
        self._stop_event.clear()
        self._capture = CaptureThread(source, frames, self.realtime, self.loop)
        self._tracker = threading.Thread(target=self._track_loop, args=(frames, self._capture),
                                         name="tracking", daemon=True)
        self.status = f"starting {source.name}"
        self._capture.start()
        self._tracker.start()

    def stop(self) -> None:
        """Stop both threads (the last sample stays available)."""
        self._stop_event.set()
        if self._capture is not None:
            self._capture.stop()
            self._capture.join(timeout=2.0)
        if self._tracker is not None:
            self._tracker.join(timeout=2.0)
        self._tracker = None
        self.status = "stopped"

    def close(self) -> None:
        self.stop()
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def update_settings(self, settings: DriveSettings) -> None:
        with self._lock:
            self.settings = settings
            self._pending_settings = settings

    def calibrate(self, frames: int = 30) -> None:
        """Take the next `frames` frames with a face as the user's neutral."""
        with self._lock:
            self._pending_calibration = int(frames)

    def start_recording(self) -> None:
        """Record every frame captured from now on (frames captured earlier and still in flight are not)."""
        with self._lock:
            self._recorder = TakeRecorder(list(self.head.expression_names), self.head.kind,
                                          start=time.perf_counter())

    def stop_recording(self) -> Take:
        """The recorded take (possibly empty: `Take.save` then refuses it)."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            raise RuntimeError("not recording")
        return recorder.take()

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def latest(self) -> tuple[DriveSample | None, int]:
        """The newest sample and its version (compare versions to see whether it is new)."""
        sample, version = self.output.peek()
        if self.pacer is not None and sample is not None:
            self.pacer.taken(version)
        return sample, version

    def mark_displayed(self, sample: DriveSample, t: float | None = None) -> None:
        """The consumer has shown `sample`: records capture -> display latency."""
        t = time.perf_counter() if t is None else t
        if self.pacer is not None:
            self.pacer.displayed()
        if sample.face_found:
            self.latency.add((t - sample.capture_time) * 1000.0)

    def stats(self) -> LiveStats:
        capture = self._capture
        return LiveStats(capture.frames.rate() if capture else None, self.tracking.median(), self.latency.median(),
                         self.latency.p90(), self._tracked, self._skipped)

    # -- tracking thread ----------------------------------------------------------------------------
    def _apply_requests(self, driver: Driver) -> None:
        with self._lock:
            settings, self._pending_settings = self._pending_settings, None
            calibration, self._pending_calibration = self._pending_calibration, None
        if settings is not None:
            driver.apply_settings(settings)
        if calibration is not None:
            driver.calibrate(calibration)

    def _track_loop(self, frames: LatestValue[Frame], capture: CaptureThread) -> None:
        driver = self._driver
        seen = 0
        try:
            while not self._stop_event.is_set():
                self._apply_requests(driver)
                frame, version = frames.wait_newer(seen, timeout=IDLE_TICK)
                if frame is None:
                    if capture.finished:
                        message = capture.error or "the video ended"
                        self.status = message
                        self._publish(driver.no_signal(message))
                        if driver.shown.any():
                            self._stop_event.wait(IDLE_TICK)
                            continue
                        break  # eased all the way to neutral: nothing more to say
                    continue
                self._skipped += version - seen - 1
                seen = version
                sample = driver.process(frame.image, frame.capture_time, frame.index)
                self._tracked += 1
                self.tracking.add(sample.tracking_ms)
                self.status = sample.status
                published = self._publish(sample)
                if self.pacer is not None:
                    self.pacer.wait_turn(published, self._stop_event)
        except Exception as exc:  # report instead of dying silently; the UI shows status
            self.status = f"tracking failed: {exc}"
            raise

    def _publish(self, sample: DriveSample) -> int:
        with self._lock:
            recorder = self._recorder
        if recorder is not None:
            recorder.add(sample.capture_time, sample.vector)
        self.output.put(sample)
        return self.output.version
