"""Measured speed of the engine (medians over repeats, after warm-up): the figures `perse bench` prints.

Figures:
  render            rasterization only, per backend and size (Gaussians already in world space)
  expression frame  skinning + binding + render for a new expression (the look is cached), per size
  expression update skinning + binding only
  look change       attribute-field evaluation for a new look
  train step        one full training step at 256x256 (forward, backward, optimiser) on frames the
                    avatar renders of itself
  drive tracking    MediaPipe (video mode) + retargeting per 640x480 frame of a real face (the
                    astronaut photo drifting, with sensor noise); heads with landmarks only
  drive jitter      on a still face: frame-to-frame change of the filtered output, % of the unfiltered
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

import torch

from perse.avatar.model import Avatar, AvatarState
from perse.export.presets import expression_at, expression_keyframes
from perse.motion import head_params


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    desc = f"{cpu}, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        desc += f", CUDA {torch.cuda.get_device_name(0)}"
    return desc


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_avatar(avatar: Avatar, backends: list[str], sizes: list[int], repeats: int) -> list[dict]:
    from perse.render import render
    from perse.render.framing import orbit_view

    rows = []
    keyframes = expression_keyframes(avatar)
    for backend in backends:
        device = torch.device("cuda" if backend == "gsplat" else "cpu")
        av = avatar.to(device).eval()
        with torch.no_grad():
            verts = av.head_vertices(av.reference_state().head)
            g = av.gaussians()
            counter = iter(range(10**9))

            def new_state() -> AvatarState:
                expr, jaw = expression_at(keyframes, (next(counter) % 97) / 97)
                return AvatarState(head_params(expr, jaw).to(device))

            def update():
                out = av.gaussians(new_state())
                _sync(device)
                return out

            rows.append({"figure": "expression update", "backend": backend, "size": None,
                         "ms": median_ms(update, repeats), "gaussians": len(g)})
            for size in sizes:
                cam = orbit_view(verts.cpu(), 0, 0, size).to(device)
                bg = torch.ones(3, device=device)

                def render_only():
                    out = render(g, cam, backend=backend, background=bg)
                    _sync(device)
                    return out

                def frame():
                    out = render(av.gaussians(new_state()), cam, backend=backend, background=bg)
                    _sync(device)
                    return out

                ms = median_ms(render_only, repeats)
                rows.append({"figure": "render", "backend": backend, "size": size, "ms": ms, "fps": 1000 / ms})
                ms = median_ms(frame, repeats)
                rows.append({"figure": "expression frame", "backend": backend, "size": size, "ms": ms,
                             "fps": 1000 / ms})

            looks = [av.latent.sample_look(torch.Generator().manual_seed(i)) for i in range(repeats + 2)]
            it = iter(looks)
            rows.append({"figure": "look change", "backend": backend, "size": None,
                         "ms": median_ms(lambda: av.local_gaussians(next(it)), repeats)})
    avatar.to("cpu")
    return rows


def bench_train_step(avatar: Avatar, backend: str, repeats: int, size: int = 256) -> dict:
    """Median ms of Trainer.train_step on frames the avatar renders of itself (no dataset needed)."""
    import copy

    from perse.train.selfdata import SelfRenderedDataset
    from perse.train.trainer import Trainer, TrainConfig

    device = "cuda" if backend == "gsplat" else "cpu"
    dataset = SelfRenderedDataset(avatar, num_frames=8, size=size, backend=backend)
    cfg = TrainConfig(backend=backend, checkpoint_every=0)
    cfg.densify.start_step = 10**9  # time steady-state steps, not densification
    trainer = Trainer(copy.deepcopy(avatar), dataset, cfg, device)
    ms = median_ms(trainer.train_step, repeats, warmup=3)
    return {"figure": "train step", "backend": backend, "size": size, "ms": ms,
            "gaussians": trainer.avatar.num_gaussians}


MIN_DRIVE_LANDMARKS = 68  # a head needs a face's worth of landmarks to be tracked


def bench_drive(head, frames: int = 150) -> list[dict]:
    """Tracking + retargeting time per 640x480 frame (median, p90) and the filter's jitter ratio."""
    from skimage.data import astronaut

    from perse.drive import DriveSettings
    from perse.bench.accuracy import jitter_ratio, moving_photo_frames, run_sequence

    photo = astronaut()[:300, 90:360]
    _, fig = run_sequence(head, moving_photo_frames(photo, frames), DriveSettings(), warmup=5)
    filtered, raw, ratio = jitter_ratio(head, photo, frames=min(frames, 90))
    return [{"figure": "drive tracking", "backend": "cpu", "size": None, "ms": fig.tracking_ms_median,
             "p90_ms": fig.tracking_ms_p90, "frames": fig.frames},
            {"figure": "drive jitter", "backend": "cpu", "size": None, "ms": None, "percent": 100.0 * ratio}]


def run_bench(avatar, backends: list[str] | None = None, sizes: list[int] | None = None, repeats: int = 20,
              train: bool = True, drive: bool = True) -> list[dict]:
    """Every figure for `avatar` (rows of {figure, backend, size, ms, ...}); backends default to all
    available ones but the reference rasterizer, sizes to 256 and 512."""
    from perse.render import available_backends, resolve_backend

    backends = [resolve_backend(b) for b in (backends or available_backends())]
    backends = [b for b in backends if b != "reference"]
    rows = bench_avatar(avatar, backends, sizes or [256, 512], repeats)
    if train:
        rows += [bench_train_step(avatar, b, max(5, repeats // 2)) for b in backends]
    if drive and avatar.head.landmark_indices.numel() >= MIN_DRIVE_LANDMARKS:
        rows += bench_drive(avatar.head)
    return rows


def format_row(row: dict) -> str:
    """One figure as a table line: name, backend, image size, ms and fps / p90 / % of unfiltered."""
    r = row
    if r["figure"] == "drive jitter":
        return f"  {r['figure']:<18} {r['backend']:<8} {'still face':>9} {r['percent']:9.1f} % of unfiltered"
    size = f"{r['size']}x{r['size']}" if r.get("size") else "-"
    size = "640x480" if r["figure"] == "drive tracking" else size
    extra = f"{r['fps']:8.1f} fps" if "fps" in r else (f"p90 {r['p90_ms']:.1f} ms" if "p90_ms" in r else "")
    return f"  {r['figure']:<18} {r['backend']:<8} {size:>9} {r['ms']:9.2f} ms {extra}"
