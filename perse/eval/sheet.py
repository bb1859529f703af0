"""Contact sheet: one labelled PNG to judge an avatar at a glance (DESIGN §7 "Look at it").

Tiles, in order: front 0/45/90/180 degrees of yaw, ``jawOpen=1``, blink (``eyeBlinkLeft/Right=1``),
then every attribute variant at weight 1 (front view). Every tile goes through `perse.render.render`.

    python -m perse.eval.sheet default sheet.png --size 256
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from perse.avatar.latent import Look
from perse.avatar.model import Avatar
from perse.eval.views import front_camera, front_state, render_view, to_uint8, variant_looks

SHEET_YAWS = (0.0, 45.0, 90.0, 180.0)
OPEN_MOUTH = {"jawOpen": 1.0}
BLINK = {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}
FALLBACK_JAW_RAD = 0.3
LABEL_HEIGHT = 18
COLUMNS = 6


@dataclass(frozen=True)
class Tile:
    """What one tile shows: a label, a look (None = reference), named expression values, a jaw rotation
    (radians) and a yaw (degrees)."""

    label: str
    look: Look | None = None
    expression: dict | None = None
    jaw: float = 0.0
    yaw: float = 0.0


def sheet_tiles(avatar: Avatar) -> list[Tile]:
    """The contact sheet's tiles for this avatar, in reading order. Heads without ARKit expression names
    get a jaw rotation for the open mouth and no blink tile."""
    names = set(avatar.head.expression_names)
    tiles = [Tile(f"yaw {yaw:.0f}", yaw=yaw) for yaw in SHEET_YAWS]
    if set(OPEN_MOUTH) <= names:
        tiles.append(Tile("jawOpen=1", expression=OPEN_MOUTH))
    else:  # heads without ARKit names (FLAME): open the jaw joint instead
        tiles.append(Tile(f"jaw {FALLBACK_JAW_RAD} rad", jaw=FALLBACK_JAW_RAD))
    if set(BLINK) <= names:
        tiles.append(Tile("blink", expression=BLINK))
    tiles += [Tile(f"{cat}={variant}", look=look) for cat, variant, look in variant_looks(avatar)]
    return tiles


def render_tile(avatar: Avatar, tile: Tile, size: int, backend: str = "cpu") -> np.ndarray:
    """(size, size, 3) float32 RGB in [0, 1] of one tile on white."""
    state = front_state(avatar, tile.look, tile.expression, tile.jaw)
    return render_view(avatar, state, front_camera(avatar, size, tile.yaw), backend).rgb


def label_tile(image: np.ndarray, label: str) -> np.ndarray:
    """(H, W, 3) uint8 -> (H + LABEL_HEIGHT, W, 3) uint8 with `label` in black on a grey strip below."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + LABEL_HEIGHT), (225, 225, 225))
    canvas.paste(Image.fromarray(image), (0, 0))
    try:
        font = ImageFont.load_default(size=LABEL_HEIGHT - 5)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    ImageDraw.Draw(canvas).text((4, h + 2), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def grid(tiles: list[np.ndarray], columns: int = COLUMNS, gap: int = 2) -> np.ndarray:
    """Equal-sized (h, w, 3) uint8 tiles -> one (rows*(h+gap)-gap, columns*(w+gap)-gap, 3) uint8 image,
    row-major, unused cells white."""
    h, w = tiles[0].shape[:2]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def contact_sheet(avatar: Avatar, size: int = 256, backend: str = "cpu", columns: int = COLUMNS) -> np.ndarray:
    """The whole sheet as (H, W, 3) uint8: every `sheet_tiles` tile rendered at (size x size), labelled."""
    images = [label_tile(to_uint8(render_tile(avatar, t, size, backend)), t.label) for t in sheet_tiles(avatar)]
    return grid(images, columns)


def write_contact_sheet(avatar: Avatar, out, size: int = 256, backend: str = "cpu") -> np.ndarray:
    """Render the sheet and write it to `out` (.png, atomically). Returns the image."""
    from perse.export.video import write_png
    from perse.io_utils import check_writable_parent

    check_writable_parent(out)
    image = contact_sheet(avatar, size, backend)
    write_png(image, out)
    return image


def main(argv: list[str] | None = None) -> int:
    """``python -m perse.eval.sheet AVATAR OUT.png [--size N] [--backend B]``."""
    from perse.avatar.io import load_avatar
    from perse.errors import PerseError
    from perse.paths import resolve_avatar_path

    p = argparse.ArgumentParser(prog="python -m perse.eval.sheet", description=__doc__.splitlines()[0])
    p.add_argument("avatar", help="a .perse file, or 'default'")
    p.add_argument("out", help="output .png")
    p.add_argument("--size", type=int, default=256, help="tile size in pixels (default 256)")
    p.add_argument("--backend", default="cpu")
    args = p.parse_args(argv)
    try:
        image = write_contact_sheet(load_avatar(resolve_avatar_path(args.avatar)), args.out, args.size, args.backend)
    except PerseError as exc:
        print(f"perse: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
