"""Export: presets to MP4 in the background (progress, cancel), save frame as PNG, export Gaussians as PLY.

The form edits `StudioState.export`; Export posts ``start_export`` and the running job lives in
`StudioState.export_job`. The "take" preset renders a take handed over by the Webcam panel (the
``export_take`` action); without one it is listed but greyed: the Export button is disabled and a grey
line says where takes come from.
"""

from __future__ import annotations

from pathlib import Path

import dearpygui.dearpygui as dpg
import torch

from perse.export.ply import export_ply
from perse.export.presets import PRESETS
from perse.export.video import write_png


NO_TAKE = "take: none (record or load one in the Webcam panel)"
GREY = (120, 120, 120)


class ExportPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        form = state.export

        def edit(key, convert):
            return studio.safe(lambda s, v: state.set_export(**{key: convert(v)}))

        self.preset = dpg.add_combo(list(PRESETS), default_value=form.preset, label="preset", width=150,
                                    callback=studio.safe(lambda s, v: self._choose_preset(v)))
        self.take_text = dpg.add_text(NO_TAKE, color=GREY)
        self.category = dpg.add_combo([c.name for c in state.avatar.categories], default_value=form.category,
                                      label="morph category", width=150, callback=edit("category", str))
        self.size = dpg.add_input_int(label="size", default_value=form.size, width=150, min_value=16, max_value=4096,
                                      min_clamped=True, max_clamped=True, callback=edit("size", int))
        self.fps = dpg.add_input_int(label="fps", default_value=form.fps, width=150, min_value=1, max_value=120,
                                     min_clamped=True, max_clamped=True, callback=edit("fps", int))
        self.seconds = dpg.add_input_float(label="seconds", default_value=form.seconds, width=150, min_value=0.1,
                                           max_value=600, min_clamped=True, max_clamped=True,
                                           callback=edit("seconds", float))
        self.out = dpg.add_input_text(label="output", default_value=form.out, width=230, callback=edit("out", str))
        with dpg.group(horizontal=True):
            self.start_button = dpg.add_button(label="Export", callback=studio.safe(self.start))
            self.cancel_button = dpg.add_button(label="Cancel", callback=studio.safe(self.cancel), enabled=False)
        self.bar = dpg.add_progress_bar(default_value=0.0, width=230, overlay="idle")
        dpg.add_separator()
        with dpg.group(horizontal=True):
            dpg.add_button(label="Save frame PNG", callback=studio.safe(self.save_frame))
            dpg.add_button(label="Export .ply", callback=studio.safe(self.save_ply))
        self._sync()

    @property
    def job(self):
        """The running export (`StudioState.export_job`), None once this panel has reported its end."""
        return self.studio.state.export_job

    def _choose_preset(self, preset: str) -> None:
        self.studio.state.set_export(preset=preset)
        self._sync()

    def _commit(self) -> None:
        """The form as shown becomes the request (DearPyGui runs no callback for values set by code)."""
        self.studio.state.set_export(
            preset=dpg.get_value(self.preset), category=dpg.get_value(self.category),
            size=int(dpg.get_value(self.size)), fps=int(dpg.get_value(self.fps)),
            seconds=float(dpg.get_value(self.seconds)), out=dpg.get_value(self.out))

    def _sync(self) -> None:
        """Grey out what the shown preset cannot use: Export without a take, seconds for a take."""
        state = self.studio.state
        take = state.export.take
        is_take = dpg.get_value(self.preset) == "take"
        dpg.configure_item(self.start_button, enabled=not state.exporting and not (is_take and take is None))
        dpg.configure_item(self.cancel_button, enabled=state.export_job is not None)
        dpg.configure_item(self.seconds, enabled=not is_take)
        if take is None:
            dpg.set_value(self.take_text, NO_TAKE)
            dpg.configure_item(self.take_text, color=GREY)
        else:
            dpg.set_value(self.take_text, f"take: {take.duration:.1f} s, {take.num_frames} samples")
            dpg.configure_item(self.take_text, color=(200, 200, 200) if is_take else GREY)

    def sync(self) -> None:
        form = self.studio.state.export
        for widget, value in ((self.preset, form.preset), (self.category, form.category), (self.size, form.size),
                              (self.fps, form.fps), (self.seconds, form.seconds), (self.out, form.out)):
            dpg.set_value(widget, value)
        self._sync()

    def start(self) -> None:
        self._commit()
        self.studio.actions.post("start_export")

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
        self.studio.state.export_job = None
        self._sync()

    def _output_with_suffix(self, suffix: str) -> Path:
        return Path(self.studio.state.export.out).expanduser().with_suffix(suffix)

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
