"""Painting a look over a person's texture (e.g. projected from a portrait).

`BaseTextureFields` reads what variants need from the person's texture (their skin colour, hair,
eyebrows, local skin with the brows left out) and paints each non-reference variant over it, keeping
the texture's own detail. It is built and used by the procedural painter
(`perse.synth.paint_procedural.TexturePainter`), whose masks (lips, cavity, eyes, brows, beard) it
reuses; that module imports this one, so the painter is named here only in annotations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError
from perse.geometry.easing import smoothstep
from perse.synth.palette import BROW_COLORS, HAIR_COLORS, LIP_COLORS, SKIN_TONES, luminance, mix
from perse.synth.uv_atlas import grow
from perse.synth.variants import SKIN_REGIONS

# Over a person's texture: thick / thin brows are this much darker than the person's, light brows move
# LIGHT_BROW_SHARE of the way to a pale ash blonde. (Thin brows stay wide enough to survive 256 px
# training frames: at half the width they vanished.)
THICK_BROW_DARKEN = 0.55
LIGHT_BROW_TARGET = (0.92, 0.85, 0.71)
LIGHT_BROW_SHARE = 0.9
# Lighter skin is at least the person's skin moved LIGHTER_SHARE of the way to a pale porcelain of skin's
# own hue. (A per-channel gain of 1.22 clipped red first: a pale person's skin turned yellow, and changed
# by only 0.157, which render shading pushed under the 0.15 a visible change needs.) Trained avatars
# reach half to all of their dataset's change (a standard astronaut build: blue 0.58 -> 0.68 where the
# dataset goes to 0.79, 545 px over 0.15); 0.85 gave margin but, fully learned (drafts), painted the
# face near white, so the share stays at 0.7 and the margin has to come from training.
LIGHTER_TARGET = (1.0, 0.94, 0.90)
LIGHTER_SHARE = 0.7
PALE_LIP_GAIN, PALE_LIP_LIFT = 1.06, 0.10  # pale lips: the person's skin, lighter (a lip already close
# to the skin tone must still change visibly)


def recolor_keep_luminance(lum: np.ndarray, target, mean_lum: float, eps: float = 0.03) -> np.ndarray:
    """Colours of `target` (3,) modulated by the luminance structure `lum` (N,) of what they replace.

    Each texel gets target * (lum + eps) / (mean_lum + eps), a per-channel gain toward the target
    colour: the mean comes out at the target, highlights and strands keep their relative brightness.
    `eps` damps the gain where the original is very dark (noise in black hair is not blown up); the
    ratio is clipped to [0.2, 3] so that no texel goes pure black or white. Returns (N, 3).
    """
    ratio = np.clip((lum + eps) / (float(mean_lum) + eps), 0.2, 3.0)
    return np.asarray(target, dtype=np.float64)[None] * ratio[:, None]


def hair_likeness(color: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: how unlike skin `skin` (3,) each colour (N, 3) is, as hair is.

    Hair differs from skin either in chromaticity (blonde: yellower, gray: less red, red: redder) or
    by being much darker (brown, black). Brightness changes of skin alone (shading baked into a
    photo, pores) change neither chromaticity nor, within a factor of ~0.6, darkness.
    """
    chroma = color / np.maximum(color.sum(axis=1, keepdims=True), 1e-6)
    skin_chroma = skin / max(float(skin.sum()), 1e-6)
    d_chroma = np.linalg.norm(chroma - skin_chroma[None], axis=1)
    rel_lum = luminance(color) / max(float(luminance(skin)), 1e-6)
    return np.maximum(smoothstep(0.025, 0.06, d_chroma), smoothstep(0.6, 0.4, rel_lum))


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of values (N, ...) with weights (N,); nan when the weights sum to zero."""
    total = float(weights.sum())
    if total <= 1e-9:
        return np.full(values.shape[1:], np.nan)
    return np.tensordot(weights, values, axes=(0, 0)) / total


@dataclass
class BaseTextureFields:
    """A person's texture (e.g. projected from a portrait) and what painting variants over it needs.

    All per-texel arrays are over the painter's covered texels (N,). color: (N, 3) float in [0, 1];
    lum: (N,); skin_ref: (3,) median skin colour of the face; hair: (N,) how much each texel is the
    person's hair (on the scalp and back of the head, or on the forehead above the procedural hairline,
    weighted by how far its colour is from the skin's); brow_zone: (N,) soft area around both
    eyebrows; brows: (N,) the person's eyebrow hair (darker than the surrounding skin in the zone);
    brow_color: (3,); skin_fill: (N, 3) local skin colour with the brows left out; brows_erase: (N,)
    where the thin variant replaces the person's brows by skin_fill;
    skin: (N,) texels a skin-tone change scales; hair_lum / lips_lum / brow_lum: mean luminance.
    """

    painter: "TexturePainter"  # noqa: F821 (paint_procedural imports this module)
    color: np.ndarray
    lum: np.ndarray
    skin_ref: np.ndarray
    hair: np.ndarray
    hair_lum: float
    lips_lum: float
    brow_zone: np.ndarray
    brows: np.ndarray
    brow_color: np.ndarray
    brow_lum: float
    brows_erase: np.ndarray
    skin_fill: np.ndarray
    skin: np.ndarray

    @classmethod
    def build(cls, painter: "TexturePainter", texture: np.ndarray,  # noqa: F821
              hair_coverage: np.ndarray | None = None) -> "BaseTextureFields":
        """hair_coverage: (N,) the person's hair per texel from the portrait's hair mask (a hair layer),
        bangs on the forehead included; None: guessed from colour on the hair regions."""
        from scipy import ndimage

        atlas, reg, S = painter.atlas, painter.reg, painter.size
        color = texture.reshape(-1, 3)[atlas.index].astype(np.float64) / 255.0
        lum = luminance(color)
        clip01 = lambda x: np.clip(x, 0.0, 1.0)  # noqa: E731

        # Reference skin: cheeks and nose away from lips, mouth, brows, eyes and hair. The portrait's hair
        # can cover half the face region's texels (a bob over the temples and the cheeks' sides): with
        # them, the median is a skin-hair blend (astronaut: 0.72, 0.59, 0.48 against 0.85, 0.71, 0.61).
        brow_zone = painter.brow_zone()
        plain = (clip01(reg["face"] + reg["nose"]) > 0.99) & (painter.lips < 0.01) & (painter.cavity < 0.01) \
            & (brow_zone < 0.01) & (painter.eye_w < 0.01) & (painter.lash < 0.05)
        if hair_coverage is not None:
            plain &= hair_coverage < 0.05
        if plain.sum() < 20:
            raise PerseError("the head's face region covers too few texels to read the skin colour from the "
                             "base texture; use a texture size of at least 256")
        skin_ref = np.median(color[plain], axis=0)

        # Hair: what looks like hair (far from the skin colour) on the scalp and back of the head, and on
        # the forehead above the procedural hairline. Skin between strands, a bare nape or temples stay
        # skin, so recolouring never tints skin (and a skin-tone change does reach it).
        if hair_coverage is not None:
            hair = clip01(hair_coverage * (1 - painter.eye_w) * (1 - painter.lips))
        else:
            hairness = hair_likeness(color, skin_ref)
            hair = clip01((clip01(reg["scalp"] + reg["back_of_head"]) + reg["forehead"] * painter.hair_density)
                          * hairness)

        # Skin with the brows left out, by normalized convolution in texture space (brows are small
        # and inside one UV island, so the blur does not mix far-apart surface).
        skin_w = clip01(sum(reg[r] for r in SKIN_REGIONS)) * (1 - painter.eye_w) * (1 - painter.lips) \
            * (1 - painter.cavity) * (1 - hair) * (1 - smoothstep(0.05, 0.3, brow_zone))
        sigma = max(2.0, 0.005 / painter.texel)
        img_w = np.zeros(S * S)
        img_w[atlas.index] = skin_w
        img_c = np.zeros((S * S, 3))
        img_c[atlas.index] = color * skin_w[:, None]
        den = ndimage.gaussian_filter(img_w.reshape(S, S), sigma).ravel()[atlas.index]
        num = np.stack([ndimage.gaussian_filter(img_c[:, k].reshape(S, S), sigma).ravel()[atlas.index]
                        for k in range(3)], axis=1)
        skin_fill = np.where(den[:, None] > 1e-3, num / np.maximum(den, 1e-3)[:, None], skin_ref[None])

        # The person's brows: clearly darker than the local skin (skin shading and pores stay above
        # ~85 % of it), inside the brow zone.
        brows = brow_zone * smoothstep(0.85, 0.65, lum / np.maximum(luminance(skin_fill), 1e-3))
        solid = brows > 0.5
        # Too few brow texels (very light or hidden brows): use the catalogue's natural brow colour.
        brow_color = np.median(color[solid], axis=0) if solid.sum() >= 10 else np.array(BROW_COLORS["natural"])

        # Skin-tone changes reach all skin, bare scalp skin (temples, nape) included, as in the procedural
        # path where the skin colour is the bottom layer everywhere.
        skin = clip01(sum(reg[r] for r in (*SKIN_REGIONS, "scalp", "back_of_head"))) * (1 - painter.eye_w) \
            * (1 - hair) * (1 - painter.cavity)
        return cls(painter=painter, color=color, lum=lum, skin_ref=skin_ref, hair=hair,
                   hair_lum=float(weighted_mean(lum, hair)), lips_lum=float(weighted_mean(lum, painter.lips)),
                   brow_zone=brow_zone, brows=brows, brow_color=brow_color,
                   brow_lum=float(weighted_mean(lum, brows)) if solid.sum() >= 10 else float(luminance(brow_color)),
                   brows_erase=brow_zone * grow(brows, atlas, 1.5), skin_fill=skin_fill, skin=skin)

    def paint(self, hair_v: str, beard_v: str, brow_v: str, lips_v: str, skin_v: str) -> np.ndarray:
        """(N, 3) colours: the base texture with every non-reference variant painted over it.

        Order: skin tone (a gain on the skin), lips, beard, eyebrows, hair; eyes stay the base's.
        """
        p = self.painter
        col = self.color.copy()
        gain = np.ones((col.shape[0], 3))
        if skin_v != "reference":
            # Per-channel gain that takes the person's median skin to the catalogue tone: pores,
            # shading and freckles scale with it (multiplicative detail is kept). A person already near
            # the catalogue's lighter tone still gets visibly lighter skin.
            tone = np.array(SKIN_TONES[skin_v])
            if skin_v == "lighter":
                tone = np.maximum(tone, self.skin_ref + LIGHTER_SHARE * (np.array(LIGHTER_TARGET) - self.skin_ref))
            g = np.clip(tone / np.maximum(self.skin_ref, 1e-3), 0.2, 5.0)
            gain = 1.0 + self.skin[:, None] * (g[None] - 1.0)
            col = col * gain
        if LIP_COLORS[lips_v] is not None:
            target = np.array(LIP_COLORS[lips_v])
            if lips_v == "pale":   # relative to this person's skin: a nude tone, lighter than the skin
                target = np.minimum(self.skin_ref * PALE_LIP_GAIN + PALE_LIP_LIFT, 0.97)
            lips = recolor_keep_luminance(self.lum, target, self.lips_lum)
            col = mix(col, lips, p.lips)
        col = p.apply_beard(col, beard_v)
        # Brow variants are defined against this person's brows, so that light brows can still get
        # visibly thicker (and darker) and dark ones lighter.
        if brow_v == "thick":
            col = p.apply_brows(col, self.brow_color * THICK_BROW_DARKEN, "thick")
        elif brow_v == "thin":
            # Erase the person's brows (a little beyond their hairs) with the surrounding skin, then draw
            # thin, defined ones; the skin around them keeps its own detail.
            col = mix(col, self.skin_fill * gain, self.brows_erase)
            col = p.apply_brows(col, self.brow_color * THICK_BROW_DARKEN, "thin")
        elif brow_v == "light":
            target = self.brow_color + LIGHT_BROW_SHARE * (np.array(LIGHT_BROW_TARGET) - self.brow_color)
            light = recolor_keep_luminance(self.lum, target, self.brow_lum)
            col = mix(col, light, self.brows_erase)
        if hair_v != "brown":
            col = mix(col, recolor_keep_luminance(self.lum, HAIR_COLORS[hair_v], self.hair_lum), self.hair)
        return np.clip(col, 0.0, 1.0)
