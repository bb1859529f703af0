"""``perse track IMAGE --out PARAMS.json [--overlay OUT.png]``: fit the head model to a photo's landmarks."""

from __future__ import annotations

import json
import os

from perse.errors import PerseError

IOD_NOTE = "distance between the outer eye corners (MediaPipe landmarks 33 and 263)"


def add_parser(sub) -> None:
    p = sub.add_parser("track", help="fit the head model to a portrait's MediaPipe landmarks",
                       epilog="example: perse track portrait.jpg --out params.json --overlay fit.png")
    p.add_argument("image", help="a photo with one (or more: the largest is used) face")
    p.add_argument("--out", required=True, help="output JSON: head parameters, camera, fit error")
    p.add_argument("--overlay", help="also draw the fitted mesh and landmarks over the photo (PNG)")
    p.add_argument("--flame", help="fit a FLAME file instead of the built-in head")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for --flame")
    p.set_defaults(func=run)


def run(args) -> int:
    track_command(args.image, args.out, overlay=args.overlay, flame=args.flame, flame_embedding=args.flame_embedding)
    return 0


def fit_record(image: str, image_size: tuple[int, int], model, detection, fit) -> dict:
    """The PARAMS.json content: image, image_size [W, H], params (HeadParams.to_dict), camera
    (Camera.to_dict), mean_error_px, mean_error_iod (fraction of the outer-eye-corner distance),
    num_faces, head (kind/name of the head model) and landmarks_px (the 478 detected landmarks)."""
    import numpy as np

    return {
        "image": image,
        "image_size": list(image_size),
        "params": fit.params.to_dict(),
        "camera": fit.camera.to_dict(),
        "mean_error_px": fit.mean_error_px,
        "mean_error_iod": fit.mean_error_iod,
        "num_faces": detection.num_faces,
        "head": {"kind": model.kind, "name": model.meta.get("name", "")},
        "iod": IOD_NOTE,
        "landmarks_px": np.round(detection.face.points, 3).tolist(),
    }


def track_command(image: str | os.PathLike, out: str | os.PathLike, overlay: str | os.PathLike | None = None,
                  flame: str | os.PathLike | None = None,
                  flame_embedding: str | os.PathLike | None = None) -> dict:
    """Fit the head model to the photo, write PARAMS.json (`fit_record`) and an overlay PNG if asked.

    Prints the fit quality; returns the JSON dict.
    """
    from perse.head.registry import load_head_model
    from perse.io_utils import atomic_write_text, check_writable_parent
    from perse.track import draw_fit_overlay, load_image, track_image
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
    result = fit_record(str(image), (w, h), model, detection, fit)
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
