"""``perse export AVATAR --preset P --out OUT``: an animation preset as MP4 or a PNG folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from perse.cli.common import (add_avatar_args, add_look_args, check_size, load_avatar, parse_background,
                              read_look_file)

EPILOG = """examples:
  perse export default --preset turntable --out t.mp4
  perse export default --preset morph --category hair --out hair.mp4
  perse export default --preset expressions --out frames/"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="render an animation preset to MP4 (or a PNG folder)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_avatar_args(p)
    p.add_argument("--preset", required=True, choices=["turntable", "expressions", "morph", "take"])
    p.add_argument("--take", metavar="TAKE.npz", help="take: a recorded parameter sequence (perse drive --record)")
    p.add_argument("--out", required=True, help=".mp4 file, or a folder for PNG frames")
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--category", help="morph: the category whose variants are swept")
    p.add_argument("--look-b", help="morph: a look JSON file to morph to (from the studio; FILE:NAME picks one "
                                    "of several named looks)")
    add_look_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from perse.controls import look_from_attrs
    from perse.export.presets import check_preset
    from perse.export.render_sequence import ExportSettings, export_preset
    from perse.export.video import check_video_target

    check_video_target(args.out)
    size = check_size(args.size)
    background = parse_background(args.background)
    avatar = load_avatar(args)
    look_b = read_look_file(avatar, args.look_b) if args.look_b else None
    take = None
    if args.take:
        from perse.motion import Take

        take = Take.load(args.take)
    check_preset(avatar, args.preset, args.frames, args.category, look_b, take)
    settings = ExportSettings(preset=args.preset, out=Path(args.out), frames=args.frames, fps=args.fps, size=size,
                              backend=args.backend, background=tuple(background.tolist()), category=args.category,
                              look=look_from_attrs(avatar, args.attr or []), look_b=look_b, take=take)
    frames = take.frame_count(args.fps) if take is not None else args.frames
    bar = tqdm(total=frames, desc=f"export {args.preset}", unit="frame")
    try:
        out = export_preset(avatar, settings, on_frame=lambda i, total: bar.update(1))
    finally:
        bar.close()
    print(f"wrote {out} ({frames} frames, {size}x{size}, {args.fps} fps)")
    return 0
