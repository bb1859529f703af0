"""`perse-studio [AVATAR]`: open an avatar in a DearPyGui window.

Headless check: ``perse-studio --screenshot OUT.png [--frames N] [--attr C=V[:W]] [--expr N=V]``;
``--drive VIDEO`` drives the avatar from a video (played in real time, looped) from start-up and prints
the Webcam panel's status line (camera fps, tracking ms, latency) at exit. The flags are studio actions
(app/script.py); --screenshot and --export make the run a scripted one instead of the main loop.
"""

from __future__ import annotations

import argparse
import os
import sys

from perse.errors import PerseError

VIEW_SIZE = 512


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="perse-studio", description="PERSE Studio: view and edit Gaussian head avatars.")
    p.add_argument("avatar", nargs="?", default="default", help="a .perse file (default: the bundled avatar)")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu")
    p.add_argument("--screenshot", help="render, save the window to this PNG and exit")
    p.add_argument("--frames", type=int, default=3, help="frames to run before --screenshot (default 3)")
    p.add_argument("--export", metavar="OUT", help="run the export panel (current preset) to OUT, then exit")
    p.add_argument("--export-preset", default="turntable", choices=["turntable", "expressions", "morph"])
    p.add_argument("--export-seconds", type=float, default=3.0)
    p.add_argument("--drive", metavar="VIDEO", help="drive the avatar from this video (the Webcam panel) from start-up")
    p.add_argument("--verbose", action="store_true", help="log to stderr")
    p.add_argument("--attr", action="append", default=[], metavar="CATEGORY=VARIANT[:WEIGHT]")
    p.add_argument("--expr", action="append", default=[], metavar="NAME=VALUE")
    return p.parse_args(argv)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not has_display():
        print("perse-studio: error: no display found (DISPLAY is not set); for headless use try "
              "`perse render` or `perse export`, or run under xvfb-run", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="perse-studio: %(levelname)s: %(message)s")
    try:
        from app.window import StudioWindow

        window = StudioWindow(args)
        return window.run()
    except PerseError as exc:
        print(f"perse-studio: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
