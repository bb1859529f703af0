"""`perse create`: one portrait in, an editable, animatable avatar out.

Stages (each writes its result into the work folder and a ``stages.json`` record, so ``--resume``
skips what is done; Ctrl-C during training saves a checkpoint that ``--resume`` continues from):

    detect    load the photo (EXIF, any colour mode), square-crop around the largest face, landmarks
    fit       robust fit of the head model (shape, expression, jaw, eyes, pose, focal length)
    texture   portrait texture: background removed, photo projected on the head, unseen parts completed
    dataset   synthetic attribute dataset of this person (portrait texture + identity shape); with
              ``editor="diffusers:PATH"`` the portrait is first edited per attribute variant by a local
              inpainting pipeline (`perse.create.editors`; edits and their textures are kept in
              ``WORK/edits/``) and each edit's texture is that variant's look
    train     Gaussian avatar with the attribute latent space
    evaluate  held-out PSNR/SSIM of the dataset, and the reference view against the portrait
    save      the avatar, with the portrait's fitted parameters and camera as its reference view
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from perse.errors import PerseError
from perse.io_utils import atomic_write_text, check_writable_parent
from perse.synth.hair import HairLayer

STAGES = ("detect", "fit", "texture", "dataset", "train", "evaluate", "save")
# Large photos: the square crop spans at most this many outer-eye-corner distances (a head-and-shoulders
# framing; a small face in a big photo is not shrunk away), then is resized to at most PORTRAIT_MAX_SIDE
# pixels before fitting and texturing (memory and time stay bounded; the texture is at most 1024 texels).
CROP_MAX_EYE_SPANS = 12.0
PORTRAIT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Quality:
    name: str
    image_size: int            # dataset frames
    frames_per_variant: int
    texture_size: int
    cpu_steps: int
    cuda_steps: int
    num_gaussians: int
    # rough stage costs in seconds on the 2-core CPU, for the overall ETA before a stage has run
    expected_s: tuple[float, ...]


QUALITIES = {
    "draft": Quality("draft", 256, 8, 512, 2500, 6000, 12000, (3, 2, 8, 25, 420, 20, 2)),
    "standard": Quality("standard", 256, 24, 1024, 6000, 15000, 16000, (3, 2, 10, 60, 900, 30, 2)),
    "high": Quality("high", 512, 32, 1024, 12000, 30000, 40000, (3, 2, 12, 200, 3600, 60, 2)),
}


def square_crop_box(face_points: np.ndarray, width: int, height: int,
                    max_side: int | None = None) -> tuple[int, int, int]:
    """(x0, y0, side) of the largest square inside the image (at most `max_side`) centred on the face as
    far as possible."""
    side = min(width, height) if max_side is None else max(1, min(width, height, int(max_side)))
    cx, cy = face_points.mean(axis=0)
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side


class StageLog:
    """Prints one line per stage with elapsed time and the overall ETA; remembers finished stages."""

    def __init__(self, work: Path, quality: Quality, print_fn: Callable[[str], None] = print,
                 cancel: Callable[[], bool] | None = None,
                 on_progress: Callable[[str, float], None] | None = None):
        self.path = work / "stages.json"
        self.quality = quality
        self.print = print_fn
        self.cancel = cancel
        self.on_progress = on_progress
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.t0 = time.perf_counter()

    def is_done(self, stage: str) -> bool:
        return stage in self.done

    def eta(self, stage: str) -> float:
        i = STAGES.index(stage)
        return sum(self.quality.expected_s[j] for j in range(i, len(STAGES)) if STAGES[j] not in self.done)

    def progress(self, stage: str, within: float = 0.0) -> None:
        """Report overall progress: finished stages plus `within` (0..1) of `stage`, weighted by cost."""
        if self.on_progress is None:
            return
        costs = self.quality.expected_s
        i = STAGES.index(stage)
        done = sum(costs[:i]) + within * costs[i]
        self.on_progress(stage, done / sum(costs))

    def start(self, stage: str) -> float:
        if self.cancel is not None and self.cancel():
            raise KeyboardInterrupt(f"cancelled before {stage}")
        self.progress(stage)
        i = STAGES.index(stage)
        self.print(f"[{i + 1}/{len(STAGES)}] {stage} ... (about {self.eta(stage) / 60:.0f} min left overall)")
        return time.perf_counter()

    def finish(self, stage: str, started: float, **info) -> None:
        self.done[stage] = {"seconds": round(time.perf_counter() - started, 1), **info}
        atomic_write_text(self.path, json.dumps(self.done, indent=1))
        self.print(f"      {stage} done in {self.done[stage]['seconds']} s")


def _no_litter(create: Callable[..., dict]) -> Callable[..., dict]:
    """A refused or cancelled run that finished no stage removes the work folder it created: nothing
    in it is needed by ``--resume``. Folders that existed before, or hold a finished stage, stay."""
    signature = inspect.signature(create)

    @functools.wraps(create)
    def run(*args, **kwargs) -> dict:
        bound = signature.bind(*args, **kwargs)
        work, out = bound.arguments.get("work"), Path(bound.arguments["out"])
        folder = Path(work) if work else out.with_name(out.name + ".work")
        existed = folder.exists()
        try:
            return create(*args, **kwargs)
        except (PerseError, KeyboardInterrupt):
            if not existed and folder.is_dir() and not (folder / "stages.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
            raise
    return run


@_no_litter
def create_avatar(portrait: str | Path, out: str | Path, quality: str | Quality = "draft", device: str = "auto",
                  flame: str | None = None, flame_embedding: str | None = None, work: str | Path | None = None,
                  resume: bool = False, seed: int = 0, print_fn: Callable[[str], None] = print,
                  cancel: Callable[[], bool] | None = None,
                  on_progress: Callable[[str, float], None] | None = None, editor="builtin") -> dict:
    """Run every stage; returns the summary (paths, fit error, evaluation, editor).

    cancel: polled between stages, every training step and every editor step; True stops with
        KeyboardInterrupt, keeping finished stages (a training checkpoint, finished edits) for ``resume=True``.
    on_progress(stage, fraction): overall progress in [0, 1] for a UI.
    editor: "builtin" (the procedural painter) | "diffusers:PATH" (a local inpainting pipeline folder) |
        an `EditorSpec` | an `AttributeEditor` (e.g. a `DiffusersEditor` with fewer steps or categories).
    """
    import imageio.v2 as imageio

    from perse.create.editors import AttributeEditor, parse_editor_spec
    from perse.head.registry import load_head_model
    from perse.render import resolve_backend
    from perse.track import detect_largest_face, fit_head, load_image

    if isinstance(quality, Quality):
        q = quality
    elif quality in QUALITIES:
        q = QUALITIES[quality]
    else:
        raise PerseError(f"unknown --quality '{quality}'; choose one of: {', '.join(QUALITIES)}")
    out = check_writable_parent(out)
    if out.suffix != ".perse":
        raise PerseError(f"--out {out} must end in .perse")
    backend = resolve_backend({"auto": "auto", "cpu": "cpu", "cuda": "gsplat"}.get(device, device))
    editor_spec = editor.spec if isinstance(editor, AttributeEditor) else parse_editor_spec(editor)
    work = Path(work) if work else out.with_name(out.name + ".work")
    if work.exists() and not resume and any(work.iterdir()):
        raise PerseError(f"work folder {work} exists: pass --resume to continue it, or delete it")
    work.mkdir(parents=True, exist_ok=True)
    log = StageLog(work, q, print_fn, cancel, on_progress)
    made_with = log.done.get("dataset", {}).get("editor", "builtin")
    if log.is_done("dataset") and made_with != str(editor_spec):
        raise PerseError(f"{work} holds a dataset made with --editor {made_with}; resume with that editor, "
                         "or delete the work folder to start over")
    head = load_head_model(flame, flame_embedding)
    if head.uvs is None or not head.region_names:
        raise PerseError(f"{head.meta.get('name', 'this head model')} has no texture layout or regions, which "
                         "portrait texturing needs; use the built-in head (omit --flame)")
    photo_path = work / "portrait.png"

    # -- detect -------------------------------------------------------------------------------
    if not log.is_done("detect"):
        t = log.start("detect")
        image = load_image(portrait)
        detection = detect_largest_face(image, str(portrait))
        h, w = image.shape[:2]
        max_side = int(np.ceil(CROP_MAX_EYE_SPANS * detection.face.eye_corner_distance))
        x0, y0, side = square_crop_box(detection.face.points, w, h, max_side)
        square = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
        del image  # a large photo is not kept in memory through the later stages
        if detection.num_faces > 1:
            print_fn(f"      {detection.num_faces} faces found; using the largest")
        if side > PORTRAIT_MAX_SIDE:
            from PIL import Image

            square = np.asarray(Image.fromarray(square).resize((PORTRAIT_MAX_SIDE, PORTRAIT_MAX_SIDE),
                                                               Image.Resampling.LANCZOS))
            print_fn(f"      portrait crop of {side} px resized to {PORTRAIT_MAX_SIDE} px")
        imageio.imwrite(photo_path, square)
        log.finish("detect", t, num_faces=detection.num_faces, crop=[x0, y0, side], size=int(square.shape[0]),
                   source=str(portrait))
    square = imageio.imread(photo_path)

    # -- fit ----------------------------------------------------------------------------------
    fit_path = work / "fit.json"
    if not log.is_done("fit"):
        t = log.start("fit")
        detection = detect_largest_face(square, str(portrait))
        fit = fit_head(head, detection.face.points, (square.shape[1], square.shape[0]))
        atomic_write_text(fit_path, json.dumps({"params": fit.params.to_dict(), "camera": fit.camera.to_dict(),
                                                "mean_error_px": fit.mean_error_px,
                                                "mean_error_iod": fit.mean_error_iod,
                                                "landmarks_px": detection.face.points.tolist()}))
        print_fn(f"      landmark fit: {fit.mean_error_px:.2f} px = {100 * fit.mean_error_iod:.2f}% of the "
                 f"inter-ocular distance")
        log.finish("fit", t, mean_error_px=fit.mean_error_px, mean_error_iod=fit.mean_error_iod)
    fit_data = json.loads(fit_path.read_text())
    fit = _fit_from_json(fit_data)

    # -- texture ------------------------------------------------------------------------------
    texture_path = work / "texture.png"
    hair_path = work / "hair_layer.npz"
    if not log.is_done("texture"):
        from perse.create.portrait_texture import portrait_texture

        t = log.start("texture")
        result = portrait_texture(square, head, fit, size=q.texture_size,
                                  landmarks=np.asarray(fit_data["landmarks_px"], dtype=np.float64))
        for note in result.notes:
            print_fn(f"      {note}")
        result.hair.save(hair_path)
        imageio.imwrite(texture_path, result.texture)
        imageio.imwrite(work / "texture_observed.png", (np.clip(result.observed, 0, 1) * 255).astype(np.uint8))
        log.finish("texture", t, hair_reliable=result.hair.reliable, notes=result.notes)
    texture = imageio.imread(texture_path)[..., :3]
    hair_layer = HairLayer.load(hair_path, head.num_vertices) if hair_path.exists() else None

    # -- dataset ------------------------------------------------------------------------------
    dataset_dir = work / "dataset"
    if not log.is_done("dataset"):
        from perse.render.gl import MeshRenderer
        from perse.synth.generator import generate_dataset

        t = log.start("dataset")
        with MeshRenderer() as renderer:
            variant_textures = _edited_variant_textures(editor, editor_spec, device, square, head, fit, q, work,
                                                        seed, renderer, log, print_fn)
            generate_dataset(dataset_dir, head, num_frames_per_variant=q.frames_per_variant,
                             image_size=q.image_size, seed=seed, overwrite=True, texture_size=q.texture_size,
                             base_texture=texture, identity_shape=fit.params.shape[0],
                             reference_camera=fit.camera.resized(q.image_size, q.image_size),
                             reference_params=fit.params, renderer=renderer, variant_textures=variant_textures,
                             hair_layer=hair_layer)
        log.finish("dataset", t, editor=str(editor_spec), edited=[f"{c}/{v}" for c, v in variant_textures])

    # -- train --------------------------------------------------------------------------------
    trained = work / "trained.perse"
    if not log.is_done("train"):
        from perse.synth.dataset import AttributeDataset
        from perse.train.trainer import Trainer, TrainConfig, new_avatar_for_dataset

        t = log.start("train")
        dataset = AttributeDataset(dataset_dir, cache=True)
        train_device = "cuda" if backend == "gsplat" else "cpu"
        ckpt = work / "train.ckpt"
        if resume and ckpt.exists():
            trainer = Trainer.from_checkpoint(ckpt, dataset, train_device)
            print_fn(f"      resuming training at step {trainer.step}")
        else:
            cfg = TrainConfig.preset("cuda" if train_device == "cuda" else "cpu")
            cfg.steps = q.cuda_steps if train_device == "cuda" else q.cpu_steps
            cfg.num_gaussians, cfg.backend, cfg.seed = q.num_gaussians, backend, seed
            trainer = Trainer(new_avatar_for_dataset(dataset, cfg, head), dataset, cfg, train_device)
        steps = trainer.cfg.steps
        trainer.run(trained, ckpt, on_step=lambda step, _: log.progress("train", step / steps),
                    should_stop=cancel)
        ckpt.unlink(missing_ok=True)
        log.finish("train", t, steps=trainer.step, gaussians=trainer.avatar.num_gaussians)

    # -- evaluate -----------------------------------------------------------------------------
    from perse.avatar.io import load_avatar, save_avatar

    avatar = load_avatar(trained)
    avatar.meta["reference_view"] = {"camera": fit.camera.to_dict(), "params": fit.params.to_dict(),
                                     "portrait": str(portrait)}
    if not log.is_done("evaluate"):
        from perse.synth.dataset import AttributeDataset
        from perse.train.evaluate import evaluate

        t = log.start("evaluate")
        report = evaluate(avatar, AttributeDataset(dataset_dir), backend=backend)
        report["reference_view"] = reference_view_quality(avatar, square, np.array(fit_data["landmarks_px"]),
                                                          backend)
        atomic_write_text(work / "evaluation.json", json.dumps(report, indent=1))
        log.finish("evaluate", t, psnr=report["psnr"], ssim=report["ssim"],
                   reference_psnr_face=report["reference_view"]["psnr_face"])
    report = json.loads((work / "evaluation.json").read_text())

    # -- save ---------------------------------------------------------------------------------
    t = log.start("save")
    training = dict(avatar.meta.get("training", {}))
    training["create"] = {"quality": q.name, "portrait": str(portrait), "fit_error_iod": fit_data["mean_error_iod"],
                          "editor": log.done["dataset"].get("editor", "builtin"),
                          "heldout_psnr": report["psnr"], "heldout_ssim": report["ssim"],
                          "reference_psnr_face": report["reference_view"]["psnr_face"]}
    save_avatar(avatar, out, training=training)
    log.finish("save", t)
    print_fn(f"held-out PSNR {report['psnr']} dB, SSIM {report['ssim']}; reference view PSNR (face) "
             f"{report['reference_view']['psnr_face']:.2f} dB")
    print_fn(f"wrote {out} (work files in {work})")
    return {"out": str(out), "work": str(work), "quality": asdict(q), "evaluation": report,
            "fit_error_iod": fit_data["mean_error_iod"], "editor": log.done["dataset"].get("editor", "builtin"),
            "edited": log.done["dataset"].get("edited", [])}


def _edited_variant_textures(editor, spec, device: str, portrait: np.ndarray, head, fit, q: Quality, work: Path,
                             seed: int, renderer, log: StageLog, print_fn) -> dict:
    """The dataset stage's editor step: {(category, variant): texture} of the portrait edits (empty for
    the built-in editor). Edits and textures are PNGs in WORK/edits, so --resume does not redo them."""
    from perse.create.editors import AttributeEditor, edit_portraits, edited_textures, make_editor
    from perse.synth.variants import CATEGORIES

    if spec.kind == "builtin":
        return {}
    ed = editor if isinstance(editor, AttributeEditor) else make_editor(spec, device=device)
    pairs = ed.variants(CATEGORIES)
    print_fn(f"      editor {spec}: {len(pairs)} portrait edits")
    folder = work / "edits"
    edits = edit_portraits(ed, portrait, head, fit, CATEGORIES, folder, seed=seed, cancel=log.cancel,
                           on_fraction=lambda f: log.progress("dataset", 0.5 * f), renderer=renderer)
    return edited_textures(edits, head, fit, q.texture_size, folder, seed=seed, renderer=renderer,
                           cancel=log.cancel)


def _fit_from_json(data: dict):
    """A FitResult-like object (params, camera) from fit.json."""
    from types import SimpleNamespace

    from perse.head.model import HeadParams
    from perse.render.camera import Camera

    return SimpleNamespace(params=HeadParams.from_dict(data["params"]), camera=Camera.from_dict(data["camera"]),
                           mean_error_px=data["mean_error_px"], mean_error_iod=data["mean_error_iod"])


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama: the similarity transform (scale, rotation, translation) of src (N, 2) best matching dst,
    applied to src."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.diag([1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    scale = np.trace(np.diag(S) @ D) / a.var(0).sum()
    return scale * a @ R.T + mu_d


@torch.no_grad()
def reference_view_quality(avatar, portrait: np.ndarray, portrait_landmarks: np.ndarray, backend: str) -> dict:
    """Render the reference view at the portrait's size; PSNR inside the face oval of the portrait's
    landmarks, and whether MediaPipe finds
    the face in the render with landmarks matching the portrait's (after similarity alignment)."""
    from perse.track import detect_largest_face
    from perse.avatar.model import AvatarState
    from perse.render import render
    from perse.render.camera import Camera
    from perse.train.losses import psnr

    ref = avatar.meta["reference_view"]
    cam = Camera.from_dict(ref["camera"])
    state = avatar.reference_state()
    img = render(avatar.gaussians(AvatarState(state.head, None)), cam, backend=backend,
                 background=torch.zeros(3)).rgb.clamp(0, 1)
    target = torch.from_numpy(portrait[..., :3].astype(np.float32) / 255.0)
    mask = landmark_hull_mask(portrait_landmarks, cam.width, cam.height)
    result = {"psnr_face": psnr(img, target, mask), "face_pixels": int(mask.sum())}
    try:
        found = detect_largest_face((img.numpy() * 255 + 0.5).astype(np.uint8), "the reference render").face.points
    except PerseError:
        return {**result, "face_found": False, "landmark_error_iod": None}
    aligned = similarity_align(found, portrait_landmarks)
    iod = float(np.linalg.norm(portrait_landmarks[33] - portrait_landmarks[263]))
    error = float(np.linalg.norm(aligned - portrait_landmarks, axis=1).mean()) / iod
    return {**result, "face_found": True, "landmark_error_iod": error}


def landmark_hull_mask(landmarks: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(H, W) bool: inside the convex hull of a face's MediaPipe landmarks (the face oval: forehead to
    chin, cheek to cheek) — "inside the face" as the portrait's own landmarks define it."""
    from matplotlib.path import Path as PolyPath  # installed with scikit-image's dependencies
    from scipy.spatial import ConvexHull

    hull = landmarks[ConvexHull(landmarks).vertices]
    ys, xs = np.mgrid[0:height, 0:width]
    inside = PolyPath(hull).contains_points(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(height, width)
    return torch.from_numpy(inside)

