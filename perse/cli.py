"""`perse`: the PERSE engine on the command line.

Every command prints a one-line error and exits with code 2 on bad input (see `perse.errors`).
`default` as AVATAR means the bundled `assets/default.perse`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from perse.errors import PerseError

EPILOG_EXAMPLES = """examples:
  perse info default
  perse render default --out face.png --yaw 30 --attr hair=blonde --expr mouthSmileLeft=0.8
  perse export default --preset turntable --out turntable.mp4 --frames 90
  perse create portrait.jpg --out me.perse --quality draft
  perse track portrait.jpg --out params.json --overlay fit.png
  perse synth --out data/synth
  perse train data/synth --out me.perse
  perse eval me.perse data/synth
  perse drive default --video me.mp4 --out avatar.mp4 --side-by-side
  perse bench
"""


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------
def _load(args):
    """The avatar named by args.avatar ('default' = bundled), with --flame/--flame-embedding if given."""
    from perse.avatar.io import load_avatar
    from perse.paths import resolve_avatar_path

    return load_avatar(resolve_avatar_path(args.avatar), flame=getattr(args, "flame", None),
                       flame_embedding=getattr(args, "flame_embedding", None))


def _state(avatar, args):
    from perse.avatar.model import AvatarState
    from perse.controls import expression_from_specs, look_from_attrs
    from perse.export.presets import head_params

    look = look_from_attrs(avatar, args.attr or [])
    expr = expression_from_specs(avatar, args.expr or [])
    if getattr(args, "view", "front") == "reference":
        base = avatar.reference_state().head
        base.expression = expr[None] if args.expr else base.expression
        return AvatarState(base, look)
    return AvatarState(head_params(expr, getattr(args, "jaw", 0.0)), look)


def _camera(avatar, args, size: int, yaw: float = 0.0, pitch: float = 0.0):
    import torch

    from perse.render.camera import Camera
    from perse.render.framing import orbit_view

    if getattr(args, "view", "front") == "reference":
        ref = avatar.meta.get("reference_view") or {}
        if "camera" not in ref:
            raise PerseError("this avatar has no reference view (it was not created from a portrait); "
                             "use --view front")
        return Camera.from_dict(ref["camera"]).resized(size, size)
    with torch.no_grad():
        verts = avatar.head_vertices(avatar.reference_state().head)
    return orbit_view(verts, yaw, pitch, size)


def _background(text: str):
    import torch

    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise PerseError(f"--background '{text}' must be three numbers in [0, 1], e.g. 1,1,1")
    return torch.tensor(values)


def _check_size(size: int) -> int:
    if not 16 <= size <= 4096:
        raise PerseError(f"--size {size} is out of range; use 16..4096")
    return size


def _add_avatar_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("avatar", help="a .perse file, or 'default' for the bundled avatar")
    p.add_argument("--flame", help="FLAME file for FLAME-based avatars (else $PERSE_FLAME or config)")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for a FLAME head")


def _add_look_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attr", action="append", metavar="CATEGORY=VARIANT[:WEIGHT]",
                   help="move a category from the reference toward a variant (repeatable)")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu (default auto)")
    p.add_argument("--background", default="1,1,1", help="background colour r,g,b in [0, 1] (default white)")


# --------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from perse.avatar.io import checksum_status, read_avatar_meta
    from perse.paths import resolve_avatar_path

    path = resolve_avatar_path(args.avatar)
    meta = read_avatar_meta(path)
    info = {
        "checksum": checksum_status(meta),
        "file": str(path), "format_version": meta["format_version"], "num_gaussians": meta["num_gaussians"],
        "head": {k: meta["head"].get(k) for k in ("kind", "name", "sha256", "embedded")},
        "expressions": meta["head"].get("meta", {}).get("expression_names", []),
        "categories": meta["categories"], "training": meta.get("training", {}),
        "has_reference_view": bool(meta.get("reference_view")),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{path}  ({info['num_gaussians']} Gaussians, .perse v{info['format_version']})")
    print(f"checksum: {info['checksum']}")
    print(f"head: {info['head']['kind']} {info['head']['name'] or ''}"
          + (f" sha256 {info['head']['sha256'][:12]}…" if info['head'].get('sha256') else ""))
    print("categories:")
    for c in info["categories"]:
        variants = ", ".join(v + (" (ref)" if v == c["reference"] else "") for v in c["variants"])
        print(f"  {c['name']:<10} {variants}")
    if info["expressions"]:
        print(f"expressions ({len(info['expressions'])}): {', '.join(info['expressions'])}")
    t = info["training"]
    if t:
        print(f"training: {t.get('steps')} steps, {t.get('train_seconds', '?')} s, final loss {t.get('final_loss')}")
    return 0


def cmd_render(args) -> int:
    import torch

    from perse.export.video import write_png
    from perse.io_utils import check_writable_parent
    from perse.render import render

    check_writable_parent(args.out)
    if not str(args.out).lower().endswith(".png"):
        raise PerseError(f"--out {args.out} must end in .png")
    size = _check_size(args.size)
    background = _background(args.background)
    avatar = _load(args)
    with torch.no_grad():
        state = _state(avatar, args)
        camera = _camera(avatar, args, size, args.yaw, args.pitch)
        out = render(avatar.gaussians(state), camera, backend=args.backend, background=background)
    write_png(out.rgb, args.out)
    print(f"wrote {args.out} ({size}x{size}, backend {out.backend})")
    return 0


def cmd_export(args) -> int:
    from tqdm import tqdm

    from perse.controls import look_from_attrs
    from perse.export.presets import check_preset
    from perse.export.render_sequence import ExportSettings, export_preset
    from perse.export.video import check_video_target

    check_video_target(args.out)
    size = _check_size(args.size)
    background = _background(args.background)
    avatar = _load(args)
    look_b = None
    if args.look_b:
        from perse.looks import read_look

        look_b = read_look(args.look_b, avatar.latent.reference_look())
    take = None
    if args.take:
        from perse.drive.take import Take

        take = Take.load(args.take)
    check_preset(avatar, args.preset, args.frames, args.category, look_b, take)
    settings = ExportSettings(preset=args.preset, out=Path(args.out), frames=args.frames, fps=args.fps, size=size,
                              backend=args.backend, background=tuple(background.tolist()), category=args.category,
                              look=look_from_attrs(avatar, args.attr or []), look_b=look_b, take=take)
    if take is not None:
        args.frames = take.frame_count(args.fps)
    bar = tqdm(total=args.frames, desc=f"export {args.preset}", unit="frame")
    try:
        out = export_preset(avatar, settings, on_frame=lambda i, total: bar.update(1))
    finally:
        bar.close()
    print(f"wrote {out} ({args.frames} frames, {size}x{size}, {args.fps} fps)")
    return 0


def cmd_create(args) -> int:
    from perse.create.pipeline import create_avatar

    try:
        create_avatar(args.portrait, args.out, quality=args.quality, device=args.device, flame=args.flame,
                      flame_embedding=args.flame_embedding, work=args.work, resume=args.resume, seed=args.seed,
                      editor=args.editor)
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(f"{exc}; finished stages are kept: run the same command with --resume") from None
    return 0


def cmd_track(args) -> int:
    from perse.track import track_command

    track_command(args.image, args.out, overlay=args.overlay, flame=args.flame, flame_embedding=args.flame_embedding)
    return 0


def cmd_synth(args) -> int:
    from perse.head.registry import load_head_model
    from perse.synth.generator import generate_dataset

    head = load_head_model(args.flame, args.flame_embedding)
    out = generate_dataset(args.out, head, num_frames_per_variant=args.frames_per_variant,
                           image_size=args.size, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote dataset {out}")
    return 0


def cmd_train(args) -> int:
    import torch

    from perse.io_utils import check_writable_parent
    from perse.render import resolve_backend
    from perse.synth.dataset import AttributeDataset
    from perse.train.trainer import Trainer, TrainConfig, head_model_for, new_avatar_for_dataset

    check_writable_parent(args.out)
    backend = resolve_backend(args.backend)
    device = "cuda" if backend == "gsplat" else "cpu"
    dataset = AttributeDataset(args.dataset)
    head = head_model_for(dataset, args.flame, args.flame_embedding)
    ckpt = Path(args.checkpoint) if args.checkpoint else Path(str(args.out) + ".ckpt")
    if args.resume:
        if not ckpt.exists():
            raise PerseError(f"--resume: no checkpoint at {ckpt}; run without --resume to start")
        trainer = Trainer.from_checkpoint(ckpt, dataset, device)
        print(f"resuming at step {trainer.step}")
    else:
        cfg = TrainConfig.preset(args.preset or ("cuda" if device == "cuda" else "cpu"))
        cfg.backend = backend
        cfg.seed = args.seed
        if args.steps:
            cfg.steps = args.steps
        if args.gaussians:
            cfg.num_gaussians = args.gaussians
        torch.manual_seed(cfg.seed)
        trainer = Trainer(new_avatar_for_dataset(dataset, cfg, head), dataset, cfg, device)
    if args.steps:
        trainer.cfg.steps = args.steps
    out = trainer.run(args.out, ckpt)
    if ckpt.exists():
        ckpt.unlink()  # finished: the avatar holds everything
    print(f"wrote {out} ({trainer.avatar.num_gaussians} Gaussians, {trainer.step} steps)")
    return 0


def cmd_eval(args) -> int:
    from perse.synth.dataset import AttributeDataset
    from perse.train.evaluate import evaluate, format_report

    if args.dataset is None or args.portrait or args.sheet:
        if args.dataset is not None:
            raise PerseError("give either a DATASET or --portrait/--sheet, not both")
        from perse.eval.command import run_outside_in

        return run_outside_in(args, _load)
    avatar = _load(args)
    dataset = AttributeDataset(args.dataset)
    report = evaluate(avatar, dataset, backend=args.backend, max_frames=args.max_frames)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_bench(args) -> int:
    from perse.bench import run_bench

    run_bench(avatar_arg=args.avatar, backends=args.backend, sizes=args.size, repeats=args.repeats,
              json_out=args.json, drive=not args.no_drive)
    return 0


# --------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perse", description="PERSE Studio engine: editable Gaussian head avatars.",
                                     epilog=EPILOG_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"perse {__import__('perse').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="categories, variants, Gaussian count and head model of an avatar",
                       epilog="example: perse info default --json")
    p.add_argument("avatar", help="a .perse file, or 'default'")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("render", help="render one image",
                       epilog="example: perse render default --out a.png --yaw 25 --attr glasses=round "
                              "--expr jawOpen=0.5")
    _add_avatar_args(p)
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--yaw", type=float, default=0.0, help="degrees, positive turns toward the subject's left")
    p.add_argument("--pitch", type=float, default=0.0, help="degrees, positive looks from above")
    p.add_argument("--jaw", type=float, default=0.0, help="jaw opening in radians (e.g. 0.2)")
    p.add_argument("--expr", action="append", metavar="NAME=VALUE", help="expression coefficient (repeatable)")
    p.add_argument("--view", choices=["front", "reference"], default="front",
                   help="front orbit view, or the portrait's reference view")
    _add_look_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("export", help="render an animation preset to MP4 (or a PNG folder)",
                       epilog="examples:\n  perse export default --preset turntable --out t.mp4\n"
                              "  perse export default --preset morph --category hair --out hair.mp4\n"
                              "  perse export default --preset expressions --out frames/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_avatar_args(p)
    p.add_argument("--preset", required=True, choices=["turntable", "expressions", "morph", "take"])
    p.add_argument("--take", metavar="TAKE.npz", help="take: a recorded parameter sequence (perse drive --record)")
    p.add_argument("--out", required=True, help=".mp4 file, or a folder for PNG frames")
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--category", help="morph: the category whose variants are swept")
    p.add_argument("--look-b", help="morph: a look JSON file to morph to (from the studio)")
    _add_look_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("create", help="create an avatar from one portrait (detect, fit, texture, dataset, train)",
                       epilog="examples:\n  perse create portrait.jpg --out me.perse --quality draft\n"
                              "  perse create portrait.jpg --out me.perse --resume   # after Ctrl-C\n"
                              "  perse create portrait.jpg --out me.perse --editor diffusers:models/sd-inpainting",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("portrait", help="a photo of one person (the largest face is used)")
    p.add_argument("--out", required=True, help="output .perse file")
    p.add_argument("--quality", default="draft", choices=["draft", "standard", "high"],
                   help="draft: minutes on a CPU; standard/high: for a GPU (default draft)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--work", help="work folder (default OUT.work); keeps every stage's result")
    p.add_argument("--resume", action="store_true", help="continue from the work folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flame", help="use a FLAME file (needs a texture layout; the built-in head is the default)")
    p.add_argument("--flame-embedding")
    p.add_argument("--editor", default="builtin", metavar="builtin|diffusers:PATH",
                   help="attribute edits: builtin (procedural painter, default) or diffusers:PATH, a local "
                        "diffusers inpainting pipeline folder (never downloads; needs transformers)")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("track", help="fit the head model to a portrait's MediaPipe landmarks",
                       epilog="example: perse track portrait.jpg --out params.json --overlay fit.png")
    p.add_argument("image", help="a photo with one (or more: the largest is used) face")
    p.add_argument("--out", required=True, help="output JSON: head parameters, camera, fit error")
    p.add_argument("--overlay", help="also draw the fitted mesh and landmarks over the photo (PNG)")
    p.add_argument("--flame", help="fit a FLAME file instead of the built-in head")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for --flame")
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("synth", help="generate a synthetic attribute dataset",
                       epilog="example: perse synth --out data/synth --size 256")
    p.add_argument("--out", required=True, help="dataset folder (must not exist or be empty)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--frames-per-variant", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    p.add_argument("--flame", help="use a FLAME file instead of the built-in head")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for --flame")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train an avatar on a dataset",
                       epilog="examples:\n  perse train data/synth --out me.perse\n"
                              "  perse train data/synth --out me.perse --resume   # after Ctrl-C",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("--out", required=True, help="output .perse file")
    p.add_argument("--preset", choices=["cpu", "cuda"], help="settings (default: by device)")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.add_argument("--gaussians", type=int, help="override the initial number of Gaussians")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="checkpoint file (default OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--flame", help="FLAME file when the dataset was made with one")
    p.add_argument("--flame-embedding")
    p.set_defaults(func=cmd_train)

    from perse.eval.command import EPILOG as EVAL_EPILOG, add_outside_in_args

    p = sub.add_parser("eval", help="outside-in report against a portrait and a contact sheet; or PSNR/SSIM, "
                       "smoothness and leakage on a synthetic dataset", epilog=EVAL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_avatar_args(p)
    p.add_argument("dataset", nargs="?", help="a synthetic dataset folder (perse synth): PSNR/SSIM report")
    add_outside_in_args(p)
    p.add_argument("--backend", default="auto")
    p.add_argument("--max-frames", type=int, default=0, help="limit held-out frames (0 = all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    from perse.drive.command import add_drive_parser

    add_drive_parser(sub, _add_avatar_args, _add_look_args)

    p = sub.add_parser("bench", help="render speed, expression-update cost, training step time",
                       epilog="example: perse bench --size 256 --size 512")
    p.add_argument("--avatar", default="default")
    p.add_argument("--backend", action="append", help="backends to time (default: all available)")
    p.add_argument("--size", type=int, action="append", help="image sizes (default 256 and 512)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-drive", action="store_true", help="skip the webcam-driving figures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PerseError as exc:
        print(f"perse: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"perse: interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`perse info default | head`): not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
