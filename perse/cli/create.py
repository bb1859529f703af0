"""``perse create PORTRAIT --out AVATAR.perse``: an avatar from one photo (`perse.create.pipeline`)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  perse create portrait.jpg --out me.perse --quality draft
  perse create portrait.jpg --out me.perse --resume   # after Ctrl-C
  perse create portrait.jpg --out me.perse --editor diffusers:models/sd-inpainting"""


def add_parser(sub) -> None:
    p = sub.add_parser("create", help="create an avatar from one portrait (detect, fit, texture, dataset, train)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.set_defaults(func=run, wait_policy="batch")  # training only: `perse.openmp`


def run(args) -> int:
    from perse.create.pipeline import create_avatar

    try:
        create_avatar(args.portrait, args.out, quality=args.quality, device=args.device, flame=args.flame,
                      flame_embedding=args.flame_embedding, work=args.work, resume=args.resume, seed=args.seed,
                      editor=args.editor)
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(f"{exc}; finished stages are kept: run the same command with --resume") from None
    return 0
