"""``perse drive``: drive an avatar from a video, an image folder, a webcam or a recorded take.

    perse drive AVATAR --video IN.mp4 --out OUT.mp4 [--side-by-side] [--look LOOK.json]
    perse drive AVATAR --webcam N --out OUT.mp4 [--seconds S]
    perse drive AVATAR --params TAKE.npz --out OUT.mp4

Tracking produces a take (optionally saved with ``--record TAKE.npz``), which is then rendered through
the export path (`perse.export.render_sequence.export_preset`, preset "take").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from perse.cli.common import (add_avatar_args, add_look_args, check_size, load_avatar, parse_background,
                              read_look_file)
from perse.errors import PerseError

EPILOG = """examples:
  perse drive default --video me.mp4 --out avatar.mp4 --side-by-side
  perse drive default --video me.mp4 --out avatar.mp4 --calibrate 30 --record take.npz
  perse drive default --webcam 0 --out live.mp4 --seconds 10
  perse drive default --params take.npz --out take.mp4 --attr hair=blonde
"""


def add_parser(sub) -> None:
    p = sub.add_parser("drive", help="drive an avatar from a video, a webcam or a recorded take",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_avatar_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file to reenact (any length)")
    src.add_argument("--images", help="a folder of images (same size, name order) to reenact")
    src.add_argument("--webcam", type=int, metavar="N", help="camera index to drive live and record")
    src.add_argument("--params", metavar="TAKE.npz", help="a recorded take to render")
    p.add_argument("--out", required=True, help=".mp4 file, or a folder for PNG frames")
    p.add_argument("--side-by-side", action="store_true", help="put the driving video left of the avatar")
    p.add_argument("--look", metavar="LOOK.json", help="a look file from the studio ({category: code})")
    p.add_argument("--record", metavar="TAKE.npz", help="also save the tracked parameter sequence")
    p.add_argument("--seconds", type=float, default=10.0, help="--webcam: how long to record (default 10)")
    p.add_argument("--calibrate", type=int, default=0, metavar="N",
                   help="use the first N frames with a face as the neutral (the user's resting face)")
    p.add_argument("--gain", type=float, default=1.0, help="expression and jaw gain (default 1)")
    p.add_argument("--smoothing", type=float, default=0.6, help="0 = raw, 1 = heaviest (default 0.6)")
    p.add_argument("--no-head-pose", action="store_true", help="keep the head still (expressions only)")
    p.add_argument("--mirror", action="store_true", help="mirror the input left-right")
    p.add_argument("--fps", type=float, default=0.0, help="output frame rate (default: the input's, or 30)")
    p.add_argument("--size", type=int, default=512)
    add_look_args(p)
    p.set_defaults(func=run)


def _settings(args):
    from perse.drive.driver import DriveSettings

    if not 0.0 <= args.smoothing <= 1.0:
        raise PerseError(f"--smoothing {args.smoothing} is out of range; use 0..1")
    if not 0.0 <= args.gain <= 5.0:
        raise PerseError(f"--gain {args.gain} is out of range; use 0..5")
    if args.calibrate < 0:
        raise PerseError(f"--calibrate must be 0 or more frames (got {args.calibrate})")
    return DriveSettings(gain=args.gain, head_pose=not args.no_head_pose, mirror=args.mirror,
                         smoothing=args.smoothing)


def _look(avatar, args):
    """--look (a look file) with --attr on top."""
    from perse.controls import look_from_attrs

    base = read_look_file(avatar, args.look) if args.look else None
    return look_from_attrs(avatar, args.attr or [], base)


def _check_record_target(path: str | None) -> None:
    from perse.io_utils import check_writable_parent

    if path is None:
        return
    if Path(path).suffix.lower() != ".npz":
        raise PerseError(f"--record {path}: use a .npz file name")
    check_writable_parent(path)


def _track_file(args, avatar, settings):
    """--video / --images: the take, and a factory reopening the source (for --side-by-side)."""
    from tqdm import tqdm

    from perse.drive.driver import Driver
    from perse.drive.reenact import calibrate_from_source, track_source
    from perse.drive.sources import ImageFolderSource, VideoFileSource

    def open_source():
        return VideoFileSource(args.video) if args.video else ImageFolderSource(args.images, fps=args.fps or 30.0)

    with open_source() as source, Driver(avatar.head, settings) as driver:
        if args.calibrate:
            calibrate_from_source(source, driver, args.calibrate)
        bar = tqdm(total=source.frame_count, desc="track", unit="frame")
        misses = [0]

        def on_frame(index: int, face: bool) -> None:
            misses[0] += not face
            bar.update(1)

        try:
            take = track_source(source, driver, on_frame=on_frame)
        finally:
            bar.close()
        fps = source.fps
    if misses[0]:
        print(f"no face in {misses[0]} of {take.num_frames} frames (held, then eased to neutral)")
    return take, fps, open_source


def _record_webcam(args, avatar, settings):
    from tqdm import tqdm

    from perse.drive.live import LiveDriver
    from perse.drive.sources import WebcamSource

    if args.seconds <= 0:
        raise PerseError(f"--seconds must be positive (got {args.seconds})")
    live = LiveDriver(avatar.head, lambda: WebcamSource(args.webcam), settings)
    live.start()  # PerseError (exit 2) when the camera cannot be opened
    try:
        if args.calibrate:
            live.calibrate(args.calibrate)
            print(f"calibrating: keep a neutral face for {args.calibrate} frames")
            while live.running and live.status.startswith(("starting", "calibrating", "no face")):
                time.sleep(0.05)
        live.start_recording()
        bar = tqdm(total=round(args.seconds, 1), desc="record", unit="s")
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < args.seconds and live.running:
            bar.n = round(min(elapsed, args.seconds), 1)
            bar.set_postfix_str(live.status)
            time.sleep(0.1)
        bar.close()
        take = live.stop_recording()
        if not live.running and "lost" in live.status:
            print(f"warning: {live.status}")
    finally:
        live.close()
    if take.num_frames == 0:
        raise PerseError(f"no frames were tracked from camera {args.webcam}; check the camera and lighting")
    return take, 30.0


def run(args) -> int:
    from tqdm import tqdm

    from perse.drive.reenact import SideBySide
    from perse.export.render_sequence import ExportSettings, export_preset
    from perse.export.video import check_video_target
    from perse.motion import Take

    check_video_target(args.out)
    _check_record_target(args.record)
    size = check_size(args.size)
    background = parse_background(args.background)
    settings = _settings(args)
    if args.side_by_side and not (args.video or args.images):
        raise PerseError("--side-by-side needs --video or --images (the driving frames to show)")
    if args.fps < 0:
        raise PerseError(f"--fps must be positive (got {args.fps})")
    avatar = load_avatar(args)
    look = _look(avatar, args)

    open_source = None
    if args.params:
        take, fps = Take.load(args.params), 30.0
        take.check_head(avatar.head, args.params)
    elif args.webcam is not None:
        take, fps = _record_webcam(args, avatar, settings)
    else:
        take, fps, open_source = _track_file(args, avatar, settings)
    if args.record:
        take.save(args.record)
        print(f"wrote {args.record} ({take.num_frames} samples, {take.duration:.1f} s)")

    fps = args.fps or fps
    compose = SideBySide(open_source, settings.mirror) if args.side_by_side else None
    export = ExportSettings(preset="take", out=Path(args.out), fps=fps, size=size, backend=args.backend,
                            background=tuple(background.tolist()), look=look, take=take, compose=compose)
    total = take.frame_count(fps)
    bar = tqdm(total=total, desc="render", unit="frame")
    try:
        out = export_preset(avatar, export, on_frame=lambda i, n: bar.update(1))
    finally:
        bar.close()
        if compose is not None:
            compose.close()
    print(f"wrote {out} ({total} frames, {size}x{size} avatar, {fps:g} fps)")
    return 0
