"""Export: presets to MP4 in the background (progress, cancel), save frame as PNG, export Gaussians as PLY.

The "take" preset renders a take handed over by the Webcam panel (`set_take`); without one it is listed
but greyed: the Export button is disabled and a grey line says where takes come from.
"""

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


NO_TAKE = "take: none (record or load one in the Webcam panel)"
GREY = (120, 120, 120)


class ExportPanel:
    def __init__(self, studio):
        self.studio = studio
        self.job: ExportJob | None = None
        self._morph_looks = None
        self.take = None  # a perse.drive.Take from the Webcam panel
        self.preset = dpg.add_combo(list(PRESETS), default_value="turntable", label="preset", width=150,
                                    callback=studio.safe(lambda: self._sync()))
        self.take_text = dpg.add_text(NO_TAKE, color=GREY)
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
        self._sync()

    def set_take(self, take, name: str = "take") -> None:
        """Hand-over from the Webcam panel: select the take preset and name the output after the take."""
        take.check_head(self.studio.state.avatar.head)
        self.take = take
        dpg.set_value(self.preset, "take")
        out = Path(dpg.get_value(self.out)).expanduser()
        dpg.set_value(self.out, str(out.with_name(f"{name}.mp4")))
        dpg.set_value(self.fps, 30)
        self._sync()

    def _sync(self) -> None:
        """Grey out what the chosen preset cannot use: Export without a take, seconds for a take."""
        is_take = dpg.get_value(self.preset) == "take"
        busy = self.job is not None and not self.job.done
        dpg.configure_item(self.start_button, enabled=not busy and not (is_take and self.take is None))
        dpg.configure_item(self.seconds, enabled=not is_take)
        if self.take is None:
            dpg.set_value(self.take_text, NO_TAKE)
            dpg.configure_item(self.take_text, color=GREY)
        else:
            dpg.set_value(self.take_text, f"take: {self.take.duration:.1f} s, {self.take.num_frames} samples")
            dpg.configure_item(self.take_text, color=(200, 200, 200) if is_take else GREY)

    def settings(self) -> ExportSettings:
        fps = int(dpg.get_value(self.fps))
        preset = dpg.get_value(self.preset)
        state = self.studio.state
        look_a, look_b = self._morph_looks or (state.look(), None)
        if preset == "take" and self.take is None:
            raise PerseError("no take to export: record or load one in the Webcam panel, then Export take...")
        frames = (self.take.frame_count(fps) if preset == "take"
                  else max(1, round(float(dpg.get_value(self.seconds)) * fps)))
        return ExportSettings(
            preset=preset, out=Path(dpg.get_value(self.out)).expanduser(), frames=frames, fps=fps,
            size=int(dpg.get_value(self.size)), backend=self.studio.backend, background=state.view.background,
            category=dpg.get_value(self.category) if preset == "morph" and look_b is None else None,
            look=look_a, look_b=look_b, take=self.take if preset == "take" else None)

    def start(self) -> None:
        if self.job is not None and not self.job.done:
            raise PerseError("an export is already running; cancel it first")
        settings = self.settings()
        self._morph_looks = None
        self.job = ExportJob(self.studio.state.avatar, settings).start()
        dpg.configure_item(self.cancel_button, enabled=True)
        self._sync()
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
            dpg.configure_item(self.bar, overlay=f"{job.frames_done}/{job.total_frames} frames"
                               + (f", {eta:.0f} s left" if eta is not None else ""))
            return
        dpg.configure_item(self.cancel_button, enabled=False)
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
        self._sync()

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
