"""`perse.track`: landmarks and head-model fitting for photos and video frames.

    image_io     load_image (EXIF orientation, any mode -> RGB uint8), detection_image, save_png
    landmarks    LandmarkDetector (MediaPipe FaceMesh, 478 points), detect_largest_face
    fit          fit_head / HeadFitter (robust Levenberg-Marquardt), FitResult, FitConfig
    overlay      draw_fit_overlay (face wireframe, detected vs fitted landmarks)
    here         track_image: detect the largest face and fit the model to it

``perse track`` (`perse.cli.track`) writes what `track_image` finds to a JSON file.
"""

from __future__ import annotations

import numpy as np

from perse.head.model import HeadModel
from perse.track.fit import FitConfig, FitResult, HeadFitter, fit_head
from perse.track.image_io import load_image
from perse.track.landmarks import Detection, FaceLandmarks, LandmarkDetector, detect_largest_face
from perse.track.overlay import draw_fit_overlay

__all__ = ["Detection", "FaceLandmarks", "FitConfig", "FitResult", "HeadFitter", "LandmarkDetector",
           "detect_largest_face", "draw_fit_overlay", "fit_head", "load_image", "track_image"]


def track_image(image: np.ndarray, model: HeadModel, source: str = "the image",
                detector: LandmarkDetector | None = None) -> tuple[Detection, FitResult]:
    """Detect the largest face in an RGB uint8 (H, W, 3) image and fit `model` to it."""
    from perse.head.flame import require_landmarks

    require_landmarks(model)
    detection = detect_largest_face(image, source, detector=detector)
    h, w = image.shape[:2]
    return detection, fit_head(model, detection.face.points, (w, h))
