"""Webcam: drive the avatar from a camera or a video file, calibrate, record, replay and export takes.

The drive session (`StudioState.drive`) and the listed sources (`StudioState.drive_ui`) live in the state.
Main thread only: `tick` (every frame) polls the drive session, updates the preview texture and the
status lines; the capture and tracking threads never touch DearPyGui (see app/drive_session.py).
"""

from __future__ import annotations

from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np

from app.actions import TakeExport
from app.drive_session import CALIBRATION_FRAMES, draw_preview, format_stats, preview_ids
from perse.drive.sources import VIDEO_SUFFIXES, list_cameras
from perse.errors import PerseError

PREVIEW_W, PREVIEW_H = 240, 180
VIDEO_ITEM = "Video file..."
NO_CAMERA_ITEM = "camera 0 (none found)"
OK_COLOUR, WARN_COLOUR, ERROR_COLOUR, DIM_COLOUR = (140, 220, 140), (235, 190, 90), (255, 110, 100), (150, 150, 150)


def status_colour(text: str) -> tuple[int, int, int]:
    """Colour of the panel's status line: green while tracking, amber without a face, red for faults."""
    if "failed" in text:
        return ERROR_COLOUR
    if text.startswith(("tracking", "calibrat", "replaying")):
        return OK_COLOUR
    if text.startswith("no face"):
        return WARN_COLOUR
    if text.startswith(("starting", "stopped", "the video ended")):
        return DIM_COLOUR
    return ERROR_COLOUR  # a lost camera, a failed start


class WebcamPanel:
    def __init__(self, studio):
        self.studio = studio
        self._shown_running = None  # what the buttons show, to update them only when it changes
        self._preview = np.zeros((PREVIEW_H, PREVIEW_W, 4), np.float32)
        self._preview[...] = (0.08, 0.08, 0.09, 1.0)
        self._preview_ids = preview_ids()
        with dpg.texture_registry():
            self.texture = dpg.add_raw_texture(PREVIEW_W, PREVIEW_H, self._preview, format=dpg.mvFormat_Float_rgba)
        safe = studio.safe
        with dpg.group(horizontal=True):
            self.source = dpg.add_combo([], label="source", width=230, callback=safe(lambda s, v: self._choose(v)))
            dpg.add_button(label="Refresh", callback=safe(self.refresh_sources))
        with dpg.group(horizontal=True):
            self.start_button = dpg.add_button(label="Start", width=60, callback=safe(self.start))
            self.stop_button = dpg.add_button(label="Stop", width=60, callback=safe(self.stop), enabled=False)
            self.calibrate_button = dpg.add_button(label="Calibrate neutral", callback=safe(self.calibrate),
                                                   enabled=False)
        with dpg.group(horizontal=True):
            self.image = dpg.add_image(self.texture, width=PREVIEW_W, height=PREVIEW_H)
            with dpg.group():
                s = self.session.settings
                self.head_pose = dpg.add_checkbox(label="head pose", default_value=s.head_pose,
                                                  callback=safe(lambda _, v: self.session.update_settings(head_pose=v)))
                self.mirror = dpg.add_checkbox(label="mirror", default_value=s.mirror,
                                               callback=safe(lambda _, v: self.session.update_settings(mirror=v)))
        self.smoothing = dpg.add_slider_float(label="smoothing", min_value=0.0, max_value=1.0, width=230,
                                              default_value=s.smoothing,
                                              callback=safe(lambda _, v: self.session.update_settings(smoothing=v)))
        self.gain = dpg.add_slider_float(label="gain", min_value=0.0, max_value=2.0, width=230, default_value=s.gain,
                                         callback=safe(lambda _, v: self.session.update_settings(gain=v)))
        self.status_text = dpg.add_text("stopped", wrap=360, color=DIM_COLOUR)
        self.stats_text = dpg.add_text(format_stats(None), color=DIM_COLOUR)
        dpg.add_separator()
        with dpg.group(horizontal=True):
            self.record_button = dpg.add_button(label="Record", width=120, callback=safe(self.toggle_recording),
                                                enabled=False)
            self.replay_button = dpg.add_button(label="Replay", width=60, callback=safe(self.toggle_replay),
                                                enabled=False)
            self.export_button = dpg.add_button(label="Export take...", callback=safe(self.export_take),
                                                enabled=False)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Load take...", callback=safe(lambda: self._take_dialog(save=False)))
            self.save_button = dpg.add_button(label="Save take...", enabled=False,
                                              callback=safe(lambda: self._take_dialog(save=True)))
        self.take_text = dpg.add_text("no take", color=DIM_COLOUR)
        self.refresh_sources()

    @property
    def session(self):
        """The drive session (`StudioState.drive`)."""
        return self.studio.state.drive

    @property
    def sources(self) -> dict[str, tuple[str, object]]:
        """Combo label -> ("camera", index) | ("video", path) (`StudioState.drive_ui`)."""
        return self.studio.state.drive_ui.sources

    # -- sources -----------------------------------------------------------------------------------
    def refresh_sources(self) -> None:
        """List the cameras OpenCV can open (plus video files chosen before) in the source combo."""
        self.studio.state.drive_ui.set_cameras(list_cameras(), NO_CAMERA_ITEM)
        self._show_sources()

    def _show_sources(self) -> None:
        ui = self.studio.state.drive_ui
        dpg.configure_item(self.source, items=list(ui.sources) + [VIDEO_ITEM])
        dpg.set_value(self.source, ui.selected)

    def add_video(self, path: str | Path) -> str:
        """Put a video file in the source combo and select it; returns its label."""
        label = self.studio.state.drive_ui.add_video(path)
        self._show_sources()
        return label

    def select_source(self, label: str) -> None:
        """Select a source of the combo by its label (as a user picking it would)."""
        self.studio.state.drive_ui.select(label)
        dpg.set_value(self.source, label)

    def _choose(self, label: str) -> None:
        ui = self.studio.state.drive_ui
        if label != VIDEO_ITEM:
            ui.selected = label
            return
        dpg.set_value(self.source, ui.selected)  # until a file is actually chosen

        def chosen(sender, app_data):
            path = app_data.get("file_path_name")
            if path:
                self.add_video(path)

        with dpg.file_dialog(label="Choose a driving video", width=640, height=420, modal=True,
                             callback=self.studio.safe(chosen)):
            for ext in (*VIDEO_SUFFIXES, ".*"):
                dpg.add_file_extension(ext)

    # -- actions -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start driving from the selected source; a failure is shown in the panel and the status bar."""
        self.studio.actions.post("start_drive")

    def start_source(self, label: str, factory, loop: bool = False) -> None:
        """Start driving from any `FrameSource` factory (scripted tests use fake sources)."""
        self.studio.state.start_drive_source(lambda: self.session.start(("custom", label), factory, loop=loop))
        self._sync_buttons()

    def stop(self) -> None:
        was_recording = self.session.recording
        self.session.stop(self.studio.state)
        if was_recording and self.session.take is not None:
            self._take_recorded()
        self._sync_buttons()

    def calibrate(self) -> None:
        self.session.calibrate(CALIBRATION_FRAMES)
        self.studio.status(f"calibrating on the next {CALIBRATION_FRAMES} frames: keep a relaxed, neutral face")

    def toggle_recording(self) -> None:
        if not self.session.recording:
            self.session.start_recording()
            self.studio.status("recording the driven parameters ...")
        else:
            self.session.stop_recording()
            self._take_recorded()
            self._take_dialog(save=True)
        self._sync_buttons()

    def _take_recorded(self) -> None:
        take = self.session.take
        self.studio.status(f"recorded a take of {take.duration:.1f} s ({take.num_frames} samples)")

    def save_take(self, path: str | Path) -> Path:
        out = self.session.save_take(path)
        self.studio.status(f"saved take {out}")
        self._sync_buttons()
        return out

    def load_take(self, path: str | Path) -> None:
        self.session.load_take(path)
        self.studio.status(f"loaded take {path}")
        self._sync_buttons()

    def _take_dialog(self, save: bool) -> None:
        def chosen(sender, app_data):
            path = app_data.get("file_path_name")
            if path:
                self.save_take(path) if save else self.load_take(path)

        if dpg.does_item_exist("take_dialog"):
            dpg.delete_item("take_dialog")
        with dpg.file_dialog(label="Save the take as" if save else "Open a take", width=640, height=420,
                             modal=True, default_filename="take" if save else ".", tag="take_dialog",
                             callback=self.studio.safe(chosen)):
            dpg.add_file_extension(".npz")
            dpg.add_file_extension(".*")

    def toggle_replay(self) -> None:
        if self.session.replaying:
            self.session.stop_replay(self.studio.state)
        else:
            self.session.replay(self.studio.state)
        self._sync_buttons()

    def export_take(self) -> None:
        """Hand the take to the export panel (preset "take") and open it; Export there renders the MP4."""
        if self.session.take is None:
            raise PerseError("no take to export; record or load one first")
        name = self.session.take_path.stem if self.session.take_path is not None else "take"
        self.studio.actions.post("export_take", TakeExport(self.session.take, name))

    # -- per frame ---------------------------------------------------------------------------------
    def tick(self) -> None:
        was_replaying = self.session.replaying
        sample = self.session.poll(self.studio.state)
        if sample is not None and sample.frame is not None:
            draw_preview(sample.frame, sample.landmarks, self._preview, self._preview_ids)
            dpg.set_value(self.texture, self._preview)
        if was_replaying != self.session.replaying or self.session.running != self._shown_running:
            self._sync_buttons()
        error = self.studio.state.drive_ui.error
        status = error or self.session.status()
        self._show_status(status, ERROR_COLOUR if error else status_colour(status))
        dpg.set_value(self.stats_text, format_stats(self.session.stats())
                      + (" | REC" if self.session.recording else ""))

    def _show_status(self, text: str, colour) -> None:
        if dpg.get_value(self.status_text) != text:
            dpg.set_value(self.status_text, text)
            dpg.configure_item(self.status_text, color=colour)

    def _sync_buttons(self) -> None:
        s = self.session
        running = s.running
        self._shown_running = running
        dpg.configure_item(self.start_button, enabled=not running)
        dpg.configure_item(self.stop_button, enabled=running)
        dpg.configure_item(self.calibrate_button, enabled=running)
        dpg.configure_item(self.record_button, enabled=running, label="Stop recording" if s.recording else "Record")
        has_take = s.take is not None
        dpg.configure_item(self.replay_button, enabled=has_take and not running,
                           label="Stop" if s.replaying else "Replay")
        dpg.configure_item(self.export_button, enabled=has_take)
        dpg.configure_item(self.save_button, enabled=has_take)
        if has_take:
            where = s.take_path.name if s.take_path is not None else "unsaved"
            dpg.set_value(self.take_text, f"take: {s.take.duration:.1f} s, {s.take.num_frames} samples ({where})")
            dpg.configure_item(self.take_text, color=(200, 200, 200))

    def sync(self) -> None:
        self._show_sources()
        self._sync_buttons()

    def release(self) -> None:
        """Switching avatars: the preview texture lives outside the panel's widgets."""
        if dpg.does_item_exist(self.texture):
            dpg.delete_item(self.texture)
