"""The studio window: one viewport image and a status line (first version)."""

from __future__ import annotations

import time

import numpy as np
import torch

from perse.avatar.io import load_avatar
from perse.avatar.model import AvatarState
from perse.controls import expression_from_specs, look_from_attrs
from perse.export.presets import head_params
from perse.paths import resolve_avatar_path
from perse.render import render, resolve_backend
from perse.render.framing import orbit_view


class StudioWindow:
    """Holds the avatar, the view state and the DearPyGui items."""

    def __init__(self, args):
        self.args = args
        self.path = resolve_avatar_path(args.avatar)
        self.avatar = load_avatar(self.path)
        self.backend = resolve_backend(args.backend)
        self.look = look_from_attrs(self.avatar, args.attr)
        self.expression = expression_from_specs(self.avatar, args.expr)
        self.yaw, self.pitch = 0.0, 0.0
        self.dirty = True
        self.size = 512
        self.render_ms = 0.0
        with torch.no_grad():
            self.rest_vertices = self.avatar.head_vertices(self.avatar.reference_state().head)

    def render_frame(self) -> np.ndarray:
        """(H, W, 4) float32 RGBA in [0, 1] for DearPyGui."""
        t0 = time.perf_counter()
        with torch.no_grad():
            state = AvatarState(head_params(self.expression), self.look)
            cam = orbit_view(self.rest_vertices, self.yaw, self.pitch, self.size)
            out = render(self.avatar.gaussians(state), cam, backend=self.backend,
                         background=torch.tensor([0.16, 0.17, 0.19]))
        rgb = out.rgb.clamp(0, 1).cpu().numpy()
        self.render_ms = (time.perf_counter() - t0) * 1000
        return np.concatenate([rgb, np.ones((*rgb.shape[:2], 1), np.float32)], axis=-1)

    def run(self) -> int:
        import dearpygui.dearpygui as dpg

        dpg.create_context()
        dpg.create_viewport(title=f"PERSE Studio — {self.path.name}", width=self.size + 340, height=self.size + 80)
        with dpg.texture_registry():
            self.texture = dpg.add_dynamic_texture(self.size, self.size, self.render_frame().ravel().tolist())
        with dpg.window(tag="main", no_title_bar=True, no_move=True, no_resize=True):
            with dpg.group(horizontal=True):
                self.image = dpg.add_image(self.texture)
                with dpg.group():
                    dpg.add_text("PERSE Studio", color=(230, 200, 120))
                    dpg.add_text(f"avatar: {self.path.name}")
                    dpg.add_text(f"Gaussians: {self.avatar.num_gaussians}")
                    dpg.add_text("categories:")
                    for c in self.avatar.categories:
                        dpg.add_text(f"  {c.name}: {', '.join(c.variants)}", wrap=300)
                    dpg.add_slider_float(label="yaw", min_value=-180, max_value=180, default_value=0,
                                         callback=lambda s, v: self._set_view(yaw=v), width=200)
                    dpg.add_slider_float(label="pitch", min_value=-60, max_value=60, default_value=0,
                                         callback=lambda s, v: self._set_view(pitch=v), width=200)
            self.status = dpg.add_text("")
        dpg.set_primary_window("main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        frame = 0
        while dpg.is_dearpygui_running():
            if self.dirty:
                dpg.set_value(self.texture, self.render_frame().ravel())
                self.dirty = False
                dpg.set_value(self.status, f"backend {self.backend} | upload host | render {self.render_ms:.0f} ms")
            dpg.render_dearpygui_frame()
            frame += 1
            if self.args.screenshot and frame >= max(self.args.frames, 2):
                self._screenshot(dpg, self.args.screenshot)
                break
        dpg.destroy_context()
        return 0

    def _set_view(self, yaw: float | None = None, pitch: float | None = None) -> None:
        self.yaw = self.yaw if yaw is None else yaw
        self.pitch = self.pitch if pitch is None else pitch
        self.dirty = True

    @staticmethod
    def _screenshot(dpg, path: str) -> None:
        from perse.io_utils import atomic_path

        with atomic_path(path) as tmp:
            dpg.output_frame_buffer(str(tmp))
            for _ in range(3):  # the PNG is written during the next frames
                dpg.render_dearpygui_frame()
                if tmp.stat().st_size > 0:
                    break
        print(f"wrote {path}")
