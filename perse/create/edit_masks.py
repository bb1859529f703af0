"""Edit masks for `perse create`'s portrait editors: where each attribute category lies in the portrait.

The fitted head is rendered from the fitted camera with one label per head region
(`portrait_label_image`), so a category's mask is exactly where its regions
(`perse.synth.variants.CATEGORIES`) lie in the portrait, dilated a little to take the borders of hair
and beards (`category_region_mask`); hair and hats also take the person's pixels just off the scalp
(hair volume, from the selfie segmentation). `portrait_edit_masks` gives every category's mask for a
portrait. The editors that use them: `perse.create.editors`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from perse.errors import PerseError

MASK_DILATION = 0.015         # of the portrait side: takes the borders of hair, beards and brows
HAIR_REACH = 0.2              # of the head's width: how far off the scalp hair volume is taken into the mask


def region_mask(labels: np.ndarray, region_ids: Sequence[int], dilation_px: int) -> np.ndarray:
    """(H, W) bool: pixels whose label (region id + 1, 0 = background) is one of `region_ids`, dilated
    by `dilation_px` (8-connected steps)."""
    from scipy import ndimage

    mask = np.isin(labels, np.asarray(region_ids, dtype=np.int64) + 1)
    if dilation_px > 0 and mask.any():
        mask = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(2, 2),
                                       iterations=int(dilation_px))
    return mask


def portrait_label_image(head, fit, renderer=None) -> np.ndarray:
    """(H, W) int32: region id + 1 of the fitted head at each portrait pixel (0 = not the head).

    fit: params (batch 1) and camera (the portrait's size) of `perse.track.fit_head`."""
    import torch

    from perse.render.gl import Lighting, Mesh, MeshRenderer
    from perse.synth.anatomy import head_anatomy

    anatomy = head_anatomy(head)
    with torch.no_grad():
        verts = head(fit.params).vertices[0].detach().cpu().numpy().astype(np.float32)
    mesh = Mesh(vertices=verts, faces=anatomy.faces, face_labels=(anatomy.face_regions() + 1).astype(np.int32))
    own = renderer is None
    renderer = MeshRenderer() if own else renderer
    try:
        return renderer.render([mesh], fit.camera, lighting=Lighting(unlit=True)).labels.copy()
    finally:
        if own:
            renderer.close()


def category_region_mask(labels: np.ndarray, region_names: Sequence[str], category,
                         foreground: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool portrait mask of `category` (a `Category`): its regions, dilated by MASK_DILATION of
    the image side. With the photo's person mask `foreground` (H, W) in [0, 1], categories on the scalp
    (hair, hat) also take the person pixels off the head within HAIR_REACH of the scalp: the hair volume
    that stands out of the head surface, so that the edit recolours all of the hair, not a skull cap.
    PerseError if the category names a region the head lacks or is not visible."""
    from scipy import ndimage

    names = list(region_names)
    unknown = [r for r in category.regions if r not in names]
    if unknown:
        raise PerseError(f"category '{category.name}' needs head region(s) {unknown} that this head model lacks; "
                         "use the built-in head")
    ids = [names.index(r) for r in category.regions]
    dilation = max(1, int(round(MASK_DILATION * max(labels.shape))))
    mask = region_mask(labels, ids, dilation)
    if not mask.any():
        raise PerseError(f"the regions of '{category.name}' ({', '.join(category.regions)}) are not visible in "
                         "the portrait; use a frontal portrait")
    if foreground is not None and "scalp" in category.regions:
        scalp = region_mask(labels, [names.index(r) for r in ("scalp", "back_of_head") if r in names], 0)
        cols = np.nonzero((labels > 0).any(axis=0))[0]
        if scalp.any() and cols.size:
            reach = HAIR_REACH * float(cols[-1] - cols[0] + 1)
            near = ndimage.distance_transform_edt(~scalp) <= reach
            mask |= near & (labels == 0) & (foreground > 0.5)
    return mask


def portrait_edit_masks(head, fit, portrait: np.ndarray, categories: Sequence, renderer=None
                        ) -> dict[str, np.ndarray]:
    """{category name: (H, W) bool} edit masks of `categories` in the portrait `fit` was made on: the
    fitted head's region labels (`portrait_label_image`) and the photo's person mask (MediaPipe selfie
    segmentation), combined by `category_region_mask`."""
    from perse.create.portrait_texture import segment_person

    labels = portrait_label_image(head, fit, renderer)
    if labels.shape != portrait.shape[:2]:
        raise PerseError(f"the fit's camera is {labels.shape[1]}x{labels.shape[0]} but the portrait is "
                         f"{portrait.shape[1]}x{portrait.shape[0]}; fit the head on this very image")
    foreground = segment_person(portrait)
    return {c.name: category_region_mask(labels, head.region_names, c, foreground) for c in categories}
