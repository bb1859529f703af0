"""``perse info AVATAR [--json]``: categories, variants, Gaussian count and head model of an avatar."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="categories, variants, Gaussian count and head model of an avatar",
                       epilog="example: perse info default --json")
    p.add_argument("avatar", help="a .perse file, or 'default'")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def avatar_info(path) -> dict:
    """What `perse info` shows of the .perse file at `path`, read from its header only."""
    from perse.avatar.io import checksum_status, read_avatar_meta

    meta = read_avatar_meta(path)
    return {
        "checksum": checksum_status(meta),
        "file": str(path), "format_version": meta["format_version"], "num_gaussians": meta["num_gaussians"],
        "head": {k: meta["head"].get(k) for k in ("kind", "name", "sha256", "embedded")},
        "expressions": meta["head"].get("meta", {}).get("expression_names", []),
        "categories": meta["categories"], "training": meta.get("training", {}),
        "has_reference_view": bool(meta.get("reference_view")),
    }


def print_info(info: dict) -> None:
    """The human-readable form of `avatar_info`."""
    print(f"{info['file']}  ({info['num_gaussians']} Gaussians, .perse v{info['format_version']})")
    print(f"checksum: {info['checksum']}")
    head = info["head"]
    print(f"head: {head['kind']} {head['name'] or ''}" + (f" sha256 {head['sha256'][:12]}…" if head.get("sha256") else ""))
    print("categories:")
    for c in info["categories"]:
        variants = ", ".join(v + (" (ref)" if v == c["reference"] else "") for v in c["variants"])
        print(f"  {c['name']:<10} {variants}")
    if info["expressions"]:
        print(f"expressions ({len(info['expressions'])}): {', '.join(info['expressions'])}")
    t = info["training"]
    if t:
        print(f"training: {t.get('steps')} steps, {t.get('train_seconds', '?')} s, final loss {t.get('final_loss')}")


def run(args) -> int:
    from perse.paths import resolve_avatar_path

    info = avatar_info(resolve_avatar_path(args.avatar))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_info(info)
    return 0
