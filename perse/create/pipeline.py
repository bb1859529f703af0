"""`perse create`: one portrait in, an editable, animatable avatar out.

`create_avatar` walks the stages of `perse.create.stages` in order. Each writes its result into the
work folder and, once finished, a record in ``stages.json`` (`StageLog`), so ``--resume`` skips what is
done. A stage that does not finish (cancelled, or failed) has its outputs removed: the work folder then
holds only the finished stages, the log, and the partial work a stage continues from itself (Ctrl-C
during training saves a checkpoint that ``--resume`` continues from; finished portrait edits stay).

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

import contextlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

from perse.create.quality import Quality, resolve_quality
from perse.create.stage_log import StageLog
from perse.create.stages import CREATE_STAGES, STAGES, CreateContext, DatasetStage, Stage
from perse.errors import PerseError
from perse.io_utils import check_writable_parent
from perse.track.image_io import check_image_path


def create_avatar(portrait: str | Path, out: str | Path, quality: str | Quality = "draft", device: str = "auto",
                  flame: str | None = None, flame_embedding: str | None = None, work: str | Path | None = None,
                  resume: bool = False, seed: int = 0, print_fn: Callable[[str], None] = print,
                  cancel: Callable[[], bool] | None = None,
                  on_progress: Callable[[str, float], None] | None = None, editor="builtin") -> dict:
    """Run every stage; returns the summary (paths, fit error, evaluation, editor).

    cancel: polled between stages, every dataset frame, every training step and every editor step; True
        stops with KeyboardInterrupt, keeping finished stages (a training checkpoint, finished edits)
        for ``resume=True``.
    on_progress(stage, fraction): overall progress in [0, 1] for a UI.
    editor: "builtin" (the procedural painter) | "diffusers:PATH" (a local inpainting pipeline folder) |
        an `EditorSpec` | an `AttributeEditor` (e.g. a `DiffusersEditor` with fewer steps or categories).
    """
    from perse.create.editors import AttributeEditor, parse_editor_spec
    from perse.render import resolve_backend

    q = resolve_quality(quality)
    # A mistyped path fails before any stage starts or prints; a resumed run past the detect stage no
    # longer reads the photo, so it may have moved since.
    source = Path(portrait) if resume else check_image_path(portrait)
    out = check_writable_parent(out)
    if out.suffix != ".perse":
        raise PerseError(f"the avatar file {out} must end in .perse", setting="out")
    backend = resolve_backend({"auto": "auto", "cpu": "cpu", "cuda": "gsplat"}.get(device, device))
    editor_spec = editor.spec if isinstance(editor, AttributeEditor) else parse_editor_spec(editor)
    work = Path(work) if work else out.with_name(out.name + ".work")
    if work.exists() and not resume and any(work.iterdir()):
        raise PerseError(f"work folder {work} exists: resume to continue it, or delete it", setting="resume")
    log = StageLog(work, STAGES, q.expected_s, print_fn, cancel, on_progress)
    DatasetStage.check_editor(log, editor_spec)
    head = _portrait_head(flame, flame_embedding)
    ctx = CreateContext(source=source, out=out, work=work, quality=q, head=head, backend=backend,
                        device=device, editor=editor, editor_spec=editor_spec, seed=seed, resume=resume, log=log)
    with _work_folder(work, log):
        for stage in CREATE_STAGES:
            if not stage.is_done(log):
                run_stage(stage, ctx)
    report = ctx.evaluation
    print_fn(f"held-out PSNR {report['psnr']} dB, SSIM {report['ssim']}; reference view PSNR (face) "
             f"{report['reference_view']['psnr_face']:.2f} dB")
    print_fn(f"wrote {out} (work files in {work})")
    return {"out": str(out), "work": str(work), "quality": asdict(q), "evaluation": report,
            "fit_error_iod": ctx.fit_data["mean_error_iod"], "editor": ctx.editor_used,
            "edited": log.done["dataset"].get("edited", [])}


def _portrait_head(flame: str | None, flame_embedding: str | None):
    """The head model, checked for what portrait texturing needs."""
    from perse.head.registry import load_head_model

    head = load_head_model(flame, flame_embedding)
    if head.uvs is None or not head.region_names:
        raise PerseError(f"{head.meta.get('name', 'this head model')} has no texture layout or regions, which "
                         "portrait texturing needs; use the built-in head instead", setting="flame")
    return head


def run_stage(stage: Stage, ctx: CreateContext) -> None:
    """Run one stage and record it in the stage log; if it does not finish, remove what it wrote."""
    stage.check_inputs(ctx.work)
    started = ctx.log.start(stage.name)
    stage.discard(ctx.work)  # leftovers of a run that was killed inside this stage
    try:
        info = stage.run(ctx)
    except BaseException:
        stage.discard(ctx.work)
        raise
    ctx.log.finish(stage.name, started, **info)


@contextlib.contextmanager
def _work_folder(work: Path, log: StageLog) -> Iterator[Path]:
    """Create the work folder for the stages. A run that stops before finishing any stage removes the
    folder again if it created it: nothing in it is needed by ``--resume``. A folder that existed before,
    or holds a finished stage, stays."""
    created = not work.exists()
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    except BaseException:
        if created and not log.done:
            shutil.rmtree(work, ignore_errors=True)
        raise
