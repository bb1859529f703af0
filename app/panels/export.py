"""Export: presets to MP4 in the background (progress, cancel), save frame as PNG, export Gaussians as PLY."""

from __future__ import annotations

from pathlib import Path

import dearpygui.dearpygui as dpg
import torch

from app.export_job import ExportJob
from perse.errors import PerseError
from perse.export.ply import export_ply
from perse.export.presets import PRESETS
from perse.export.render_sequence import ExportSettings
from perse.export.video import write_png


class ExportPanel:
    def __init__(self, studio):
        self.studio = studio
        self.job: ExportJob | None = None
        self._morph_looks = None
        self.preset = dpg.add_combo(list(PRESETS), default_value="turntable", label="preset", width=150)
        self.category = dpg.add_combo([c.name for c in studio.state.avatar.categories],
                                      default_value=studio.state.avatar.categories[0].name,
                                      label="morph category", width=150)
        self.size = dpg.add_input_int(label="size", default_value=512, width=150, min_value=16, max_value=4096,
                                      min_clamped=True, max_clamped=True)
        self.fps = dpg.add_input_int(label="fps", default_value=30, width=150, min_value=1, max_value=120,
                                     min_clamped=True, max_clamped=True)
        self.seconds = dpg.add_input_float(label="seconds", default_value=3.0, width=150, min_value=0.1,
                                           max_value=600, min_clamped=True, max_clamped=True)
        self.out = dpg.add_input_text(label="output", default_value=str(Path.cwd() / "perse_export.mp4"), width=230)
        with dpg.group(horizontal=True):
            self.start_button = dpg.add_button(label="Export", callback=studio.safe(self.start))
            self.cancel_button = dpg.add_button(label="Cancel", callback=studio.safe(self.cancel), enabled=False)
        self.bar = dpg.add_progress_bar(default_value=0.0, width=230, overlay="idle")
        dpg.add_separator()
        with dpg.group(horizontal=True):
            dpg.add_button(label="Save frame PNG", callback=studio.safe(self.save_frame))
            dpg.add_button(label="Export .ply", callback=studio.safe(self.save_ply))

    def settings(self) -> ExportSettings:
        fps = int(dpg.get_value(self.fps))
        preset = dpg.get_value(self.preset)
        state = self.studio.state
        look_a, look_b = self._morph_looks or (state.look(), None)
        return ExportSettings(
            preset=preset, out=Path(dpg.get_value(self.out)).expanduser(),
            frames=max(1, round(float(dpg.get_value(self.seconds)) * fps)), fps=fps,
            size=int(dpg.get_value(self.size)), backend=self.studio.backend, background=state.view.background,
            category=dpg.get_value(self.category) if preset == "morph" and look_b is None else None,
            look=look_a, look_b=look_b)

    def start(self) -> None:
        if self.job is not None and not self.job.done:
            raise PerseError("an export is already running; cancel it first")
        settings = self.settings()
        self._morph_looks = None
        self.job = ExportJob(self.studio.state.avatar, settings).start()
        dpg.configure_item(self.cancel_button, enabled=True)
        dpg.configure_item(self.start_button, enabled=False)
        self.studio.status(f"exporting {settings.preset} to {settings.out} ...")

    def start_morph(self, look_a, look_b) -> None:
        """Hand-over from the interpolation panel: export A -> B -> A."""
        dpg.set_value(self.preset, "morph")
        self._morph_looks = (look_a, look_b)
        self.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def tick(self) -> None:
        """Poll the worker (main thread, every frame)."""
        job = self.job
        if job is None:
            return
        if not job.done:
            eta = job.eta_seconds()
            dpg.set_value(self.bar, job.progress)
            dpg.configure_item(self.bar, overlay=f"{job.frames_done}/{job.settings.frames} frames"
                               + (f", {eta:.0f} s left" if eta is not None else ""))
            return
        dpg.configure_item(self.cancel_button, enabled=False)
        dpg.configure_item(self.start_button, enabled=True)
        if job.error:
            self.studio.error(job.error)
            dpg.configure_item(self.bar, overlay="failed")
        elif job.cancelled:
            self.studio.status("export cancelled; nothing was written")
            dpg.configure_item(self.bar, overlay="cancelled")
        else:
            self.studio.status(f"exported {job.result}")
            dpg.set_value(self.bar, 1.0)
            dpg.configure_item(self.bar, overlay="done")
        self.job = None

    def shutdown(self) -> None:
        """Closing the app: cancel a running export and wait, so no partial file is left."""
        if self.job is not None and not self.job.done:
            self.job.cancel()
            self.job.wait(timeout=30)

    def _output_with_suffix(self, suffix: str) -> Path:
        out = Path(dpg.get_value(self.out)).expanduser()
        return out.with_suffix(suffix)

    def save_frame(self) -> None:
        path = self._output_with_suffix(".png")
        write_png(self.studio.last_frame, path)
        self.studio.status(f"saved frame {path}")

    def save_ply(self) -> None:
        path = self._output_with_suffix(".ply")
        with torch.no_grad():
            gaussians = self.studio.state.avatar.gaussians(self.studio.state.avatar_state())
        export_ply(gaussians, path)
        self.studio.status(f"exported {len(gaussians)} Gaussians to {path}")
