"""``perse eval AVATAR --portrait PHOTO [--sheet SHEET.png]``: the outside-in report on the command line.

``perse eval AVATAR DATASET`` (PSNR/SSIM on a synthetic dataset, `perse.train.evaluate`) stays as it was;
without a DATASET the command measures the avatar from outside: against a portrait (`perse.eval.report`)
and/or as a contact sheet (`perse.eval.sheet`).
"""

from __future__ import annotations

import argparse
import json

from perse.errors import PerseError

EPILOG = """examples:
  perse eval default --portrait astronaut.png --sheet sheet.png   # outside-in report + contact sheet
  perse eval default --sheet sheet.png                            # contact sheet only
  perse eval me.perse --portrait me.jpg --json
  perse eval me.perse data/synth                                  # PSNR/SSIM on a synthetic dataset
"""


def add_outside_in_args(p: argparse.ArgumentParser) -> None:
    """The outside-in options of ``perse eval`` (used when no DATASET is given)."""
    p.add_argument("--portrait", metavar="PHOTO", help="measure against this portrait: identity distance, "
                   "head silhouette IoU, per-variant change inside/outside its region, back-view hair colours")
    p.add_argument("--sheet", metavar="SHEET.png", help="write a contact sheet (views, open mouth, blink, "
                   "every variant)")
    p.add_argument("--sheet-size", type=int, default=256, help="contact sheet tile size (default 256)")
    p.add_argument("--size", type=int, default=512, help="render size of the measures (default 512)")


def run_outside_in(args, load_avatar) -> int:
    """Run the outside-in report and/or the sheet for parsed `args`; `load_avatar(args)` gives the avatar."""
    if not args.portrait and not args.sheet:
        raise PerseError("give a DATASET folder, --portrait PHOTO or --sheet SHEET.png "
                         "(see perse eval --help)")
    if args.sheet and not str(args.sheet).lower().endswith(".png"):
        raise PerseError(f"--sheet {args.sheet} must end in .png")
    if not 64 <= args.size <= 2048 or not 32 <= args.sheet_size <= 1024:
        raise PerseError("--size must be in 64..2048 and --sheet-size in 32..1024")
    from perse.render import resolve_backend

    backend = resolve_backend(args.backend)
    report = None
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
