"""Drives the real studio's Webcam panel through a scripted session (run by tests/test_studio_drive.py in a
subprocess under Xvfb): bad camera, driving from a video, status figures, record/save/load, replay, take
export, a face leaving the frame, a camera lost mid-stream and restarted, closing.

Usage: studio_drive_script.py VIDEO OUT_DIR. Screenshots go to OUT_DIR; findings are printed as one JSON
line (the harness prints them last).
"""

import sys
import threading
import time
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import torch

from perse.avatar.model import AvatarState
from perse.drive import CameraLost, FrameSource, VideoFileSource
from perse.motion import Take
from perse.render import render
from studio_harness import DEADLINE, drive, pump

FPS = 30.0


def read_frames(path: str) -> list[np.ndarray]:
    with VideoFileSource(path) as src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    return frames


class ScriptedCamera(FrameSource):
    """A fake live camera playing `frames` at 30 fps. Once `cut` is set it either shows an empty scene
    (`blank=True`: the face left the frame) or raises CameraLost (unplugged)."""

    def __init__(self, frames, cut: threading.Event | None = None, blank: bool = False):
        self.frames, self.cut, self.blank = frames, cut or threading.Event(), blank
        self.name, self.fps, self.live = "scripted camera", FPS, True
        self._i, self._t0 = 0, time.perf_counter()

    def read(self):
        # pace like a camera: frame i is available at t0 + i / fps
        delay = self._t0 + self._i / FPS - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        i, self._i = self._i, self._i + 1
        if self.cut.is_set():
            if not self.blank:
                raise CameraLost("scripted camera stopped delivering frames (unplugged?)")
            return np.full_like(self.frames[0], 90)
        return self.frames[i % len(self.frames)]


def driven_norm(window) -> float | None:
    d = window.state.driven
    if d is None:
        return None
    return float(sum(v.abs().sum() for v in (d.expression, d.jaw_rot, d.global_rot, d.translation)))


def scenario(video: str, out: Path):
    def action(window, f):
        panel, state = window.webcam_panel, window.state
        export = window.export_panel
        state.set_view(render_scale=0.5)  # the tracking thread needs the CPU more than the pixels do
        pump(window, 0.2)
        neutral_frame = window.last_frame.clone()
        window._screenshot(str(out / "neutral.png"))

        # -- the export panel greys the take preset without a take ---------------------------------
        dpg.set_value(export.preset, "take")
        export._sync()
        f["export_enabled_without_take"] = dpg.get_item_configuration(export.start_button)["enabled"]
        f["export_take_line"] = dpg.get_value(export.take_text)
        dpg.set_value(export.preset, "turntable")
        export._sync()

        # -- a camera that is not there: the message in the panel, no crash ------------------------
        panel.sources["camera 99"] = ("camera", 99)  # as if it was listed, then unplugged
        panel.select_source("camera 99")
        window.safe(panel.start)()
        pump(window, 0.1)
        f["bad_camera_panel"] = dpg.get_value(panel.status_text)
        f["bad_camera_statusbar"] = dpg.get_value("status_msg")
        f["bad_camera_running"] = panel.session.running

        # -- drive from the video --------------------------------------------------------------------
        dpg.set_value("webcam_header", True)
        panel.add_video(video)
        names = state.avatar.head.expression_names
        smiles, samples = {}, []

        def watch_samples():
            """The smile of each applied sample; (frame index, capture time) of each live sample."""
            applied = panel.session.samples_applied
            if applied and applied not in smiles and state.driven is not None:
                expr = state.driven.expression[0]
                smiles[applied] = float(expr[names.index("mouthSmileLeft")] + expr[names.index("mouthSmileRight")])
            sample = panel.session.sample
            if sample is not None and sample.face_found:
                samples.append((sample.frame_index, sample.capture_time))

        started = time.perf_counter()
        window.safe(panel.start)()
        f["drive_started"] = pump(window, until=lambda: panel.session.samples_displayed >= 8, each=watch_samples)
        f["panel_status"] = dpg.get_value(panel.status_text)
        f["panel_stats"] = dpg.get_value(panel.stats_text)
        # A single frame's smile depends on which frames a loaded machine got to track (the user's shape is
        # fitted on the first one): the median over the samples shown says whether the face smiles.
        f["driven_smile"] = float(np.median(list(smiles.values())))
        f["driven_smile_samples"] = len(smiles)
        # Played in real time: frame i is never captured before i / fps seconds after Start.
        f["frames_ahead_of_real_time"] = sum(index / FPS > t - started + 1e-3 for index, t in samples)
        f["frames_checked_for_real_time"] = len(samples)
        # the viewport shows exactly the driven parameters (rendered here independently)
        with torch.no_grad():
            h, w = window.last_frame.shape[:2]
            expected = render(state.avatar.gaussians(AvatarState(state.driven, state.look())), state.camera(w, h),
                              backend=window.backend,
                              background=torch.tensor(state.view.background, dtype=torch.float32)).rgb.clamp(0, 1)
        f["driven_vs_expected"] = float((window.last_frame - expected).abs().max())
        f["driven_vs_neutral"] = float((window.last_frame - neutral_frame).abs().mean())
        preview = panel._preview[..., :3]
        f["preview_landmark_pixels"] = int(np.all(np.abs(preview - [0.35, 1.0, 0.45]) < 1e-6, axis=-1).sum())
        f["preview_iris_pixels"] = int(np.all(np.abs(preview - [0.3, 0.85, 1.0]) < 1e-6, axis=-1).sum())
        window._screenshot(str(out / "driven.png"))

        # -- record, save (dialog), load ---------------------------------------------------------------
        record_start = time.perf_counter()  # before the toggle: the take may only hold later captures
        window.safe(panel.toggle_recording)()
        f["record_label"] = dpg.get_item_configuration(panel.record_button)["label"]
        # Paced driving records displayed samples (~8-15 per s here, fewer on a loaded machine): record
        # until the take holds at least 5 samples over more than 1.2 s, however long that takes.
        recorder = panel.session.live._recorder
        f["recorded_enough"] = pump(window, until=lambda: len(recorder) >= 5
                                    and recorder._times[-1] - recorder._times[0] > 1.2)
        window.safe(panel.toggle_recording)()
        f["record_seconds"] = time.perf_counter() - record_start
        f["save_dialog_opened"] = dpg.does_item_exist("take_dialog")
        dpg.delete_item("take_dialog")
        take_path = out / "take.npz"
        panel.save_take(take_path)
        recorded = panel.session.take
        loaded = Take.load(take_path)
        f["take_frames"] = loaded.num_frames
        f["take_duration"] = loaded.duration
        f["take_roundtrip"] = bool(np.array_equal(loaded.params, recorded.params)
                                   and np.allclose(loaded.timestamps, recorded.timestamps))
        window.safe(panel.load_take)(str(take_path))
        f["take_line"] = dpg.get_value(panel.take_text)

        # -- stop: the sliders rule again --------------------------------------------------------------
        window.safe(panel.stop)()
        pump(window, 0.3)
        f["driven_after_stop"] = state.driven is not None
        f["stopped_vs_neutral"] = float((window.last_frame - neutral_frame).abs().max())

        # -- replay in real time -------------------------------------------------------------------------
        diffs = []
        window.safe(panel.toggle_replay)()
        t0 = time.perf_counter()
        ended = pump(window, until=lambda: not panel.session.replaying,
                     each=lambda: diffs.append(float((window.last_frame - neutral_frame).abs().mean())))
        f["replay_seconds"] = time.perf_counter() - t0 if ended else None
        f["replay_max_diff"] = max(diffs)
        f["replay_frames"] = len(diffs)
        pump(window, 0.2)
        f["driven_after_replay"] = state.driven is not None

        # -- export the take through the export panel's background job ----------------------------------
        window.safe(panel.export_take)()
        f["export_preset"] = dpg.get_value(export.preset)
        dpg.set_value(export.out, str(out / "take.mp4"))
        dpg.set_value(export.size, 96)
        window.safe(export.start)()
        f["export_done"] = pump(window, until=lambda: export.job is None)
        f["export_status"] = dpg.get_value("status_msg")
        f["export_expected_frames"] = len(loaded.resample(FPS))

        # -- a face that leaves the frame: hold, then ease to neutral ------------------------------------
        frames = read_frames(video)
        session = panel.session
        statuses = []
        leave = threading.Event()
        # a hold longer than the capture->display latency of a loaded 2-core machine, and an ease over
        # several renders, so both are seen by the main loop
        session.update_settings(hold_seconds=2.0, ease_seconds=3.0)
        window.safe(lambda: panel.start_source("scripted", lambda: ScriptedCamera(frames, leave, blank=True)))()
        shown = session.samples_displayed
        pump(window, until=lambda: session.samples_displayed >= shown + 5 and session.sample.face_found)
        f["noface_before"] = driven_norm(window)
        leave.set()
        pump(window, until=lambda: session.sample.status == "no face",
             each=lambda: statuses.append(session.sample.status))
        pump(window, 0.2)
        f["noface_statuses"] = list(dict.fromkeys(statuses))
        f["noface_panel"] = dpg.get_value(panel.status_text)
        f["noface_norm"] = driven_norm(window)
        window.safe(panel.stop)()
        session.update_settings(hold_seconds=0.5, ease_seconds=3.0)

        # -- the camera is lost mid-stream: message, easing to neutral, the app runs on, Start again ------
        trace = []
        unplug = threading.Event()
        window.safe(lambda: panel.start_source("scripted", lambda: ScriptedCamera(frames, unplug)))()
        shown = session.samples_displayed
        pump(window, until=lambda: session.samples_displayed >= shown + 5 and session.sample.face_found)
        f["lost_before"] = driven_norm(window)
        unplug.set()
        pump(window, until=lambda: not session.running and state.driven is None,
             each=lambda: trace.append((session.sample.status, driven_norm(window))))
        f["lost_statuses"] = list(dict.fromkeys(s for s, _ in trace))
        f["lost_panel"] = dpg.get_value(panel.status_text)
        f["lost_norms"] = [n for s, n in trace if "stopped delivering" in s] + [trace[-1][1]]
        f["lost_vs_neutral"] = float((window.last_frame - neutral_frame).abs().max())
        f["start_enabled_after_loss"] = dpg.get_item_configuration(panel.start_button)["enabled"]
        window._screenshot(str(out / "lost.png"))
        window.safe(lambda: panel.start_source("scripted", lambda: ScriptedCamera(frames)))()
        before = session.samples_displayed
        restart = []
        f["restarted"] = pump(window, until=lambda: session.samples_displayed >= before + 5,
                              each=lambda: restart.append(session.sample.status))
        f["restart_statuses"] = restart
        f["restarted_status"] = session.status()

        # -- closing the window stops the threads ---------------------------------------------------------
        window.shutdown()

        def drive_threads():
            return [t.name for t in threading.enumerate() if t.name == "tracking" or t.name.startswith("capture")]

        deadline = time.perf_counter() + DEADLINE
        while drive_threads() and time.perf_counter() < deadline:
            threading.Event().wait(0.05)  # joined threads may take a moment to leave the list
        f["threads_after_close"] = drive_threads()
    return action


if __name__ == "__main__":
    video, out = sys.argv[1], Path(sys.argv[2])
    drive(4, {3: scenario(video, out)}, str(out / "final.png"))
