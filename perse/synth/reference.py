"""The portrait's own view in a synthetic dataset: its camera, its fitted parameters and the photo itself.

A portrait-made dataset renders the textured head at the portrait's fitted camera and parameters
(`reference` frames), so the avatar learns the person as the photo shows them. Two things a projected
texture cannot carry are added from the photo directly:

- the eyes and the open mouth: the texture holds the skin of the closed head, while the photo shows
  irises under the lids' shadow and, in a smile, the person's own teeth. Inside the lids' and the inner
  lips' contours (the photo's landmarks) a reference frame takes the photo's pixels, feathered over a
  pixel, wherever the head covers the pixel;
- framing: the frames are cropped to the head (`perse.render.framing.framed_on_head`), so the face gets
  the dataset's resolution instead of the few pixels it has in a half-body portrait.

All images are uint8 RGB(A), landmarks (478, 2) float pixels (x right, y down) in the image they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from perse.errors import PerseError
from perse.head.model import HeadParams
from perse.render.camera import Camera
from perse.render.framing import framed_on_head, head_bounds
from perse.landmarks import EYE_LOWER_LID, EYE_UPPER_LID, LIPS_INNER

FEATHER_PX = 1.0  # soft edge of the photo's eyes and mouth in a frame: hides a landmark's sub-pixel error


@dataclass
class ReferenceView:
    """The portrait's view of the person.

    camera: the fitted camera of the portrait (its pixel grid); params: the fitted HeadParams (batch 1);
    image: (H, W, 3) uint8 the portrait in that grid, or None (frames are then pure renders);
    landmarks: (478, 2) the portrait's landmarks in `image`, required with it; frames: how many
    training frames show this view.
    """

    camera: Camera
    params: HeadParams
    image: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    frames: int = 8

    def teeth_color(self) -> np.ndarray | None:
        """(3,) RGB of the teeth the photo shows (`perse.synth.teeth.photo_teeth_color`), None without."""
        from perse.synth.teeth import photo_teeth_color

        return None if self.image is None else photo_teeth_color(self.image, np.asarray(self.landmarks))

    def validate(self) -> None:
        """PerseError (one line) for a view the generator cannot use."""
        if self.params is None:
            raise PerseError("the reference view's camera and parameters go together: give the portrait "
                             "fit's params with its camera")
        if self.params.batch_size != 1:
            raise PerseError(f"the reference view's parameters must have batch size 1, got {self.params.batch_size}")
        if not 0 <= int(self.frames) <= 64:
            raise PerseError(f"the reference view's frame count must be in [0, 64], got {self.frames}")
        if self.camera.width != self.camera.height:
            raise PerseError(f"the reference camera is {self.camera.width}x{self.camera.height}; the dataset is "
                             "square: crop the portrait to a square before fitting")
        if self.image is None:
            return
        if self.landmarks is None:
            raise PerseError("the reference view's photo needs its landmarks")
        img, lm = np.asarray(self.image), np.asarray(self.landmarks)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise PerseError(f"the reference photo must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
        if img.shape[:2] != (self.camera.height, self.camera.width):
            raise PerseError(f"the reference photo is {img.shape[1]}x{img.shape[0]} but its camera is "
                             f"{self.camera.width}x{self.camera.height}")
        if lm.shape != (478, 2) or not np.isfinite(lm).all():
            raise PerseError(f"the reference landmarks must be (478, 2) finite pixels, got {lm.shape}")


def eye_opening_polygon(landmarks: np.ndarray, side: str) -> np.ndarray:
    """(K, 2) lid contour of the subject's right ("R") or left ("L") eye: upper lid, then lower lid back."""
    return np.concatenate([landmarks[list(EYE_UPPER_LID[side])], landmarks[list(EYE_LOWER_LID[side])][::-1]])


def feature_polygons(landmarks: np.ndarray) -> list[np.ndarray]:
    """The eye openings (subject's right, left) and the inner-lip opening: three (K, 2) polygons."""
    return [eye_opening_polygon(landmarks, "R"), eye_opening_polygon(landmarks, "L"), landmarks[list(LIPS_INNER)]]


def mouth_opening_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 in [0, 1]: inside the inner-lip contour of landmarks (478, 2), pulled in by a
    pixel so the lips' own colour stays out (what the photo shows of the teeth and the mouth)."""
    import cv2

    inside = polygons_mask([np.asarray(landmarks, np.float64)[list(LIPS_INNER)]], shape, feather_px=0.0)
    return cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(np.float32)


def polygons_mask(polygons: list[np.ndarray], shape: tuple[int, int], feather_px: float = FEATHER_PX) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the union of the polygons, its edge blurred over `feather_px`."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    for poly in polygons:
        cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=3)
    out = mask.astype(np.float32) / 255.0
    if feather_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), feather_px)
    return out


def image_map(src: Camera, dst: Camera) -> np.ndarray:
    """(2, 3) affine map from `src` pixels to `dst` pixels of two cameras that differ only in intrinsics."""
    if not torch.allclose(src.world_to_cam, dst.world_to_cam):
        raise PerseError("image_map needs two cameras at the same pose")
    K_src, K_dst = src.K.detach().double().cpu().numpy(), dst.K.detach().double().cpu().numpy()
    return (K_dst @ np.linalg.inv(K_src))[:2]


def frame_camera(view: ReferenceView, vertices: np.ndarray, size: int) -> Camera:
    """The reference view cropped to the head of posed vertices (V, 3) and resized to (size x size)."""
    centre, radius = head_bounds(torch.as_tensor(vertices, dtype=torch.float32))
    return framed_on_head(view.camera, centre, float(radius), size)


def with_photo_features(rgba: np.ndarray, view: ReferenceView, camera: Camera) -> np.ndarray:
    """A rendered reference frame (H, W, 4) uint8 (straight colour) with the photo's eyes and open mouth.

    The photo is mapped into the frame's `camera` (the reference camera, cropped and scaled); inside its
    eye and inner-lip contours, where the render covers the pixel, the frame takes the photo's colour.
    Without a photo the frame is returned as it is."""
    if view.image is None:
        return rgba
    import cv2

    h, w = rgba.shape[:2]
    M = image_map(view.camera, camera)
    photo = view.image
    if M[0, 0] < 1.0:  # shrinking: low-pass first, or the warp aliases
        photo = cv2.GaussianBlur(photo, (0, 0), 0.4 / M[0, 0])
    photo = cv2.warpAffine(photo, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    landmarks = np.asarray(view.landmarks, np.float64) @ M[:, :2].T + M[:, 2]
    weight = polygons_mask(feature_polygons(landmarks), (h, w)) * (rgba[..., 3] > 127)
    out = rgba.copy()
    out[..., :3] = np.round(rgba[..., :3] * (1.0 - weight[..., None]) + photo * weight[..., None]).astype(np.uint8)
    return out
