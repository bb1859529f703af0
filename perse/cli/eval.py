"""``perse eval``: measure an avatar.

    perse eval AVATAR DATASET                          PSNR/SSIM, smoothness and leakage (`perse.train.evaluate`)
    perse eval AVATAR --portrait PHOTO [--sheet S.png] the outside-in report (`perse.eval.report`) and/or
                                                       a contact sheet (`perse.eval.sheet`)
"""

from __future__ import annotations

import argparse
import json

from perse.cli.common import add_avatar_args, load_avatar
from perse.errors import PerseError

EPILOG = """examples:
  perse eval default --portrait astronaut.png --sheet sheet.png   # outside-in report + contact sheet
  perse eval default --sheet sheet.png                            # contact sheet only
  perse eval me.perse --portrait me.jpg --json
  perse eval me.perse data/synth                                  # PSNR/SSIM on a synthetic dataset
"""


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="outside-in report against a portrait and a contact sheet; or PSNR/SSIM, "
                       "smoothness and leakage on a synthetic dataset", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_avatar_args(p)
    p.add_argument("dataset", nargs="?", help="a synthetic dataset folder (perse synth): PSNR/SSIM report")
    p.add_argument("--portrait", metavar="PHOTO", help="measure against this portrait: identity distance, "
                   "head silhouette IoU, per-variant change inside/outside its region, back-view hair colours")
    p.add_argument("--sheet", metavar="SHEET.png", help="write a contact sheet (views, open mouth, blink, "
                   "every variant)")
    p.add_argument("--sheet-size", type=int, default=256, help="contact sheet tile size (default 256)")
    p.add_argument("--size", type=int, default=512, help="render size of the measures (default 512)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--max-frames", type=int, default=0, help="limit held-out frames (0 = all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.dataset is None or args.portrait or args.sheet:
        if args.dataset is not None:
            raise PerseError("give either a DATASET or --portrait/--sheet, not both")
        return run_outside_in(args)
    return run_dataset(args)


def run_dataset(args) -> int:
    """PSNR/SSIM, smoothness and leakage on the held-out frames of a synthetic dataset."""
    from perse.synth.dataset import AttributeDataset
    from perse.train.evaluate import evaluate, format_report

    avatar = load_avatar(args)
    dataset = AttributeDataset(args.dataset)
    report = evaluate(avatar, dataset, backend=args.backend, max_frames=args.max_frames)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def run_outside_in(args) -> int:
    """The outside-in report against --portrait and/or the contact sheet --sheet."""
    if not args.portrait and not args.sheet:
        raise PerseError("give a DATASET folder, --portrait PHOTO or --sheet SHEET.png "
                         "(see perse eval --help)")
    if args.sheet and not str(args.sheet).lower().endswith(".png"):
        raise PerseError(f"--sheet {args.sheet} must end in .png")
    if not 64 <= args.size <= 2048 or not 32 <= args.sheet_size <= 1024:
        raise PerseError("--size must be in 64..2048 and --sheet-size in 32..1024")
    from perse.render import resolve_backend

    backend = resolve_backend(args.backend)
    if args.portrait:
        from perse.eval.report import format_report, measure_avatar
        from perse.track import load_image

        portrait = load_image(args.portrait)
        report = measure_avatar(load_avatar(args), portrait, size=args.size, backend=backend,
                                source=str(args.portrait))
        print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.sheet:
        from perse.eval.sheet import write_contact_sheet

        image = write_contact_sheet(load_avatar(args), args.sheet, args.sheet_size, backend)
        if not args.json:
            print(f"wrote {args.sheet} ({image.shape[1]}x{image.shape[0]})")
    return 0
