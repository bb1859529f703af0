"""Reading user photos robustly: any common format and mode -> upright RGB uint8 (H, W, 3).

Photos from phones store their pixels in sensor orientation and say how to turn them in the EXIF
``Orientation`` tag; everything downstream (landmarks, texture projection) needs the upright image, so
the tag is applied here, once. Grayscale, palette, RGBA (composited over white, as a viewer shows it),
CMYK and 16-bit images are converted to RGB. Absurd sizes are refused before decoding the pixels.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perse.errors import PerseError

MIN_SIDE = 32  # px; nothing smaller can hold a detectable face
MAX_PIXELS = 120_000_000  # 120 MP: larger than any camera photo, small enough to decode in memory
DETECTION_MAX_SIDE = 1920  # px; MediaPipe crops the face to 256 px anyway, so more only costs time


@dataclass
class DetectionImage:
    """A possibly downscaled copy for detection. pixels: (h, w, 3) uint8.

    scale: (sx, sy) original size / detection size per axis; landmarks found on `pixels` map back to
    the original image as ``points * scale``.
    """

    pixels: np.ndarray
    scale: tuple[float, float]


def check_image_path(path: str | os.PathLike) -> Path:
    """`path` as a Path; PerseError (one line) when it does not exist or is not a file. Cheap: run it
    before starting work on an image, so that a typo fails before anything is printed or written."""
    path = Path(path)
    if not path.exists():
        raise PerseError(f"image not found: {path}")
    if not path.is_file():
        raise PerseError(f"{path} is not a file (pass an image file such as a .jpg or .png)")
    return path


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as upright RGB uint8 (H, W, 3).

    Raises PerseError (one line, naming the file) for missing, unreadable or non-image files and for
    images smaller than MIN_SIDE or larger than MAX_PIXELS.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = check_image_path(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) between its two thresholds; we check the size ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size  # header only: no pixels decoded yet
                _check_size(path, width, height)
                im.load()
                return to_rgb(ImageOps.exif_transpose(im))
    except PerseError:
        raise
    except UnidentifiedImageError:
        raise PerseError(f"{path} is not an image Pillow can read (use a JPEG, PNG, WebP, BMP or TIFF photo)")
    except Image.DecompressionBombError:
        raise PerseError(f"{path} is too large to open (over {MAX_PIXELS // 1_000_000} megapixels); downscale it first")
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt files
        raise PerseError(f"cannot read image {path} ({type(err).__name__}: {err}); re-export the photo")


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise PerseError(f"{path} is {width}x{height} ({width * height / 1e6:.0f} megapixels), over the "
                         f"{MAX_PIXELS // 1_000_000} MP limit; downscale it first")
    if min(width, height) < MIN_SIDE:
        raise PerseError(f"{path} is only {width}x{height} pixels; use a photo at least {MIN_SIDE} px on each side")


def to_rgb(im) -> np.ndarray:
    """A PIL image in any mode -> RGB uint8 (H, W, 3). Transparency is composited over white."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale the used range to 8 bits (Pillow's convert("L") would clip).
        arr = np.asarray(im, dtype=np.float64)
        hi = max(float(arr.max()), 1.0)
        gray = np.clip(arr / (65535.0 if hi > 255 else 255.0) * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        gray = ((arr - lo) / max(hi - lo, 1e-12) * 255.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def detection_image(image: np.ndarray, max_side: int = DETECTION_MAX_SIDE) -> DetectionImage:
    """Downscale (H, W, 3) uint8 so its longer side is at most `max_side`; keep the scale to map back."""
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return DetectionImage(image, (1.0, 1.0))
    from PIL import Image

    factor = max_side / longest
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    # Per axis: rounding the size makes the two factors differ slightly.
    return DetectionImage(np.ascontiguousarray(small), (w / size[0], h / size[1]))


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write (H, W, 3) or (H, W, 4) uint8 to a PNG atomically."""
    from PIL import Image

    from perse.io_utils import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
