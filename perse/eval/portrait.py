"""The portrait side of the outside-in measures: its landmarks and person mask, and its alignment into
the avatar's reference view.

Any framing of the photo works: the portrait is mapped into the reference-view render by the similarity
transform (scale, rotation, shift) that best matches its MediaPipe landmarks to the render's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError

ALIGN_IDS = np.arange(468)  # the face mesh points (irises left out: they follow the gaze)
MIN_SIDE = 512


@dataclass(frozen=True)
class Portrait:
    """image: (H, W, 3) uint8 RGB; landmarks: (478, 2) pixels; person: (H, W) float32 probability."""

    image: np.ndarray
    landmarks: np.ndarray
    person: np.ndarray


@dataclass(frozen=True)
class AlignedPortrait:
    """The portrait in another frame (size x size): person (S, S) float32, landmarks (478, 2), and
    valid (S, S) bool: the pixels the photo covers."""

    person: np.ndarray
    landmarks: np.ndarray
    valid: np.ndarray


def face_landmarks(image: np.ndarray, source: str) -> np.ndarray:
    """(478, 2) MediaPipe landmarks of the largest face of an (H, W, 3) uint8 image; PerseError naming
    `source` when there is none."""
    from perse.track import detect_largest_face

    return detect_largest_face(image, source).face.points.astype(np.float64)


def enlarge_small(image: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 upscaled (bicubic) so that its shorter side is at least min_side: MediaPipe's
    landmarks need some 40 px between the eyes, which a small head-and-shoulders photo may not have."""
    import cv2

    scale = min_side / min(image.shape[:2])
    if scale <= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def read_portrait(image: np.ndarray, source: str = "the portrait") -> Portrait:
    """Landmarks and person mask (MediaPipe selfie segmentation) of an (H, W, 3) uint8 portrait (small
    photos are enlarged first, see `enlarge_small`; the fields are in the enlarged image's pixels)."""
    from perse.create.portrait_texture import segment_person

    image = enlarge_small(np.ascontiguousarray(image[..., :3]))
    return Portrait(image, face_landmarks(image, source), segment_person(image))


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) matrix of the similarity transform taking (N, 2) points `src` closest to `dst` (least squares)."""
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        t = SimilarityTransform.from_estimate(src, dst)
        ok = bool(t)
    else:
        t = SimilarityTransform()
        ok = t.estimate(src, dst)
    if not ok:
        raise PerseError("cannot align the portrait's landmarks with the render's")
    return np.asarray(t.params[:2], dtype=np.float64)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(H, W[, C]) image mapped by the (2, 3) matrix into a (size, size[, C]) float32 image (zeros outside)."""
    import cv2

    return cv2.warpAffine(image.astype(np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_portrait(portrait: Portrait, target_landmarks: np.ndarray, size: int) -> AlignedPortrait:
    """The portrait's person mask and landmarks in the frame of a (size x size) image whose face has
    (478, 2) `target_landmarks`."""
    m = similarity_matrix(portrait.landmarks[ALIGN_IDS], target_landmarks[ALIGN_IDS])
    landmarks = portrait.landmarks @ m[:, :2].T + m[:, 2]
    covered = warp(np.ones(portrait.person.shape, np.float32), m, size) > 0.5
    return AlignedPortrait(warp(portrait.person, m, size), landmarks, covered)
