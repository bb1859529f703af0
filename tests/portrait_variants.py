"""The one real photo at hand, varied: the astronaut mirrored, cropped off-centre (3/4 framing) and
scaled, so tests of portrait code never fit a single image."""

from __future__ import annotations

import numpy as np

FRAMINGS = ("original", "mirror", "offcentre", "small")


def reframed(image: np.ndarray, name: str) -> np.ndarray:
    """Variants of a portrait: mirrored, cropped to a 3/4 framing (face off-centre), scaled."""
    from PIL import Image

    if name == "mirror":
        return np.ascontiguousarray(image[:, ::-1])
    if name == "offcentre":
        crop = image[0:400, 112:512]
        return np.asarray(Image.fromarray(crop).resize((448, 448), Image.Resampling.LANCZOS))
    if name == "small":
        return np.asarray(Image.fromarray(image).resize((384, 384), Image.Resampling.LANCZOS))
    return image


def textured_case(name: str, head, renderer, size: int = 256):
    """(image, face, fit, portrait_texture result) for the astronaut in framing `name`: detected, fitted
    and textured with its landmarks (so with the hair layer)."""
    import skimage.data

    from perse.create.portrait_texture import portrait_texture
    from perse.track import detect_largest_face, fit_head

    image = reframed(skimage.data.astronaut(), name)
    face = detect_largest_face(image, name).face
    fit = fit_head(head, face.points, (image.shape[1], image.shape[0]))
    return image, face, fit, portrait_texture(image, head, fit, size=size, renderer=renderer, landmarks=face.points)
