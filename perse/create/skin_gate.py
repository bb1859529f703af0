"""Which of the photo's pixels may paint skin where clothes, collars and hair often cover it.

Neck and ears are often covered in a portrait (collars, scarves, hair). Their texels trust the photo
only where it shows skin (`photo_skin_gate`): a colour near the face's skin median, clear of any
pixel that is not skin. The gate is judged on the photo, in pixels, so its edge follows the photo's
own edges (where skin meets a collar) instead of the head mesh's triangles.

Which texels the gate applies to (`gate_weights`) is a smooth weight, not only a region label: the
lower face's triangles (beard, face) reach under the chin, where the photo shows the neck and its
collar too. They are gated as the neck is where the photo pixel they see lies below the jaw line
(`below_jaw_weight`); on region labels alone, the seen neck ended in a sawtooth along the triangles
between the beard and neck regions. A beard that hangs below the jaw line is therefore painted as skin
there, as the neck always was (the beard variants draw beards).

Above the mouth corners and beside the eyes, the face's triangles reach the temples and the cheeks'
sides out to the ears (`beside_face_weight`): where the photo shows hair there, on them or on the ears,
those texels are hair (`hair_beside_face`), painted and recoloured as the hair layer is, and never
gated as skin. As skin they showed a band of bare cheek between the face and the hair in turned views,
and ears under a bob a pale strip between the cheek and the hair in the front view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perse.geometry.easing import smoothstep
from perse.geometry.sampling import bilinear_sample
from perse.landmarks import EYE_OUTER, MOUTH_CORNER, NUM_MESH_POINTS, eye_corner_distance
from perse.synth.hair import polygon_mask

GATED_REGIONS = ("neck", "ears")             # always gated
JAW_GATED_REGIONS = ("face", "beard")        # gated where they see below the jaw line (hair and eyes never)
SKIN_GATE = (0.45, 0.25)                     # relative RGB distance to the skin median: rejected .. trusted
GATE_MARGIN = (0.005, 0.012)                 # of the photo's side: distrusted .. trusted distance from non-skin
JAW_RAMP = 0.12                              # of the outer eye corners' distance: below-the-jaw weight 0 .. 1
FRAMED_REGIONS = ("face", "beard", "ears")   # where hair beside the face covers the head (a bob over the ears)


def skin_likeness(colors: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(...,) in [0, 1]: 1 for colours (..., 3) in [0, 1] near the skin colour `skin` (3,), 0 far from it."""
    distance = np.linalg.norm(colors - skin, axis=-1) / max(float(np.linalg.norm(skin)), 1e-6)
    return smoothstep(SKIN_GATE[0], SKIN_GATE[1], distance)


def photo_skin_gate(image: np.ndarray, uv: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A `skin_gate` for `complete_texture`: skin -> (N,) skin likeness of the photo `image` (H, W, 3)
    uint8 at the texels' pixel positions uv (N, 2), faded out near any pixel that is not skin.

    Judged on the photo because of its edges: where skin meets a dark collar or hair, the pixels
    between are skin-like, only darker, and would paint a line along the edge of the seen neck."""
    import cv2

    photo = image.astype(np.float64) / 255.0
    margin = np.asarray(GATE_MARGIN) * max(image.shape[:2])

    def gate(skin: np.ndarray) -> np.ndarray:
        like = skin_likeness(photo, skin)
        distance = cv2.distanceTransform((like > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        return bilinear_sample(like * smoothstep(margin[0], margin[1], distance), uv)

    return gate


def _ramp_px(landmarks: np.ndarray) -> float:
    """JAW_RAMP outer-eye-corner distances, in pixels (at least 1)."""
    return max(JAW_RAMP * eye_corner_distance(landmarks), 1.0)


def _below_mouth_corners(landmarks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """In [0, 1] per image row `y` (any shape): 0 above the mouth corners' height, 1 below it, fading in
    over `_ramp_px` about it."""
    mouth_y = float(landmarks[[MOUTH_CORNER["R"], MOUTH_CORNER["L"]], 1].mean())
    ramp = _ramp_px(landmarks)
    return smoothstep(mouth_y - ramp, mouth_y + ramp, np.asarray(y, np.float64))


def below_jaw_weight(uv: np.ndarray, landmarks: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """(N,) in [0, 1]: how far below the jaw line the photo pixels uv (N, 2) lie, in an image of
    `image_shape` (H, W) with landmarks (478, 2) pixels.

    The jaw line is the outline (convex hull) of the 468 face-mesh landmarks below the mouth corners: the
    weight rises from 0 on it to 1 at JAW_RAMP outer-eye-corner distances outside it. It fades in over
    the same distance about the mouth corners' height and is 0 above that (the cheeks' sides see hair
    and ears there: `beside_face_weight`)."""
    import cv2

    h, w = image_shape
    face = polygon_mask(landmarks[:NUM_MESH_POINTS], w, h)
    outside = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    lower = _below_mouth_corners(landmarks, np.arange(h))[:, None]
    return bilinear_sample(smoothstep(0.0, _ramp_px(landmarks), outside) * lower, uv)


def beside_face_weight(uv: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: how far beside the face the photo pixels uv (N, 2) lie, above the mouth corners:
    from 0 at the outer eye corners to 1 at JAW_RAMP eye-corner distances further out, along the line
    through them (so a tilted head is measured in its own frame), and 0 below the mouth corners.

    The temples and the cheeks' sides, out to the ears: where a bob's side hair and the bangs' ends
    frame the face. (Between the eye corners lie the brows, lashes and a moustache, which stay the
    face's; below the mouth corners a beard.)"""
    right, left = landmarks[EYE_OUTER["R"]], landmarks[EYE_OUTER["L"]]
    span = max(float(np.linalg.norm(left - right)), 1e-6)
    lateral = np.abs((uv - 0.5 * (left + right)) @ ((left - right) / span)) - 0.5 * span
    return smoothstep(0.0, _ramp_px(landmarks), lateral) * (1.0 - _below_mouth_corners(landmarks, uv[:, 1]))


def hair_beside_face(hair_seen: np.ndarray, beside_face: np.ndarray, region: np.ndarray,
                     region_names: list[str]) -> np.ndarray:
    """(N,) in [0, 1]: how much each face / beard / ear texel (FRAMED_REGIONS; hard region ids `region`
    into `region_names`) is hair the photo shows beside the face. hair_seen: (N,) the photo's hair mask
    at the texels' pixels, 0 where unseen; beside_face: (N,) `beside_face_weight`."""
    on_face = np.isin(region, [region_names.index(r) for r in FRAMED_REGIONS if r in region_names])
    return np.where(on_face, np.clip(hair_seen, 0.0, 1.0) * beside_face, 0.0)


def gate_weights(region: np.ndarray, region_names: list[str], below_jaw: np.ndarray | None = None) -> np.ndarray:
    """(N,) in [0, 1]: how much the skin gate applies to each texel (hard region ids `region` (N,) into
    `region_names`): 1 on GATED_REGIONS, `below_jaw` (N,) (`below_jaw_weight`) on JAW_GATED_REGIONS
    where given, else 0 (hair seen beside the neck stays hair)."""
    def among(names):
        return np.isin(region, [region_names.index(r) for r in names if r in region_names])

    gated = among(GATED_REGIONS).astype(np.float64)
    return gated if below_jaw is None else np.maximum(gated, np.where(among(JAW_GATED_REGIONS), below_jaw, 0.0))
