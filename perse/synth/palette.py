"""The look catalogue's colours and the colour helpers both painters share.

Colours are linear-ish sRGB in [0, 1]. The procedural painter (`perse.synth.paint_procedural`) paints
them directly; painting over a person's texture (`perse.synth.paint_portrait`) recolours toward them.
`texture_variants` reads and checks a look's texture categories; `eye_albedo` colours the eyeballs
(also used by the portrait texture, `perse.create.portrait_texture`).
"""

from __future__ import annotations

import numpy as np

from perse.errors import PerseError
from perse.geometry.easing import smoothstep

# --------------------------------------------------------------------------------------------------
# Colours (linear-ish sRGB in [0, 1]) of the variants.
# --------------------------------------------------------------------------------------------------
SKIN_TONES = {
    "reference": (0.80, 0.60, 0.49),
    "lighter": (0.92, 0.76, 0.68),
    "darker": (0.42, 0.28, 0.20),
    "tan": (0.70, 0.48, 0.33),
}
HAIR_COLORS = {
    "brown": (0.26, 0.16, 0.095),
    "black": (0.055, 0.045, 0.045),
    "blonde": (0.82, 0.66, 0.40),
    "red": (0.58, 0.22, 0.08),
    "gray": (0.66, 0.65, 0.64),
}
LIP_COLORS = {
    "natural": None,  # derived from the skin tone (rosier, darker)
    "red": (0.72, 0.06, 0.10),
    "berry": (0.40, 0.06, 0.20),
    "pale": (0.86, 0.64, 0.60),
}
# Eyebrows and beard keep their own colour so that a hair-colour change repaints only the scalp.
BROW_COLORS = {"natural": (0.17, 0.11, 0.07), "thick": (0.10, 0.07, 0.05), "thin": (0.20, 0.13, 0.09),
               "light": (0.62, 0.50, 0.36)}
SCLERA_COLOR = (0.93, 0.91, 0.88)
LID_SHADOW = 0.45  # darkening of the eyeball's top under the upper lid

TEXTURE_CATEGORIES = ("hair", "beard", "eyebrows", "lips", "skin")


def texture_variants(look: dict[str, str]) -> tuple[str, str, str, str, str]:
    """(hair, beard, eyebrows, lips, skin) variants of `look` (missing: reference); PerseError if unknown."""
    hair_v = look.get("hair", "brown")
    beard_v = look.get("beard", "none")
    brow_v = look.get("eyebrows", "natural")
    lips_v = look.get("lips", "natural")
    skin_v = look.get("skin", "reference")
    for value, table, cat in ((hair_v, HAIR_COLORS, "hair"), (brow_v, BROW_COLORS, "eyebrows"),
                              (lips_v, LIP_COLORS, "lips"), (skin_v, SKIN_TONES, "skin")):
        if value not in table:
            raise PerseError(f"unknown {cat} variant '{value}'; choose one of {', '.join(table)}")
    if beard_v not in ("none", "stubble", "goatee", "full"):
        raise PerseError(f"unknown beard variant '{beard_v}'; choose one of none, stubble, goatee, full")
    return hair_v, beard_v, brow_v, lips_v, skin_v


LUMA = np.array([0.2126, 0.7152, 0.0722])   # Rec. 709 luminance weights
BT601_LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 (photo luma): the teeth and hair-strand thresholds use it


def luminance(col: np.ndarray) -> np.ndarray:
    """(..., 3) colours -> (...,) luminance."""
    return col @ LUMA


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-texel lerp: a, b (N, 3) or (3,), t (N,) -> (N, 3)."""
    return a + (np.asarray(b) - a) * np.asarray(t)[:, None]


def eye_albedo(theta: np.ndarray, azimuth: np.ndarray, iris_angle: float, sclera, iris_color) -> np.ndarray:
    """(N, 3) eyeball colours from `eye_coordinates`: sclera (3,) reddening toward the corners, an iris
    of `iris_color` (3,) with radial fibres and a dark limbal ring, a black pupil."""
    ia = iris_angle
    sclera = np.asarray(sclera, dtype=np.float64)
    vein = smoothstep(0.9, 1.6, theta)
    col = mix(np.broadcast_to(sclera, (theta.shape[0], 3)), sclera * np.array([0.99, 0.86, 0.84]), 0.5 * vein)
    fibre = 0.5 + 0.5 * np.sin(azimuth * 37 + 3 * np.sin(azimuth * 5)) * np.sin(theta * 40 / ia)
    iris = smoothstep(ia * 1.03, ia * 0.93, theta)
    col = mix(col, np.asarray(iris_color, dtype=np.float64)[None] * (0.6 + 0.7 * fibre[:, None]), iris)
    col = mix(col, np.array([0.05, 0.04, 0.04]), 0.6 * np.exp(-((theta - ia * 0.95) / (ia * 0.08)) ** 2))
    col = mix(col, np.array([0.02, 0.02, 0.02]), smoothstep(ia * 0.42, ia * 0.36, theta))
    # The upper lid and its lashes shade the top of the open eye, the lids' corners its sides: without
    # the shade an eye reads as a stare.
    height = np.sin(np.minimum(theta, np.pi / 2)) * np.sin(azimuth)   # up the eyeball, in eyeball radii
    front = smoothstep(1.8, 1.4, theta)   # behind the lids nothing is seen: the eyeball stays white there
    shade = LID_SHADOW * front * np.maximum(smoothstep(0.0, 0.35, height), smoothstep(0.6, 1.3, theta))
    return col * (1.0 - shade)[:, None]
