"""Offline driving: a video (or image folder) tracked frame by frame into a `Take`, and the driving
frames composed beside the rendered avatar.

Offline, every frame is tracked (no frame is skipped as stale) and time is the video's own
(frame index / fps), so the filter behaves as it would live at that frame rate, however long tracking
takes per frame.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from perse.drive.driver import Driver
from perse.drive.sources import FrameSource
from perse.errors import PerseError
from perse.motion import Take, TakeRecorder


class TrackingCancelled(Exception):
    """The cancel callback asked to stop."""


def calibrate_from_source(source: FrameSource, driver: Driver, frames: int,
                          cancel: Callable[[], bool] | None = None) -> int:
    """Use the first `frames` frames with a face as the neutral; rewinds the source afterwards.
    Returns how many frames were read. Raises PerseError if the source runs out first."""
    driver.calibrate(frames)
    read = 0
    while driver.calibrating:
        if cancel is not None and cancel():
            raise TrackingCancelled()
        image = source.read()
        if image is None:
            raise PerseError(f"{source.name} ended before {frames} frames with a face were seen for calibration; "
                             "use fewer calibration frames", setting="calibrate")
        driver.process(image, read / source.fps, read)
        read += 1
    source.rewind()
    driver.filter.reset()
    return read


def track_source(source: FrameSource, driver: Driver, cancel: Callable[[], bool] | None = None,
                 on_frame: Callable[[int, bool], None] | None = None, max_frames: int | None = None) -> Take:
    """Track every frame of a finite source into a take (timestamps = index / fps).

    on_frame(index, face_found) is called after each frame. Raises PerseError if no frame had a face.
    """
    recorder = TakeRecorder(list(driver.head.expression_names), driver.head.kind)
    faces = 0
    index = 0
    while max_frames is None or index < max_frames:
        if cancel is not None and cancel():
            raise TrackingCancelled()
        image = source.read()
        if image is None:
            break
        t = index / source.fps
        sample = driver.process(image, t, index)
        recorder.add(t, sample.vector)
        faces += sample.face_found
        if on_frame is not None:
            on_frame(index, sample.face_found)
        index += 1
    if index == 0:
        raise PerseError(f"{source.name} has no frames")
    if faces == 0:
        raise PerseError(f"no face found in any of the {index} frames of {source.name}; "
                         "use a video with one clearly visible face")
    return recorder.take()


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to the given height, keeping the aspect ratio (even width)."""
    import cv2

    h, w = image.shape[:2]
    width = max(2, int(round(w * height / h / 2)) * 2)
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


class SideBySide:
    """compose(i, avatar_frame) for the export: the i-th driving frame (mirrored like the tracker saw it
    when `mirror`) scaled to the avatar frame's height, on the left. Reads a fresh source sequentially."""

    def __init__(self, source_factory: Callable[[], FrameSource], mirror: bool = False):
        self.source = source_factory()
        self.mirror = mirror
        self._next = 0
        self._last: np.ndarray | None = None

    def __call__(self, index: int, avatar_frame: np.ndarray) -> np.ndarray:
        while self._next <= index:
            image = self.source.read()
            if image is None:
                break  # the take can be a frame longer than the video: repeat the last frame
            self._last = np.ascontiguousarray(image[:, ::-1]) if self.mirror else image
            self._next += 1
        left = fit_height(self._last, avatar_frame.shape[0])
        return np.concatenate([left, avatar_frame], axis=1)

    def close(self) -> None:
        self.source.close()
