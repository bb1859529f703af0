"""`python -m app.bench_studio [--size 512] [--seconds 5]`: speed of the studio's display loop.

Opens a studio-like window (viewport image, side panel, status line) on the current display with an
avatar and measures, after warm-up (numba compile / gsplat kernels):

  upload     ms per frame to get a rendered frame into the viewport texture, per path (host
             glTexSubImage2D; CUDA-GL interop when available; the first version's dynamic texture for
             comparison), alone and together with the DPG frame that shows it
  live       end-to-end fps while the expression changes every frame (skin + render + upload + DPG
             frame), at full size and at half size (the studio's "while dragging" mode)
  latency    ms from an attribute change (a new look: the attribute field re-evaluates) to the end
             of the DPG frame that shows it (glFinish'ed)

All figures are medians. Speed is reported here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from perse.errors import PerseError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app.bench_studio", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="viewport size in pixels (default 512)")
    p.add_argument("--seconds", type=float, default=5.0, help="time per live measurement (default 5)")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu")
    p.add_argument("--avatar", default="default", help="a .perse file (default: the bundled avatar)")
    p.add_argument("--shot", help="save the window to this PNG at the end (to look at it)")
    return p.parse_args(argv)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class StudioLoop:
    """The avatar, a camera per size and a studio-like DPG window with a ViewportTexture."""

    def __init__(self, avatar_arg: str, backend: str, size: int):
        from perse.avatar.io import load_avatar
        from perse.export.presets import expression_keyframes
        from perse.paths import resolve_avatar_path
        from perse.render import resolve_backend
        from perse.render.framing import orbit_view

        self.backend = resolve_backend(backend)
        self.device = torch.device("cuda" if self.backend == "gsplat" else "cpu")
        self.path = resolve_avatar_path(avatar_arg)
        self.avatar = load_avatar(self.path).to(self.device).eval()
        self.size = size
        self.keyframes = expression_keyframes(self.avatar)
        self.look = self.avatar.latent.reference_look()
        self.background = torch.tensor([0.16, 0.17, 0.19], device=self.device)
        with torch.no_grad():
            rest = self.avatar.head_vertices(self.avatar.reference_state().head).cpu()
        self.cameras = {s: orbit_view(rest, 20.0, 5.0, s).to(self.device) for s in (size, size // 2)}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def render(self, phase: float, size: int, look=None) -> torch.Tensor:
        """(size, size, 3) float frame of the expression loop at `phase`, on the render device."""
        from perse.avatar.model import AvatarState
        from perse.export.presets import expression_at
        from perse.motion import head_params
        from perse.render import render

        expr, jaw = expression_at(self.keyframes, phase)
        state = AvatarState(head_params(expr, jaw).to(self.device), look if look is not None else self.look)
        out = render(self.avatar.gaussians(state), self.cameras[size], backend=self.backend,
                     background=self.background)
        return out.rgb

    def open_window(self):
        import dearpygui.dearpygui as dpg

        from app.viewport import ViewportTexture

        dpg.create_context()
        dpg.create_viewport(title=f"PERSE Studio bench — {self.path.name}", width=self.size + 360,
                            height=self.size + 70)
        self.view = ViewportTexture(self.size, self.size)
        with dpg.window(tag="bench_main", no_title_bar=True):
            with dpg.group(horizontal=True):
                self.image = self.view.add_image()
                with dpg.group():  # a side panel of the studio's weight: texts and sliders
                    dpg.add_text("PERSE Studio (bench)", color=(230, 200, 120))
                    for c in self.avatar.categories:
                        dpg.add_slider_float(label=c.name, width=180, max_value=1.0)
                    dpg.add_slider_float(label="yaw", width=180, min_value=-180, max_value=180)
            self.status = dpg.add_text("")
        dpg.set_primary_window("bench_main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        dpg.render_dearpygui_frame()

    def frame(self) -> float:
        """One DPG frame (the view's pending write first); returns its ms."""
        import dearpygui.dearpygui as dpg

        t0 = time.perf_counter()
        self.view.flush()
        dpg.render_dearpygui_frame()
        return (time.perf_counter() - t0) * 1000.0


def bench_uploads(loop: StudioLoop, frames: list[torch.Tensor], repeats: int) -> list[tuple[str, float, float]]:
    """(method, upload ms, upload + DPG frame ms) medians over `repeats` uploads of `frames` in turn."""
    import dearpygui.dearpygui as dpg

    from app.viewport import ViewportTexture, rgba8

    def measure(target, upload) -> tuple[float, float]:
        """Show `target` (a ViewportTexture or a DPG texture tag) and time `upload(i)` into it."""
        if isinstance(target, ViewportTexture):
            target.repoint(loop.image)
        else:
            dpg.configure_item(loop.image, texture_tag=target, uv_max=(1.0, 1.0))
        up, both = [], []
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            upload(i)
            loop.sync()
            t1 = time.perf_counter()
            dpg.render_dearpygui_frame()
            if i >= 2:  # the first two: texture lookup, path decision, buffer allocation
                up.append((t1 - t0) * 1000)
                both.append((time.perf_counter() - t0) * 1000)
        return med(up), med(both)

    rows = []
    cpu = [f.cpu() for f in frames]
    rows.append(("frame only (no upload)", 0.0, med([loop.frame() for _ in range(repeats)])))
    rows.append(("host: float RGB CPU tensor", *measure(loop.view, lambda i: loop.view.upload(cpu[i % len(cpu)]))))
    rgba = [rgba8(f).numpy() for f in cpu]
    rows.append(("host: uint8 RGBA numpy (GL only)", *measure(loop.view, lambda i: loop.view.upload(rgba[i % len(rgba)]))))
    if frames[0].is_cuda:
        host = ViewportTexture(loop.size, loop.size, allow_interop=False)
        dpg.render_dearpygui_frame()  # DPG makes its GL texture
        rows.append(("host: float RGB CUDA tensor", *measure(host, lambda i: host.upload(frames[i % len(frames)]))))
        auto = measure(loop.view, lambda i: loop.view.upload(frames[i % len(frames)]))
        rows.append((f"{loop.view.path}: float RGB CUDA tensor", *auto))
        if loop.view.path != "interop":
            print(f"note: no interop ({loop.view.path_reason})")
    # the first studio version: a dynamic texture, float RGBA list handed to DPG (uploaded in the frame)
    with dpg.texture_registry():
        dynamic = dpg.add_dynamic_texture(loop.size, loop.size, np.zeros(loop.size * loop.size * 4, np.float32))

    def set_dynamic(i):
        f = cpu[i % len(cpu)].numpy()
        dpg.set_value(dynamic, np.concatenate([f, np.ones((*f.shape[:2], 1), np.float32)], -1).ravel())

    rows.append(("v1 dynamic texture (float RGBA)", *measure(dynamic, set_dynamic)))
    loop.view.repoint(loop.image)
    return rows


def bench_live(loop: StudioLoop, size: int, seconds: float) -> dict:
    """Expression changes every frame: render + upload + DPG frame, for `seconds`."""
    import dearpygui.dearpygui as dpg

    render_ms, upload_ms, frame_ms = [], [], []
    n, t_start = 0, time.perf_counter()
    while time.perf_counter() - t_start < seconds or n < 3:
        t0 = time.perf_counter()
        rgb = loop.render((n % 60) / 60, size)
        loop.sync()
        t1 = time.perf_counter()
        upload_ms.append(loop.view.upload(rgb))
        dpg.set_value(loop.status, f"{size}px | {loop.view.path_reason} | render {(t1 - t0) * 1000:.0f} ms")
        frame_ms.append(loop.frame())
        render_ms.append((t1 - t0) * 1000)
        n += 1
    elapsed = time.perf_counter() - t_start
    return {"size": size, "frames": n, "fps": n / elapsed, "render": med(render_ms), "upload": med(upload_ms),
            "frame": med(frame_ms)}


def bench_latency(loop: StudioLoop, seconds: float) -> tuple[float, int]:
    """ms from a new look (one category moved to another variant) to the end of the frame showing it."""
    from OpenGL import GL

    lat = []
    cats = [c for c in loop.avatar.latent.categories if len(c.variants) > 1]
    t_start, i = time.perf_counter(), 0
    while time.perf_counter() - t_start < seconds or len(lat) < 3:
        c = cats[i % len(cats)]
        variant = c.variants[1 + (i // len(cats)) % (len(c.variants) - 1)]
        t0 = time.perf_counter()  # the slider callback would set this look
        look = loop.avatar.latent.blend(loop.avatar.latent.reference_look(), c.name, variant, 0.5 + 0.01 * i)
        loop.view.upload(loop.render(0.0, loop.size, look))
        loop.frame()
        GL.glFinish()  # the frame is on screen, not just queued
        lat.append((time.perf_counter() - t0) * 1000)
        i += 1
    return med(lat), len(lat)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("win32", "darwin")):
        print("bench_studio: error: no display (DISPLAY is not set); run under Xvfb or xvfb-run", file=sys.stderr)
        return 2
    if args.size < 32:
        print("bench_studio: error: --size must be at least 32", file=sys.stderr)
        return 2
    try:
        from perse.bench import machine_description

        loop = StudioLoop(args.avatar, args.backend, args.size)
        t0 = time.perf_counter()
        frames = [loop.render(k / 6, args.size) for k in range(6)]  # warm-up: compiles kernels
        loop.render(0.0, args.size // 2)
        loop.sync()
        warm_s = time.perf_counter() - t0
        loop.open_window()
        from OpenGL import GL

        renderer = GL.glGetString(GL.GL_RENDERER).decode()
        uploads = bench_uploads(loop, frames, repeats=30)
        live = [bench_live(loop, s, args.seconds) for s in (args.size, args.size // 2)]
        latency, n_lat = bench_latency(loop, args.seconds)
        if args.shot:
            import dearpygui.dearpygui as dpg

            dpg.output_frame_buffer(args.shot)
            for _ in range(5):
                loop.frame()
        import dearpygui.dearpygui as dpg

        dpg.destroy_context()
    except PerseError as exc:
        print(f"bench_studio: error: {exc}", file=sys.stderr)
        return 2

    print(f"machine: {machine_description()}; GL: {renderer}")
    print(f"avatar: {loop.path.name} ({loop.avatar.num_gaussians} Gaussians), backend {loop.backend}, "
          f"viewport {args.size}px, warm-up {warm_s:.1f} s")
    print(f"\n{'upload path':40s} {'upload ms':>10s} {'+frame ms':>10s}")
    for name, up, both in uploads:
        print(f"{name:40s} {up:10.2f} {both:10.2f}")
    print(f"\n{'live (expression every frame)':30s} {'fps':>6s} {'render':>8s} {'upload':>8s} {'frame':>8s} {'n':>4s}")
    for r in live:
        label = f"{r['size']}px" + (" (half, dragging)" if r["size"] != args.size else " (full)")
        print(f"{label:30s} {r['fps']:6.2f} {r['render']:8.1f} {r['upload']:8.2f} {r['frame']:8.2f} {r['frames']:4d}")
    print(f"\nlatency attribute change -> displayed frame: {latency:.0f} ms (median of {n_lat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
