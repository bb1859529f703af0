"""The stages of `perse create`, as objects that `perse.create.pipeline.create_avatar` walks in order.

A stage reads what earlier stages left in the work folder (through `CreateContext`, which loads each
result once) and writes its own `outputs` there. What a stage returns is recorded in the stage log
(`StageLog`, ``stages.json``), which is how ``--resume`` knows it is done. The driver removes the
`outputs` of a stage that does not finish (cancelled, or failed), so a stopped run leaves only the
finished stages' files, the log, and each stage's `keeps`: partial work the stage itself continues
from on ``--resume`` (the training checkpoint, finished portrait edits).

The work folder (these names are the ``--resume`` format: an older work folder keeps working)::

    stages.json                                         the stage log
    portrait.png                                        detect
    fit.json                                            fit
    texture.png  texture_observed.png  hair_layer.npz   texture
    dataset/                    (keeps: edits/)         dataset
    trained.perse               (keeps: train.ckpt)     train
    evaluation.json                                     evaluate
    (the avatar itself is written to the output path)   save
"""

from __future__ import annotations

import abc
import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from perse.create.quality import Quality
from perse.create.stage_log import StageLog
from perse.errors import PerseError

if TYPE_CHECKING:
    from perse.avatar.model import Avatar
    from perse.create.editors import EditorSpec
    from perse.head.model import HeadModel
    from perse.synth.hair import HairLayer

# Large photos: the square crop spans at most this many outer-eye-corner distances (a head-and-shoulders
# framing; a small face in a big photo is not shrunk away), then is resized to at most PORTRAIT_MAX_SIDE
# pixels before fitting and texturing (memory and time stay bounded; the texture is at most 1024 texels).
CROP_MAX_EYE_SPANS = 12.0
PORTRAIT_MAX_SIDE = 1024

# Work-folder names, one place for the stages that write them and the context that reads them.
PORTRAIT_FILE = "portrait.png"
FIT_FILE = "fit.json"
TEXTURE_FILE = "texture.png"
OBSERVED_FILE = "texture_observed.png"
HAIR_FILE = "hair_layer.npz"
DATASET_DIR = "dataset"
EDITS_DIR = "edits"
TRAINED_FILE = "trained.perse"
CHECKPOINT_FILE = "train.ckpt"
EVALUATION_FILE = "evaluation.json"


def square_crop_box(face_points: np.ndarray, width: int, height: int,
                    max_side: int | None = None) -> tuple[int, int, int]:
    """(x0, y0, side) of the largest square inside the image (at most `max_side`) centred on the face as
    far as possible."""
    side = min(width, height) if max_side is None else max(1, min(width, height, int(max_side)))
    cx, cy = face_points.mean(axis=0)
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side


def fit_from_json(data: dict) -> SimpleNamespace:
    """A FitResult-like object (params, camera, errors) from the contents of fit.json."""
    from perse.head.model import HeadParams
    from perse.render.camera import Camera

    return SimpleNamespace(params=HeadParams.from_dict(data["params"]), camera=Camera.from_dict(data["camera"]),
                           mean_error_px=data["mean_error_px"], mean_error_iod=data["mean_error_iod"])


@dataclass
class CreateContext:
    """One run of `perse create`: its settings, and the earlier stages' results read from the work folder.

    The results are loaded on first use and kept, so a resumed run reads only what its remaining
    stages need.
    """

    source: Path                 # the user's photo
    out: Path                    # the .perse to write
    work: Path
    quality: Quality
    head: HeadModel
    backend: str                 # render backend ("cpu" | "gsplat")
    device: str                  # as asked ("auto" | "cpu" | "cuda" | a backend name)
    editor: object               # as passed: "builtin", "diffusers:PATH", an EditorSpec or AttributeEditor
    editor_spec: EditorSpec
    seed: int
    resume: bool
    log: StageLog

    def path(self, name: str) -> Path:
        return self.work / name

    def print(self, line: str) -> None:
        self.log.print(line)

    @cached_property
    def portrait(self) -> np.ndarray:
        """(S, S, 3) uint8: the square portrait crop (detect)."""
        import imageio.v2 as imageio

        return imageio.imread(self.path(PORTRAIT_FILE))

    @cached_property
    def fit_data(self) -> dict:
        """fit.json: params, camera, errors and the portrait's (478, 2) landmarks ``landmarks_px`` (fit)."""
        return json.loads(self.path(FIT_FILE).read_text())

    @cached_property
    def fit(self) -> SimpleNamespace:
        return fit_from_json(self.fit_data)

    @property
    def landmarks(self) -> np.ndarray:
        """(478, 2) float64: the portrait's landmarks in pixels."""
        return np.asarray(self.fit_data["landmarks_px"], dtype=np.float64)

    @cached_property
    def texture(self) -> np.ndarray:
        """(T, T, 3) uint8: the portrait texture in the head's UV layout (texture)."""
        import imageio.v2 as imageio

        return imageio.imread(self.path(TEXTURE_FILE))[..., :3]

    @cached_property
    def hair_layer(self) -> HairLayer | None:
        """The person's hair layer (texture); None in work folders made before it existed."""
        from perse.synth.hair import HairLayer

        path = self.path(HAIR_FILE)
        return HairLayer.load(path, self.head.num_vertices) if path.exists() else None

    @cached_property
    def avatar(self) -> Avatar:
        """The trained avatar (train), with the portrait's fit as its reference view."""
        from perse.avatar.io import load_avatar

        avatar = load_avatar(self.path(TRAINED_FILE))
        avatar.meta["reference_view"] = {"camera": self.fit.camera.to_dict(), "params": self.fit.params.to_dict(),
                                         "portrait": str(self.source)}
        return avatar

    @cached_property
    def evaluation(self) -> dict:
        """evaluation.json (evaluate)."""
        return json.loads(self.path(EVALUATION_FILE).read_text())

    @property
    def editor_used(self) -> str:
        """The editor the dataset was made with, as the stage log recorded it."""
        return self.log.done["dataset"].get("editor", "builtin")


class Stage(abc.ABC):
    """One step of `perse create`.

    name: its entry in the stage log. inputs: work-folder names it reads (earlier stages' outputs).
    outputs: names it writes; removed when the stage does not finish. keeps: names of partial work the
    stage resumes from itself; left in place when it does not finish.
    """

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    keeps: ClassVar[tuple[str, ...]] = ()

    def is_done(self, log: StageLog) -> bool:
        return log.is_done(self.name)

    @abc.abstractmethod
    def run(self, ctx: CreateContext) -> dict:
        """Do the work, writing `outputs`; returns what the stage log records for this stage."""

    def check_inputs(self, work: Path) -> None:
        """One-line error when an input is missing (a work folder changed by hand)."""
        for name in self.inputs:
            if not (work / name).exists():
                raise PerseError(f"{work} has no {name}, which the {self.name} stage needs; delete the work "
                                 "folder to start over")

    def discard(self, work: Path) -> None:
        """Remove this stage's outputs (what an unfinished run of it may have left)."""
        for name in self.outputs:
            path = work / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


class DetectStage(Stage):
    """Load the photo (EXIF, any colour mode), square-crop around the largest face, limit its size."""

    name = "detect"
    outputs = (PORTRAIT_FILE,)

    def run(self, ctx: CreateContext) -> dict:
        import imageio.v2 as imageio

        from perse.track import detect_largest_face, load_image

        image = load_image(ctx.source)
        detection = detect_largest_face(image, str(ctx.source))
        h, w = image.shape[:2]
        max_side = int(np.ceil(CROP_MAX_EYE_SPANS * detection.face.eye_corner_distance))
        x0, y0, side = square_crop_box(detection.face.points, w, h, max_side)
        square = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
        del image  # a large photo is not kept in memory through the later stages
        if detection.num_faces > 1:
            ctx.print(f"      {detection.num_faces} faces found; using the largest")
        if side > PORTRAIT_MAX_SIDE:
            from PIL import Image

            square = np.asarray(Image.fromarray(square).resize((PORTRAIT_MAX_SIDE, PORTRAIT_MAX_SIDE),
                                                               Image.Resampling.LANCZOS))
            ctx.print(f"      portrait crop of {side} px resized to {PORTRAIT_MAX_SIDE} px")
        imageio.imwrite(ctx.path(PORTRAIT_FILE), square)
        return {"num_faces": detection.num_faces, "crop": [x0, y0, side], "size": int(square.shape[0]),
                "source": str(ctx.source)}


class FitStage(Stage):
    """Robust fit of the head model (shape, expression, jaw, eyes, pose, focal length) to the portrait."""

    name = "fit"
    inputs = (PORTRAIT_FILE,)
    outputs = (FIT_FILE,)

    def run(self, ctx: CreateContext) -> dict:
        from perse.io_utils import atomic_write_text
        from perse.track import detect_largest_face, fit_head

        square = ctx.portrait
        detection = detect_largest_face(square, str(ctx.source))
        fit = fit_head(ctx.head, detection.face.points, (square.shape[1], square.shape[0]))
        atomic_write_text(ctx.path(FIT_FILE), json.dumps({
            "params": fit.params.to_dict(), "camera": fit.camera.to_dict(), "mean_error_px": fit.mean_error_px,
            "mean_error_iod": fit.mean_error_iod, "landmarks_px": detection.face.points.tolist()}))
        ctx.print(f"      landmark fit: {fit.mean_error_px:.2f} px = {100 * fit.mean_error_iod:.2f}% of the "
                  f"inter-ocular distance")
        return {"mean_error_px": fit.mean_error_px, "mean_error_iod": fit.mean_error_iod}


class TextureStage(Stage):
    """Portrait texture: background removed, photo projected on the head, unseen parts completed; and
    the person's hair layer."""

    name = "texture"
    inputs = (PORTRAIT_FILE, FIT_FILE)
    outputs = (HAIR_FILE, TEXTURE_FILE, OBSERVED_FILE)

    def run(self, ctx: CreateContext) -> dict:
        import imageio.v2 as imageio

        from perse.create.portrait_texture import portrait_texture

        result = portrait_texture(ctx.portrait, ctx.head, ctx.fit, size=ctx.quality.texture_size,
                                  landmarks=ctx.landmarks)
        for note in result.notes:
            ctx.print(f"      {note}")
        result.hair.save(ctx.path(HAIR_FILE))
        imageio.imwrite(ctx.path(TEXTURE_FILE), result.texture)
        imageio.imwrite(ctx.path(OBSERVED_FILE), (np.clip(result.observed, 0, 1) * 255).astype(np.uint8))
        return {"hair_reliable": result.hair.reliable, "notes": result.notes}


class DatasetStage(Stage):
    """Synthetic attribute dataset of this person (portrait texture + identity shape). With a diffusers
    editor the portrait is first edited per attribute variant (edits and their textures kept in
    ``WORK/edits/``) and each edit's texture is that variant's look."""

    name = "dataset"
    inputs = (PORTRAIT_FILE, FIT_FILE, TEXTURE_FILE)
    outputs = (DATASET_DIR,)
    keeps = (EDITS_DIR,)

    @staticmethod
    def check_editor(log: StageLog, spec: EditorSpec) -> None:
        """A finished dataset was made with one editor; resuming with another would mix them."""
        made_with = log.done.get("dataset", {}).get("editor", "builtin")
        if log.is_done("dataset") and made_with != str(spec):
            raise PerseError(f"{log.path.parent} holds a dataset made with the editor {made_with}; resume with "
                             "that editor, or delete the work folder to start over", setting="editor")

    def run(self, ctx: CreateContext) -> dict:
        from perse.render.gl import MeshRenderer
        from perse.synth.generator import generate_dataset
        from perse.synth.reference import ReferenceView
        from perse.synth.sampling import SynthSettings

        q = ctx.quality
        edits_share = 0.0 if ctx.editor_spec.kind == "builtin" else 0.5  # of the stage's progress

        def on_frame(done: int, total: int) -> None:
            if ctx.log.cancelled():
                raise KeyboardInterrupt(f"cancelled while rendering the dataset (frame {done} of {total})")
            ctx.log.progress(self.name, edits_share + (1 - edits_share) * done / total)

        with MeshRenderer() as renderer:
            variant_textures = self.edited_variant_textures(ctx, renderer, edits_share)
            settings = SynthSettings(num_frames_per_variant=q.frames_per_variant, image_size=q.image_size,
                                     texture_size=q.texture_size, seed=ctx.seed)
            # The frames' identity is the fit's: the view's params.identity.
            generate_dataset(ctx.path(DATASET_DIR), ctx.head, settings,
                             reference=ReferenceView(ctx.fit.camera, ctx.fit.params, image=ctx.portrait,
                                                     landmarks=ctx.landmarks, frames=q.reference_frames),
                             base_texture=ctx.texture, variant_textures=variant_textures,
                             hair_layer=ctx.hair_layer, renderer=renderer, on_frame=on_frame, overwrite=True)
        return {"editor": str(ctx.editor_spec), "edited": [f"{c}/{v}" for c, v in variant_textures]}

    @staticmethod
    def edited_variant_textures(ctx: CreateContext, renderer, share: float) -> dict:
        """The editor step: {(category, variant): (T, T, 3) uint8} textures of the portrait edits (empty
        for the built-in editor). Edits and textures are PNGs in WORK/edits, so --resume does not redo
        them. share: the part of the stage's progress the edits take."""
        from perse.create.editors import AttributeEditor, edit_portraits, edited_textures, make_editor
        from perse.synth.variants import CATEGORIES

        spec = ctx.editor_spec
        if spec.kind == "builtin":
            return {}
        ed = ctx.editor if isinstance(ctx.editor, AttributeEditor) else make_editor(spec, device=ctx.device)
        ctx.print(f"      editor {spec}: {len(ed.variants(CATEGORIES))} portrait edits")
        folder = ctx.path(EDITS_DIR)
        edits = edit_portraits(ed, ctx.portrait, ctx.head, ctx.fit, CATEGORIES, folder, seed=ctx.seed,
                               cancel=ctx.log.cancel, on_fraction=lambda f: ctx.log.progress("dataset", share * f),
                               renderer=renderer)
        return edited_textures(edits, ctx.head, ctx.fit, ctx.quality.texture_size, folder, seed=ctx.seed,
                               renderer=renderer, cancel=ctx.log.cancel)


class TrainStage(Stage):
    """The Gaussian avatar with the attribute latent space. Cancelled, it leaves a checkpoint that
    ``--resume`` continues from."""

    name = "train"
    inputs = (DATASET_DIR,)
    outputs = (TRAINED_FILE,)
    keeps = (CHECKPOINT_FILE,)

    def run(self, ctx: CreateContext) -> dict:
        from perse.synth.dataset import AttributeDataset
        from perse.train.trainer import Trainer, new_avatar_for_dataset

        dataset = AttributeDataset(ctx.path(DATASET_DIR), cache=True)
        device = "cuda" if ctx.backend == "gsplat" else "cpu"
        ckpt = ctx.path(CHECKPOINT_FILE)
        if ctx.resume and ckpt.exists():
            trainer = Trainer.from_checkpoint(ckpt, dataset, device)
            ctx.print(f"      resuming training at step {trainer.step}")
        else:
            cfg = ctx.quality.train_config(device, ctx.backend, ctx.seed)
            trainer = Trainer(new_avatar_for_dataset(dataset, cfg, ctx.head), dataset, cfg, device)
        steps = trainer.cfg.steps
        trainer.run(ctx.path(TRAINED_FILE), ckpt, on_step=lambda step, _: ctx.log.progress(self.name, step / steps),
                    should_stop=ctx.log.cancel)
        ckpt.unlink(missing_ok=True)
        return {"steps": trainer.step, "gaussians": trainer.avatar.num_gaussians}


class EvaluateStage(Stage):
    """Held-out PSNR/SSIM on the dataset, and the reference view against the portrait."""

    name = "evaluate"
    inputs = (TRAINED_FILE, DATASET_DIR, PORTRAIT_FILE, FIT_FILE)
    outputs = (EVALUATION_FILE,)

    def run(self, ctx: CreateContext) -> dict:
        from perse.create.reference_view import reference_view_quality
        from perse.io_utils import atomic_write_text
        from perse.synth.dataset import AttributeDataset
        from perse.train.evaluate import evaluate

        report = evaluate(ctx.avatar, AttributeDataset(ctx.path(DATASET_DIR)), backend=ctx.backend)
        report["reference_view"] = reference_view_quality(ctx.avatar, ctx.portrait, ctx.landmarks, ctx.backend)
        atomic_write_text(ctx.path(EVALUATION_FILE), json.dumps(report, indent=1))
        return {"psnr": report["psnr"], "ssim": report["ssim"],
                "reference_psnr_face": report["reference_view"]["psnr_face"]}


class SaveStage(Stage):
    """The avatar, with the portrait's fitted parameters and camera as its reference view, written to
    the output path. Runs on every resume (the output may have been moved or deleted since)."""

    name = "save"
    inputs = (TRAINED_FILE, EVALUATION_FILE, FIT_FILE)

    def is_done(self, log: StageLog) -> bool:
        return False

    def run(self, ctx: CreateContext) -> dict:
        from perse.avatar.io import save_avatar

        report = ctx.evaluation
        training = dict(ctx.avatar.meta.get("training", {}))
        training["create"] = {"quality": ctx.quality.name, "portrait": str(ctx.source),
                              "fit_error_iod": ctx.fit_data["mean_error_iod"], "editor": ctx.editor_used,
                              "heldout_psnr": report["psnr"], "heldout_ssim": report["ssim"],
                              "reference_psnr_face": report["reference_view"]["psnr_face"]}
        save_avatar(ctx.avatar, ctx.out, training=training)
        return {}


CREATE_STAGES: tuple[Stage, ...] = (DetectStage(), FitStage(), TextureStage(), DatasetStage(), TrainStage(),
                                    EvaluateStage(), SaveStage())
STAGES = tuple(stage.name for stage in CREATE_STAGES)
