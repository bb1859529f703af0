"""The outside-in report: every measure of `perse.eval` on one avatar and one portrait, as a dict (JSON)
and as a table.

    identity     dlib descriptor distance of the reference-view render and of it turned +-20 degrees
    silhouette   head silhouette IoU in the reference view, above the mouth corners
    attributes   per variant: pixels changed inside its region, fraction changed outside
    back_view    share of the back-of-head hair whose colour is not in the visible hair
"""

from __future__ import annotations

import numpy as np

from perse.avatar.model import Avatar
from perse.errors import PerseError
from perse.eval import attributes, backview, identity, portrait as portrait_mod, regions, silhouette, views
from perse.landmarks import FACE_SIDE
from perse.render.framing import yawed_camera

IDENTITY_YAWS = (20.0, -20.0)
TARGETS = {"identity_reference": 0.40, "identity_yaw20": 0.45, "silhouette_iou": 0.92,
           "inside_px_512": attributes.MIN_INSIDE_PX, "inside_px_512_studs": 30,
           "outside_fraction": attributes.MAX_OUTSIDE_FRACTION, "scattered_fraction": attributes.MAX_SCATTERED,
           "back_off_palette": backview.MAX_OFF_FRACTION}
COVERED_ALPHA = 0.02      # a pixel the render touches (the neck's faded end included)
PORTRAIT_MAX_SIDE = 1024  # the portrait is shrunk to this before dlib (its HOG detector is slow on huge photos)


def render_landmarks(view: views.View, what: str) -> np.ndarray:
    """(478, 2) MediaPipe landmarks of a render; PerseError naming `what` if MediaPipe finds no face."""
    return portrait_mod.face_landmarks(views.to_uint8(view.rgb), what)


def shrink(image: np.ndarray, max_side: int = PORTRAIT_MAX_SIDE) -> np.ndarray:
    """(H, W, 3) uint8, downscaled (area) so that its longer side is at most max_side."""
    import cv2

    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def identity_section(avatar: Avatar, photo: np.ndarray, size: int, backend: str) -> dict:
    """{"reference": d, "yaw+20": d, "yaw-20": d} descriptor distances to the photo (None where dlib finds
    no face), or {"error": message} without the optional extra or without a face in the photo."""
    try:
        target = identity.face_descriptor(shrink(photo))
    except identity.MissingExtra as exc:
        return {"error": str(exc)}
    if target is None:
        return {"error": "dlib finds no face in the portrait"}
    state = views.reference_state(avatar)
    camera = views.reference_head_camera(avatar, size)
    centre = views.head_centre(avatar, state)
    out = {}
    for name, yaw in (("reference", 0.0),) + tuple((f"yaw{y:+.0f}", y) for y in IDENTITY_YAWS):
        view = views.render_view(avatar, state, yawed_camera(camera, centre, yaw), backend)
        out[name] = identity.identity_distance(identity.face_descriptor(views.to_uint8(view.rgb)), target)
    return out


def silhouette_section(avatar: Avatar, photo: portrait_mod.Portrait, size: int, backend: str) -> dict:
    """Head silhouette IoU of the reference-view render against the portrait aligned into it."""
    view = views.render_view(avatar, views.reference_state(avatar), views.reference_head_camera(avatar, size),
                             backend)
    aligned = portrait_mod.align_portrait(photo, render_landmarks(view, "the reference-view render"), size)
    return silhouette.silhouette_iou(view.alpha, aligned.person, aligned.landmarks, aligned.valid)


def look_sections(avatar: Avatar, size: int, backend: str) -> dict:
    """{"attributes": [...], "back_view": {...}}: the front-view measures that need no portrait."""
    camera = views.front_camera(avatar, size)
    front = views.render_view(avatar, views.front_state(avatar), camera, backend)
    landmarks = render_landmarks(front, "the front-view render")
    by_category = regions.category_regions(landmarks, front.alpha > 0.5, covered=front.alpha > COVERED_ALPHA)
    rows = []
    for category, variant, look in views.variant_looks(avatar):
        region = by_category.get(category)
        if region is None:  # a category this measure has no landmark region for
            continue
        render = views.render_view(avatar, views.front_state(avatar, look), camera, backend)
        change = attributes.variant_change(front.rgb, render.rgb, region)
        rows.append({"category": category, "variant": variant, **attributes.judge(category, variant, change)})

    back = views.render_view(avatar, views.front_state(avatar), views.front_camera(avatar, size, 180.0), backend)
    hair_front = by_category["hair"].inside & (front.alpha > 0.5)
    ear_y = float(landmarks[[FACE_SIDE["R"], FACE_SIDE["L"]], 1].mean())
    hair_back = backview.back_hair_mask(back.alpha, ear_y)
    fraction = backview.off_palette_fraction(back.rgb[hair_back], backview.palette(front.rgb[hair_front]))
    return {"attributes": rows,
            "back_view": {"off_palette_fraction": fraction, "hair_pixels": int(hair_back.sum()),
                          "front_hair_pixels": int(hair_front.sum())}}


def measure_avatar(avatar: Avatar, photo: np.ndarray, size: int = 512, backend: str = "cpu",
                   source: str = "the portrait") -> dict:
    """Every outside-in measure of an avatar created from a portrait, against the (H, W, 3) uint8 photo.
    Raises PerseError when the photo has no face or the avatar has no reference view."""
    if not views.has_reference_view(avatar):
        raise PerseError("this avatar has no reference view (it was not created from a portrait): "
                         "measure it with a contact sheet or on a synthetic dataset instead", setting="sheet")
    photo = np.ascontiguousarray(photo[..., :3])
    person = portrait_mod.read_portrait(shrink(photo), source)
    return {"portrait": source, "size": size,
            "identity": identity_section(avatar, photo, size, backend),
            "silhouette": silhouette_section(avatar, person, size, backend),
            **look_sections(avatar, size, backend), "targets": TARGETS}


def _num(x, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def format_report(report: dict) -> str:
    """The report as a plain-text table, each figure with its target and a ✓/✗ mark."""
    t = report["targets"]
    mark = lambda ok: "ok " if ok else "MISS"  # noqa: E731
    lines = [f"outside-in report vs {report['portrait']} ({report['size']} px)", "", "identity distance (dlib, < 0.6 = same person)"]
    ident = report["identity"]
    if "error" in ident:
        lines.append(f"  skipped: {ident['error']}")
    else:
        for name, d in ident.items():
            limit = t["identity_reference"] if name == "reference" else t["identity_yaw20"]
            lines.append(f"  {name:<10} {_num(d)}   target <= {limit:.2f}  "
                         f"{mark(d is not None and d <= limit) if d is not None else 'no face found by dlib'}")
    s = report["silhouette"]
    lines += ["", "head silhouette above the mouth corners (reference view)",
              f"  IoU {_num(s['iou'])}  missing {_num(s['missing'])}  extra {_num(s['extra'])}   "
              f"target >= {t['silhouette_iou']:.2f}  {mark(s['iou'] is not None and s['iou'] >= t['silhouette_iou'])}"]
    lines += ["", "attribute variants at weight 1 (front view; inside: px changed > 0.15 at 512^2, "
              "outside: fraction changed > 0.06)",
              f"  {'variant':<22} {'inside px':>10} {'outside %':>10} {'scattered %':>12}   visible local solid"]
    for r in report["attributes"]:
        lines.append(f"  {r['category'] + '=' + r['variant']:<22} {r['inside_px_512']:>10.0f} "
                     f"{100 * r['outside_fraction']:>9.2f}% {100 * r['scattered_fraction']:>11.0f}%   "
                     f"{mark(r['visible']):<7} {mark(r['local']):<5} {'-' if r['solid'] is None else mark(r['solid'])}")
    rows = report["attributes"]
    judged = [r for r in rows if r["solid"] is not None]
    lines.append(f"  visible {sum(r['visible'] for r in rows)}/{len(rows)}, local {sum(r['local'] for r in rows)}/"
                 f"{len(rows)}, solid {sum(r['solid'] for r in judged)}/{len(judged)}")
    b = report["back_view"]
    lines += ["", "back view (180 degrees): hair pixels > 10 dE from every visible hair colour",
              f"  {100 * b['off_palette_fraction']:.2f}% of {b['hair_pixels']} px   target <= "
              f"{100 * t['back_off_palette']:.0f}%  {mark(b['off_palette_fraction'] <= t['back_off_palette'])}"]
    return "\n".join(lines)
