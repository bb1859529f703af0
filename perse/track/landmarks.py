"""MediaPipe FaceMesh landmarks (478 points with irises) on photos and video frames.

Uses the legacy ``mp.solutions.face_mesh`` API of mediapipe 0.10.21, whose face detector and mesh
models ship inside the wheel (newer releases need a downloaded ``.task`` file, which we cannot fetch).

Pixel convention: OpenCV's, like `perse.render.camera.Camera`: the centre of the top-left pixel is
(0, 0). MediaPipe's normalised coordinates put the image's left edge at 0, so ``u = x * W - 0.5``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from perse.errors import PerseError
from perse.landmarks import NUM_LANDMARKS, NUM_MESH_POINTS, eye_corner_distance

MIN_EYE_CORNER_PX = 40.0  # below this the 256-px mesh crop is upsampled and landmarks get unreliable


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C/C++ logging of MediaPipe's graph set-up) for a block.

    MediaPipe prints absl/TFLite INFO and WARNING lines that no flag turns off before absl's logging is
    initialised; Python exceptions are unaffected (they are raised, not printed, inside the block)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class FaceLandmarks:
    """One detected face. points: (478, 2) pixels (OpenCV convention); z: (478,) MediaPipe's relative
    depth in pixels (same scale as x, smaller = nearer the camera, origin at the face's centre)."""

    points: np.ndarray
    z: np.ndarray

    @property
    def eye_corner_distance(self) -> float:
        """Pixels between the outer eye corners (landmarks 33 and 263)."""
        return eye_corner_distance(self.points)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks in pixels."""
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)

    def scaled(self, scale: tuple[float, float]) -> "FaceLandmarks":
        """Landmarks of a resized image mapped to the original (scale = original / resized, per axis)."""
        s = np.asarray(scale, dtype=np.float64)
        # Pixel centres: u_orig + 0.5 = (u + 0.5) * s.
        return FaceLandmarks((self.points + 0.5) * s - 0.5, self.z * s[0])


@dataclass
class Detection:
    """The largest face in an image and how many faces MediaPipe found (up to max_num_faces)."""

    face: FaceLandmarks
    num_faces: int
    image_size: tuple[int, int]  # (width, height)


class LandmarkDetector:
    """Holds a MediaPipe FaceMesh graph. Reuse one instance for many images or a video stream.

    static_image_mode=True runs the face detector on every image (photos); False tracks the face from
    frame to frame (video/webcam: much faster, landmarks are temporally smoother).
    """

    def __init__(self, static_image_mode: bool = True, max_num_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as err:  # a broken install must not look like "no face"
            raise PerseError(f"MediaPipe is not usable ({err}); install mediapipe==0.10.21 with numpy<2")
        self.static_image_mode = static_image_mode
        self.max_num_faces = max_num_faces
        with quiet_native_stderr():
            self._mesh = face_mesh.FaceMesh(static_image_mode=static_image_mode, max_num_faces=max_num_faces,
                                            refine_landmarks=True,
                                            min_detection_confidence=min_detection_confidence,
                                            min_tracking_confidence=min_tracking_confidence)
        self._warmed_up = False

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """All faces in an RGB uint8 (H, W, 3) image, largest first (empty list if none)."""
        if self._mesh is None:
            raise RuntimeError("LandmarkDetector is closed")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        if self._warmed_up:
            result = self._mesh.process(np.ascontiguousarray(image))
        else:  # the first call initialises TFLite, which logs to the C-level stderr
            with quiet_native_stderr():
                result = self._mesh.process(np.ascontiguousarray(image))
            self._warmed_up = True
        faces = []
        for face in result.multi_face_landmarks or []:
            xyz = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
            if len(xyz) != NUM_LANDMARKS:
                raise RuntimeError(f"MediaPipe returned {len(xyz)} landmarks, expected {NUM_LANDMARKS}")
            points = xyz[:, :2] * np.array([w, h]) - 0.5
            faces.append(FaceLandmarks(points, xyz[:, 2] * w))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


def detect_largest_face(image: np.ndarray, source: str | os.PathLike = "the image",
                        detector: LandmarkDetector | None = None,
                        min_eye_corner_px: float = MIN_EYE_CORNER_PX, max_side: int | None = None) -> Detection:
    """Landmarks of the largest face in an RGB uint8 (H, W, 3) image, in that image's pixels.

    Large images are downscaled for detection to `max_side` pixels on their longer side (default
    `perse.track.image_io.DETECTION_MAX_SIDE`) and the landmarks mapped back. `source` names the file in error messages.

    Raises PerseError if no face is found or the face is too small (outer eye corners closer than
    `min_eye_corner_px`, measured in the original image).
    """
    from perse.track.image_io import DETECTION_MAX_SIDE, detection_image

    small = detection_image(image, max_side or DETECTION_MAX_SIDE)
    if detector is None:
        with LandmarkDetector(static_image_mode=True) as own:
            faces = own.detect(small.pixels)
    else:
        faces = detector.detect(small.pixels)
    if not faces:
        raise PerseError(f"no face found in {source}; use a photo with one clearly visible, roughly frontal face")
    face = faces[0].scaled(small.scale)
    eye = face.eye_corner_distance
    if eye < min_eye_corner_px:
        raise PerseError(f"the face in {source} is too small ({eye:.0f} px between the outer eye corners; "
                         f"at least {min_eye_corner_px:.0f} px needed): use a larger or closer photo")
    h, w = image.shape[:2]
    return Detection(face, len(faces), (w, h))


@lru_cache(maxsize=1)
def landmark_groups() -> dict[str, np.ndarray]:
    """MediaPipe landmark ids by facial part (from the wheel's face_mesh_connections).

    Keys: face_oval, lips, left_eye, right_eye, left_eyebrow, right_eyebrow, nose, irises.
    ("left"/"right" are MediaPipe's names: the subject's left/right.)
    """
    from mediapipe.python.solutions import face_mesh_connections as c

    def ids(edges) -> np.ndarray:
        return np.unique(np.array(sorted(edges), dtype=np.int64).reshape(-1))

    return {
        "face_oval": ids(c.FACEMESH_FACE_OVAL),
        "lips": ids(c.FACEMESH_LIPS),
        "left_eye": ids(c.FACEMESH_LEFT_EYE),
        "right_eye": ids(c.FACEMESH_RIGHT_EYE),
        "left_eyebrow": ids(c.FACEMESH_LEFT_EYEBROW),
        "right_eyebrow": ids(c.FACEMESH_RIGHT_EYEBROW),
        "nose": ids(c.FACEMESH_NOSE),
        "irises": np.arange(NUM_MESH_POINTS, NUM_LANDMARKS, dtype=np.int64),
    }
