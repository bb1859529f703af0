"""`perse.track`: landmarks and head-model fitting for photos and video frames.

    image_io     load_image (EXIF orientation, any mode -> RGB uint8), detection_image, save_png
    landmarks    LandmarkDetector (MediaPipe FaceMesh, 478 points), detect_largest_face
    fit          fit_head / HeadFitter (robust Levenberg-Marquardt), FitResult, FitConfig
    overlay      draw_fit_overlay (face wireframe, detected vs fitted landmarks)
    here         track_image, track_command (``perse track``)

`track_command` is what ``perse track IMAGE --out PARAMS.json [--overlay OUT.png]`` runs.
"""

from __future__ import annotations

import json
import os

import numpy as np

from perse.errors import PerseError
from perse.head.model import HeadModel
from perse.track.fit import FitConfig, FitResult, HeadFitter, fit_head
from perse.track.image_io import load_image
from perse.track.landmarks import Detection, FaceLandmarks, LandmarkDetector, detect_largest_face
from perse.track.overlay import draw_fit_overlay

__all__ = ["Detection", "FaceLandmarks", "FitConfig", "FitResult", "HeadFitter", "LandmarkDetector",
           "detect_largest_face", "draw_fit_overlay", "fit_head", "load_image", "track_command",
           "track_image"]


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------
def track_image(image: np.ndarray, model: HeadModel, source: str = "the image",
                detector: LandmarkDetector | None = None) -> tuple[Detection, FitResult]:
    """Detect the largest face in an RGB uint8 (H, W, 3) image and fit `model` to it."""
    from perse.head.flame import require_landmarks

    require_landmarks(model)
    detection = detect_largest_face(image, source, detector=detector)
    h, w = image.shape[:2]
    return detection, fit_head(model, detection.face.points, (w, h))


def track_command(image: str | os.PathLike, out: str | os.PathLike, overlay: str | os.PathLike | None = None,
                  flame: str | os.PathLike | None = None,
                  flame_embedding: str | os.PathLike | None = None) -> dict:
    """``perse track``: fit the head model to the photo, write PARAMS.json (and an overlay PNG).

    The JSON holds image, image_size [W, H], params (HeadParams.to_dict), camera (Camera.to_dict),
    mean_error_px, mean_error_iod (fraction of the outer-eye-corner distance), num_faces, head
    (kind/name of the head model) and landmarks_px (the 478 detected MediaPipe landmarks).
    Prints the fit quality; returns the JSON dict.
    """
    from perse.head.registry import load_head_model
    from perse.io_utils import atomic_write_text, check_writable_parent
    from perse.track.image_io import save_png

    check_writable_parent(out)  # fail before the slow part, not after it
    if overlay is not None:
        check_writable_parent(overlay)
    if flame is None and flame_embedding is not None:
        raise PerseError("--flame-embedding needs --flame FILE (the built-in head has its own landmarks)")
    model = load_head_model(flame, flame_embedding)
    pixels = load_image(image)
    detection, fit = track_image(pixels, model, source=str(image))
    h, w = pixels.shape[:2]
    result = {
        "image": str(image),
        "image_size": [w, h],
        "params": fit.params.to_dict(),
        "camera": fit.camera.to_dict(),
        "mean_error_px": fit.mean_error_px,
        "mean_error_iod": fit.mean_error_iod,
        "num_faces": detection.num_faces,
        "head": {"kind": model.kind, "name": model.meta.get("name", "")},
        "iod": "distance between the outer eye corners (MediaPipe landmarks 33 and 263)",
        "landmarks_px": np.round(detection.face.points, 3).tolist(),
    }
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    if detection.num_faces > 1:
        print(f"{detection.num_faces} faces found in {image}; fitted the largest")
    print(f"fitted {model.meta.get('name', model.kind)} to {len(fit.landmark_ids)} landmarks in {fit.ms:.0f} ms: "
          f"mean reprojection error {fit.mean_error_px:.2f} px = {100 * fit.mean_error_iod:.2f}% of the "
          f"inter-ocular distance ({detection.face.eye_corner_distance:.0f} px)")
    print(f"wrote {out}")
    if overlay is not None:
        save_png(overlay, draw_fit_overlay(pixels, model, fit, detection.face.points))
        print(f"wrote {overlay}")
    return result
