"""What several commands share: avatar loading, the avatar and look arguments, size and colour parsing,
look files.

Only this package knows the flags: values that arrive here as text (``--background 1,1,1``) are parsed
and checked, and a bad one is a one-line `PerseError` naming the flag.
"""

from __future__ import annotations

import argparse

from perse.errors import PerseError

MIN_SIZE, MAX_SIZE = 16, 4096  # render sizes in pixels that make sense for a head


def add_avatar_args(p: argparse.ArgumentParser) -> None:
    """AVATAR and the FLAME files it may need (``--flame``, ``--flame-embedding``)."""
    p.add_argument("avatar", help="a .perse file, or 'default' for the bundled avatar")
    p.add_argument("--flame", help="FLAME file for FLAME-based avatars (else $PERSE_FLAME or config)")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for a FLAME head")


def add_look_args(p: argparse.ArgumentParser) -> None:
    """``--attr`` (repeatable), ``--backend`` and ``--background``: what every rendering command takes."""
    p.add_argument("--attr", action="append", metavar="CATEGORY=VARIANT[:WEIGHT]",
                   help="move a category from the reference toward a variant (repeatable)")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu (default auto)")
    p.add_argument("--background", default="1,1,1", help="background colour r,g,b in [0, 1] (default white)")


def load_avatar(args):
    """The avatar named by args.avatar ('default' = bundled), with --flame/--flame-embedding if given."""
    from perse.avatar.io import load_avatar as load
    from perse.paths import resolve_avatar_path

    return load(resolve_avatar_path(args.avatar), flame=getattr(args, "flame", None),
                flame_embedding=getattr(args, "flame_embedding", None))


def parse_background(text: str):
    """``--background r,g,b`` -> (3,) float tensor in [0, 1]."""
    import torch

    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise PerseError(f"--background '{text}' must be three numbers in [0, 1], e.g. 1,1,1")
    return torch.tensor(values)


def check_size(size: int) -> int:
    """``--size``: an image side in MIN_SIZE..MAX_SIZE pixels."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise PerseError(f"--size {size} is out of range; use {MIN_SIZE}..{MAX_SIZE}")
    return size


def read_look_file(avatar, path: str):
    """A look from a JSON file given on the command line (``--look``, ``--look-b``): one look, a
    named-looks file holding one, or ``FILE:NAME`` (`perse.looks.read_look`); missing categories keep
    the reference."""
    from perse.looks import read_look

    return read_look(path, avatar.latent.reference_look())


def phrase_error(exc: PerseError, args: argparse.Namespace | None) -> str:
    """The engine's message for the command line: the flags of the settings it names, where this
    command has them, follow in parentheses ("... or a second look (--category, --look-b)").

    The engine names a setting as its keyword (``look_b``); argparse names an option's value the same
    way (``--look-b`` -> ``look_b``), so the command has the flag when `args` has the attribute.
    """
    flags = ["--" + s.replace("_", "-") for s in exc.settings if args is not None and hasattr(args, s)]
    return f"{exc} ({', '.join(flags)})" if flags else str(exc)
