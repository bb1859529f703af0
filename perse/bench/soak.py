"""Soak benchmark of live driving: a looped video file stands in for the webcam, a consumer loop
renders the avatar for every new sample (as the studio does), for many minutes.

    python -m perse.bench.soak [--video IN.mp4] [--minutes 30] [--size 512] [--json OUT.json]

Prints one row per interval: resident memory, tracking ms, capture->display latency (median, p90),
render ms, camera fps and stale frames skipped; at the end, the growth of memory and latency from the
first interval to the last. Without --video a 10 s clip of the astronaut photo drifting is made.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch


def resident_mb() -> float:
    """Resident set size of this process, MB (Linux /proc; ru_maxrss elsewhere is the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def make_clip(path: Path, seconds: float = 10.0, fps: int = 30) -> Path:
    import imageio.v2 as imageio
    from skimage.data import astronaut

    from perse.bench.accuracy import moving_photo_frames

    frames = moving_photo_frames(astronaut()[:300, 90:360], int(seconds * fps))
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", quality=8, macro_block_size=1, ffmpeg_log_level="error")
    return path


def soak(avatar, video: Path, minutes: float, size: int, interval_s: float, backend: str, paced: bool = True,
         log=print) -> list[dict]:
    from perse.avatar.model import AvatarState
    from perse.drive import DriveSettings, LiveDriver, VideoFileSource
    from perse.motion import ParamLayout
    from perse.render import render
    from perse.render.framing import orbit_view

    layout = ParamLayout(avatar.head.num_expression)
    with torch.no_grad():
        camera = orbit_view(avatar.head_vertices(avatar.reference_state().head), 0.0, 0.0, size)
    background = torch.ones(3)
    live = LiveDriver(avatar.head, lambda: VideoFileSource(video), DriveSettings(), realtime=True, loop=True,
                      paced=paced)
    rows: list[dict] = []
    live.start()
    start = time.perf_counter()
    next_report = start + interval_s
    render_ms: list[float] = []
    seen = 0
    last_tracked, last_skipped = 0, 0
    try:
        while time.perf_counter() - start < minutes * 60.0:
            sample, version = live.latest()
            if sample is None or version == seen:
                time.sleep(0.002)
            else:
                seen = version
                t0 = time.perf_counter()
                with torch.no_grad():
                    render(avatar.gaussians(AvatarState(layout.to_head_params(sample.vector))), camera,
                           backend=backend, background=background)
                render_ms.append((time.perf_counter() - t0) * 1000.0)
                live.mark_displayed(sample)
            if time.perf_counter() >= next_report:
                stats = live.stats()
                row = {"minute": round((time.perf_counter() - start) / 60.0, 2), "rss_mb": round(resident_mb(), 1),
                       "tracking_ms": stats.tracking_ms, "latency_ms": stats.latency_ms,
                       "latency_p90_ms": stats.latency_p90_ms, "render_ms": float(np.median(render_ms)),
                       "camera_fps": stats.camera_fps, "tracked": stats.frames_tracked - last_tracked,
                       "skipped": stats.frames_skipped - last_skipped, "threads": threading.active_count(),
                       "status": live.status}
                last_tracked, last_skipped = stats.frames_tracked, stats.frames_skipped
                rows.append(row)
                log(f"{row['minute']:6.1f} min  rss {row['rss_mb']:7.1f} MB  tracking {row['tracking_ms']:5.1f} ms  "
                    f"latency {row['latency_ms']:6.1f} ms (p90 {row['latency_p90_ms']:6.1f})  render "
                    f"{row['render_ms']:5.1f} ms  camera {row['camera_fps']:4.1f} fps  tracked {row['tracked']}  "
                    f"skipped {row['skipped']}  threads {row['threads']}")
                render_ms.clear()
                next_report += interval_s
    finally:
        live.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    from perse.avatar.io import load_avatar
    from perse.paths import resolve_avatar_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avatar", default="default")
    parser.add_argument("--video", help="looped as the camera (default: a generated 10 s clip)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report row")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--unpaced", action="store_true", help="track every frame (no just-in-time pacing)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    avatar = load_avatar(resolve_avatar_path(args.avatar)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(args.video) if args.video else make_clip(Path(tmp) / "clip.mp4")
        print(f"soak: {args.minutes:g} min, video {video if args.video else 'astronaut clip (generated)'}, "
              f"{args.size}x{args.size} render, backend {args.backend}, {'unpaced' if args.unpaced else 'paced'}")
        rows = soak(avatar, video, args.minutes, args.size, args.interval, args.backend, paced=not args.unpaced)
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(f"growth first -> last interval: memory {last['rss_mb'] - first['rss_mb']:+.1f} MB, latency median "
              f"{last['latency_ms'] - first['latency_ms']:+.1f} ms, tracking {last['tracking_ms'] - first['tracking_ms']:+.1f} ms")
    if args.json:
        from perse.io_utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
