"""Frame sources for driving: a webcam (OpenCV `VideoCapture`), a video file, or a folder of images.

Every source yields RGB uint8 (H, W, 3) frames. Opening checks everything that can be checked up front
(camera present, file readable, at least one frame) and raises `PerseError` with one line; a camera that
disappears mid-stream raises `CameraLost` from `read`.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from perse.errors import PerseError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class CameraLost(RuntimeError):
    """The camera stopped delivering frames (unplugged, taken by another program)."""


class FrameSource(ABC):
    """A stream of RGB uint8 frames. `fps` is the nominal rate (0 if unknown); `live` sources produce
    frames in real time by themselves, the others as fast as they are read."""

    name: str
    fps: float
    live: bool = False

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame (H, W, 3) RGB uint8, or None at the end of a finite stream."""

    def rewind(self) -> None:
        """Start again from the first frame (finite sources)."""
        raise NotImplementedError(f"{self.name} cannot be rewound")

    @property
    def frame_count(self) -> int | None:
        """Number of frames, when known."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(frame[:, :, None], 3, axis=2))
    return np.ascontiguousarray(frame[:, :, 2::-1])


# --------------------------------------------------------------------------------------------------
# Webcam
# --------------------------------------------------------------------------------------------------
def list_cameras(max_index: int = 8) -> list[int]:
    """Indices of the cameras OpenCV can open. On Linux the /dev/video* nodes are listed first, so
    machines without cameras answer instantly; elsewhere indices 0..max_index-1 are probed."""
    if sys.platform.startswith("linux"):
        nodes = sorted(int(p[len("/dev/video"):]) for p in glob.glob("/dev/video*") if p[10:].isdigit())
        candidates = [i for i in nodes if i < max_index]
    else:
        candidates = list(range(max_index))
    return [i for i in candidates if _camera_opens(i)]


def _camera_opens(index: int) -> bool:
    import cv2

    from perse.track.landmarks import quiet_native_stderr

    with quiet_native_stderr():  # OpenCV logs a warning per missing index
        cap = cv2.VideoCapture(index)
        ok = cap.isOpened()
        cap.release()
    return ok


class WebcamSource(FrameSource):
    """A camera through OpenCV. Raises PerseError if it cannot be opened; `read` raises CameraLost after
    `max_failures` consecutive failed reads."""

    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480, max_failures: int = 15):
        import cv2

        from perse.track.landmarks import quiet_native_stderr

        if index < 0:
            raise PerseError(f"camera index {index} is negative; use 0 for the first camera")
        with quiet_native_stderr():
            self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            found = list_cameras()
            listing = f"cameras found: {', '.join(map(str, found))}" if found else "no camera was found"
            raise PerseError(f"cannot open camera {index} ({listing}); connect a camera or pick another index")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.index = index
        self.name = f"camera {index}"
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.max_failures = max_failures

    def read(self) -> np.ndarray:
        for _ in range(self.max_failures):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return _bgr_to_rgb(frame)
            time.sleep(0.01)
        raise CameraLost(f"{self.name} stopped delivering frames (unplugged?)")

    def close(self) -> None:
        self._cap.release()


# --------------------------------------------------------------------------------------------------
# Video file
# --------------------------------------------------------------------------------------------------
class VideoFileSource(FrameSource):
    """A video file decoded by OpenCV (FFmpeg). Refuses missing, unreadable and zero-length files."""

    def __init__(self, path: str | os.PathLike):
        import cv2

        from perse.track.landmarks import quiet_native_stderr

        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise PerseError(f"video not found: {path}")
        with quiet_native_stderr():
            self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise PerseError(f"cannot read video {path}: not a video file OpenCV/FFmpeg can decode")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < self.fps < 1000:
            self.fps = 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count = count if count > 0 else None
        self._first = self._read_raw()
        if self._first is None:
            self._cap.release()
            raise PerseError(f"video {path} has no frames (empty or unreadable); use a video with at least one frame")

    def _read_raw(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        return _bgr_to_rgb(frame) if ok and frame is not None else None

    @property
    def frame_count(self) -> int | None:
        return self._count

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self._first.shape[1], self._first.shape[0]

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        return self._read_raw()

    def rewind(self) -> None:
        import cv2

        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._first = None

    def close(self) -> None:
        self._cap.release()


# --------------------------------------------------------------------------------------------------
# Folder of images
# --------------------------------------------------------------------------------------------------
class ImageFolderSource(FrameSource):
    """The images of a folder in name order, played at `fps`. All must have the same size."""

    def __init__(self, folder: str | os.PathLike, fps: float = 30.0):
        self.folder = Path(folder)
        self.name = str(folder)
        if not self.folder.is_dir():
            raise PerseError(f"image folder not found: {folder}")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise PerseError(f"no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.fps = float(fps)
        self._next = 0
        self._size: tuple[int, int] | None = None

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def read(self) -> np.ndarray | None:
        from perse.track.image_io import load_image

        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        self._next += 1
        image = load_image(path)
        size = (image.shape[1], image.shape[0])
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise PerseError(f"{path} is {size[0]}x{size[1]} but the first image in {self.folder} is "
                             f"{self._size[0]}x{self._size[1]}; use images of one size")
        return image

    def rewind(self) -> None:
        self._next = 0


def open_source(spec: str | os.PathLike | int) -> FrameSource:
    """A source from a camera index (int or digits), a video file or an image folder."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return WebcamSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise PerseError(f"{spec} is a single image; drive from a video, a folder of images or a camera")
    return VideoFileSource(path)
