"""``perse bench``: render speed, expression-update cost, training step time and driving figures
(`perse.bench.engine`), as a table or JSON."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="render speed, expression-update cost, training step time",
                       epilog="example: perse bench --size 256 --size 512")
    p.add_argument("--avatar", default="default")
    p.add_argument("--backend", action="append", help="backends to time (default: all available)")
    p.add_argument("--size", type=int, action="append", help="image sizes (default 256 and 512)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-drive", action="store_true", help="skip the webcam-driving figures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from perse.avatar.io import load_avatar
    from perse.bench.engine import format_row, machine_description, run_bench
    from perse.paths import resolve_avatar_path

    avatar = load_avatar(resolve_avatar_path(args.avatar))
    rows = run_bench(avatar, backends=args.backend, sizes=args.size, repeats=args.repeats, drive=not args.no_drive)
    if args.json:
        print(json.dumps({"machine": machine_description(), "avatar": args.avatar, "rows": rows}, indent=2))
        return 0
    print(f"machine: {machine_description()}")
    print(f"avatar: {args.avatar} ({avatar.num_gaussians} Gaussians); medians over {args.repeats} repeats")
    for row in rows:
        print(format_row(row))
    return 0
