"""``perse render AVATAR --out IMAGE.png``: one image of the avatar in a look, expression and view."""

from __future__ import annotations

from perse.cli.common import add_avatar_args, add_look_args, check_size, load_avatar, parse_background
from perse.errors import PerseError


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="render one image",
                       epilog="example: perse render default --out a.png --yaw 25 --attr glasses=round "
                              "--expr jawOpen=0.5")
    add_avatar_args(p)
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--yaw", type=float, default=0.0, help="degrees, positive turns toward the subject's left")
    p.add_argument("--pitch", type=float, default=0.0, help="degrees, positive looks from above")
    p.add_argument("--jaw", type=float, default=0.0, help="jaw opening in radians (e.g. 0.2)")
    p.add_argument("--expr", action="append", metavar="NAME=VALUE", help="expression coefficient (repeatable)")
    p.add_argument("--view", choices=["front", "reference"], default="front",
                   help="front orbit view, or the portrait's reference view")
    add_look_args(p)
    p.set_defaults(func=run)


def avatar_state(avatar, args):
    """The AvatarState of --attr, --expr and --jaw; --view reference starts from the portrait's pose."""
    from perse.avatar.model import AvatarState
    from perse.controls import expression_from_specs, look_from_attrs
    from perse.motion import head_params

    look = look_from_attrs(avatar, args.attr or [])
    expr = expression_from_specs(avatar, args.expr or [])
    if args.view == "reference":
        base = avatar.reference_state().head
        base.expression = expr[None] if args.expr else base.expression
        return AvatarState(base, look)
    return AvatarState(head_params(expr, args.jaw), look)


def camera(avatar, args, size: int):
    """The --view camera: the portrait's reference camera, or the front orbit turned by --yaw/--pitch."""
    import torch

    from perse.render.camera import Camera
    from perse.render.framing import orbit_view

    if args.view == "reference":
        ref = avatar.meta.get("reference_view") or {}
        if "camera" not in ref:
            raise PerseError("this avatar has no reference view (it was not created from a portrait); "
                             "use --view front")
        return Camera.from_dict(ref["camera"]).resized(size, size)
    with torch.no_grad():
        verts = avatar.head_vertices(avatar.reference_state().head)
    return orbit_view(verts, args.yaw, args.pitch, size)


def run(args) -> int:
    import torch

    from perse.export.video import write_png
    from perse.io_utils import check_writable_parent
    from perse.render import render

    check_writable_parent(args.out)
    if not str(args.out).lower().endswith(".png"):
        raise PerseError(f"--out {args.out} must end in .png")
    size = check_size(args.size)
    background = parse_background(args.background)
    avatar = load_avatar(args)
    with torch.no_grad():
        state = avatar_state(avatar, args)
        out = render(avatar.gaussians(state), camera(avatar, args, size), backend=args.backend,
                     background=background)
    write_png(out.rgb, args.out)
    print(f"wrote {args.out} ({size}x{size}, backend {out.backend})")
    return 0
