"""Identity distance: dlib's face-recognition ResNet descriptor (128-d), as the `face_recognition` package
computes it, with the weights of the `face-recognition-models` package (never downloaded).

The same person is usually under 0.6 apart. This is the optional extra ``perse-studio[eval]``
(``pip install -e .[eval]``: ``dlib-bin`` and ``face-recognition-models``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from perse.errors import PerseError

SAME_PERSON = 0.6
EXTRA_HINT = "pip install 'perse-studio[eval]' (in a checkout: pip install -e '.[eval]')"


class MissingExtra(PerseError):
    """The optional identity dependencies are not installed."""


def models_folder() -> Path:
    """The `face_recognition_models` package's model folder, found without importing it (its __init__ needs
    pkg_resources, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"identity distance needs face-recognition-models: {EXTRA_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def face_models():
    """(detector, 5-point shape predictor, ResNet face encoder), loaded once. Raises MissingExtra."""
    try:
        import dlib
    except ImportError:
        raise MissingExtra(f"identity distance needs dlib: {EXTRA_HINT}") from None
    folder = models_folder()
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat")))


def identity_available() -> bool:
    """Whether dlib and the model package are importable."""
    try:
        face_models()
    except MissingExtra:
        return False
    return True


def face_descriptor(image: np.ndarray, upsample: int = 1) -> np.ndarray | None:
    """(128,) float64 descriptor of the face dlib's HOG detector is most confident about in an (H, W, 3)
    uint8 RGB image (not the largest: a shirt badge can pass for a face as big), or None without a face."""
    detector, predictor, encoder = face_models()
    img = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    boxes, scores, _ = detector.run(img, upsample, 0.0)
    if len(boxes) == 0:
        return None
    box = boxes[int(np.argmax(scores))]
    return np.asarray(encoder.compute_face_descriptor(img, predictor(img, box), 1), dtype=np.float64)


def identity_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Euclidean distance of two (128,) descriptors; None if either is missing."""
    if a is None or b is None:
        return None
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
