"""File > New from portrait: pick a photo, preview the fitted mesh over it, create in the background.

The creation job stays with the dialog, not in `StudioState`: the state is the open avatar's, and a
creation outlives a switch to another avatar. The finished avatar opens through ``load_avatar``.
"""

from __future__ import annotations

from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np

from app.create_job import CreateJob
from perse.errors import PerseError

PREVIEW = 320  # preview texture size (pixels)


class CreateDialog:
    def __init__(self, studio):
        self.studio = studio
        self.job: CreateJob | None = None
        if dpg.does_item_exist("create_dialog"):
            dpg.delete_item("create_dialog")
        with dpg.texture_registry():
            self.texture = dpg.add_static_texture(PREVIEW, PREVIEW, [0.1] * (PREVIEW * PREVIEW * 4))
        with dpg.window(label="New avatar from portrait", tag="create_dialog", width=PREVIEW + 360, height=PREVIEW + 90,
                        on_close=lambda: self.close()):
            with dpg.group(horizontal=True):
                self.image = dpg.add_image(self.texture)
                with dpg.group():
                    self.portrait = dpg.add_input_text(label="portrait", width=220)
                    dpg.add_button(label="Browse...", callback=studio.safe(self._browse))
                    dpg.add_button(label="Detect & fit", callback=studio.safe(self.preview))
                    self.fit_text = dpg.add_text("", wrap=320)
                    self.quality = dpg.add_combo(["draft", "standard", "high"], default_value="draft",
                                                 label="quality", width=120)
                    self.out = dpg.add_input_text(label="output", width=220, default_value=str(Path.cwd() / "me.perse"))
                    with dpg.group(horizontal=True):
                        self.create_button = dpg.add_button(label="Create", callback=studio.safe(self.start))
                        self.cancel_button = dpg.add_button(label="Cancel", enabled=False,
                                                            callback=studio.safe(self.cancel))
                    self.bar = dpg.add_progress_bar(default_value=0.0, width=320, overlay="")
                    self.stage_text = dpg.add_text("", wrap=320)

    def _browse(self) -> None:
        def chosen(sender, app_data):
            if app_data.get("file_path_name"):
                dpg.set_value(self.portrait, app_data["file_path_name"])
                self.preview()

        with dpg.file_dialog(label="Choose a portrait", callback=self.studio.safe(chosen), width=640, height=420,
                             modal=True):
            for ext in (".jpg", ".jpeg", ".png", ".webp", ".*"):
                dpg.add_file_extension(ext)

    def preview(self) -> None:
        """Detect and fit (about a second on a CPU) and show the fitted mesh over the photo."""
        from perse.head.registry import load_head_model
        from perse.track import draw_fit_overlay, load_image, track_image

        path = dpg.get_value(self.portrait).strip()
        if not path:
            raise PerseError("choose a portrait first")
        image = load_image(path)
        model = load_head_model(None)
        detection, fit = track_image(image, model, source=path)
        overlay = draw_fit_overlay(image, model, fit, detection.face.points)
        scale = overlay.shape[0] / image.shape[0]  # the overlay may be enlarged for readability
        dpg.set_value(self.texture, _fit_square(_around(overlay, detection.face.points * scale), PREVIEW).ravel())
        note = f"; {detection.num_faces} faces, using the largest" if detection.num_faces > 1 else ""
        dpg.set_value(self.fit_text, f"fit error {fit.mean_error_px:.2f} px "
                                     f"({100 * fit.mean_error_iod:.1f}% of the eye distance){note}")

    def start(self) -> None:
        if self.job is not None and not self.job.done:
            raise PerseError("a creation is already running")
        portrait = dpg.get_value(self.portrait).strip()
        if not portrait:
            raise PerseError("choose a portrait first")
        out = Path(dpg.get_value(self.out)).expanduser()
        work = out.with_name(out.name + ".work")
        self.job = CreateJob(portrait, out, dpg.get_value(self.quality), resume=work.exists()).start()
        dpg.configure_item(self.create_button, enabled=False)
        dpg.configure_item(self.cancel_button, enabled=True)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            dpg.set_value(self.stage_text, "cancelling after the current step ...")

    def tick(self) -> None:
        job = self.job
        if job is None or not dpg.does_item_exist("create_dialog"):
            return
        dpg.set_value(self.bar, job.progress)
        dpg.configure_item(self.bar, overlay=f"{job.stage} {100 * job.progress:.0f}%")
        if job.lines:
            dpg.set_value(self.stage_text, job.lines[-1].strip())
        if not job.done:
            return
        dpg.configure_item(self.create_button, enabled=True)
        dpg.configure_item(self.cancel_button, enabled=False)
        self.job = None
        if job.error:
            self.studio.error(job.error)
            dpg.set_value(self.stage_text, f"error: {job.error}")
        elif job.cancelled:
            dpg.set_value(self.stage_text, "cancelled; press Create again to resume from the finished stages")
        else:
            self.studio.actions.post("load_avatar", job.out)

    def close(self) -> None:
        if self.job is not None:
            self.job.cancel()
        if dpg.does_item_exist("create_dialog"):
            dpg.delete_item("create_dialog")


def _around(image: np.ndarray, points: np.ndarray, margin: float = 0.6) -> np.ndarray:
    """Crop an image to the landmarks' bounding box grown by `margin` of its size on every side."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * (hi - lo).max()
    x0, y0 = (np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.minimum(hi + pad, [image.shape[1], image.shape[0]]).astype(int)
    return image[y0:y1, x0:x1]


def _fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 4) float32 RGBA, letterboxed (nearest-neighbour resampling)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    ys = (np.arange(nh) / scale).astype(int).clip(0, h - 1)
    xs = (np.arange(nw) / scale).astype(int).clip(0, w - 1)
    out = np.zeros((size, size, 4), np.float32)
    out[..., 3] = 1.0
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw, :3] = image[ys][:, xs, :3] / 255.0
    return out
