"""The studio's Webcam panel: driving from a video in the real app under Xvfb (pixels, status, takes, replay,
take export, no face, lost camera, closing), plus the panel's pure helpers."""

import json
import os
import subprocess
import sys
import types

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from app.drive_session import DriveSession, draw_preview, format_stats
from perse.drive import LiveStats
from perse.motion import ParamLayout, Take

_skip_without_display = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (CI starts Xvfb)")


def needs_display(test):
    return pytest.mark.gui(_skip_without_display(test))


VIEW = (slice(40, 740), slice(10, 880))  # the viewport image in the default 1280x800 layout
HERE = os.path.dirname(__file__)


def make_driving_video(path, frames: int = 45, fps: int = 30) -> None:
    """The astronaut portrait on a 640x480 canvas, shifted and scaled a little per frame (H.264 MP4).

    The motion is slow (a few seconds per swing): a loaded machine tracks only every 5th-20th frame, and
    between frames that far apart in a fast-moving video the tracked smile swings from 0.01 to 0.9."""
    import skimage.data

    face = skimage.data.astronaut()
    out = []
    for i in range(frames):
        scale = 0.8 + 0.05 * np.sin(i / 20)
        size = int(512 * scale)
        idx = (np.arange(size) / scale).astype(int)  # nearest-neighbour resize
        img = face[idx][:, idx]
        canvas = np.full((480, 640, 3), 90, np.uint8)
        dx, dy = int(60 + 20 * np.sin(i / 28)), int(20 + 10 * np.cos(i / 24))
        h, w = min(size, 480 - dy), min(size, 640 - dx)
        canvas[dy:dy + h, dx:dx + w] = img[:h, :w]
        out.append(canvas)
    imageio.mimwrite(path, out, fps=fps, macro_block_size=16)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Runs tests/studio_drive_script.py once; returns (findings, output folder)."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs an X display")
    out = tmp_path_factory.mktemp("drive")
    video = out / "astronaut.mp4"
    make_driving_video(video)
    env = dict(os.environ, XDG_CONFIG_HOME=str(out / "config"))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "studio_drive_script.py"), str(video), str(out)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=HERE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


def _img(out, name):
    return imageio.imread(out / name)[..., :3].astype(int)


@needs_display
def test_a_missing_camera_is_a_message_in_the_panel(session):
    f, _ = session
    assert f["bad_camera_panel"].startswith("cannot open camera 99")
    assert f["bad_camera_statusbar"].startswith("error: cannot open camera 99")
    assert f["bad_camera_running"] is False


@needs_display
def test_driving_from_a_video_moves_the_avatar(session):
    f, out = session
    assert f["drive_started"] and f["panel_status"] == "tracking"
    assert f["driven_vs_expected"] < 1e-6  # the viewport shows exactly the driven parameters
    assert f["driven_vs_neutral"] > 0.01
    assert f["driven_smile_samples"] >= 8 and f["driven_smile"] > 0.1  # the astronaut smiles
    changed = np.abs(_img(out, "driven.png")[VIEW] - _img(out, "neutral.png")[VIEW]).max(axis=-1) > 24
    assert changed.mean() > 0.01
    rows, cols = np.nonzero(changed)
    assert 150 < np.median(rows) < 650 and 200 < np.median(cols) < 670  # on the head, not the background
    assert f["preview_landmark_pixels"] > 60 and f["preview_iris_pixels"] > 0  # landmarks drawn on the preview


@needs_display
def test_status_shows_tracking_figures(session):
    f, _ = session
    import re

    assert re.search(r"camera \d+\.\d fps \| tracking \d+ ms\nlatency \d+ ms \(p90 \d+\)", f["panel_stats"])
    assert float(re.search(r"camera (\d+\.\d) fps", f["panel_stats"]).group(1)) > 0
    # the 30 fps video is played in real time: no frame was delivered before its time in the video
    assert f["frames_checked_for_real_time"] >= 8 and f["frames_ahead_of_real_time"] == 0


@needs_display
def test_record_save_load_replay(session):
    f, _ = session
    assert f["record_label"] == "Stop recording" and f["save_dialog_opened"]
    assert f["recorded_enough"] and f["take_frames"] >= 5
    assert 1.0 < f["take_duration"] <= f["record_seconds"]  # the take holds what was recorded, no more
    assert f["take_roundtrip"] and f["take_line"].endswith("(take.npz)")
    assert not f["driven_after_stop"] and f["stopped_vs_neutral"] < 1e-6  # the sliders rule again
    # replay drives the viewport in real time, then hands control back
    assert f["replay_frames"] >= 2 and f["replay_max_diff"] > 0.01
    assert f["replay_seconds"] is not None and f["replay_seconds"] >= f["take_duration"]
    assert not f["driven_after_replay"]


@needs_display
def test_take_exports_to_mp4_through_the_export_panel(session):
    f, out = session
    assert f["export_enabled_without_take"] is False and "none" in f["export_take_line"]
    assert f["export_preset"] == "take" and f["export_done"]
    assert f["export_status"].startswith("exported")
    frames = imageio.mimread(out / "take.mp4")
    assert len(frames) == f["export_expected_frames"] and frames[0].shape == (96, 96, 3)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


@needs_display
def test_no_face_holds_then_eases_to_neutral(session):
    f, _ = session
    statuses = f["noface_statuses"]
    assert f["noface_before"] > 0.1
    assert statuses.index("no face: holding") < statuses.index("no face: easing to neutral") < statuses.index("no face")
    assert f["noface_panel"] == "no face" and f["noface_norm"] == 0.0


@needs_display
def test_lost_camera_eases_to_neutral_and_start_works_again(session):
    f, out = session
    assert "stopped delivering frames" in f["lost_panel"] and "press Start" in f["lost_panel"]
    assert any(s.endswith("easing to neutral") for s in f["lost_statuses"])
    norms = [n for n in f["lost_norms"] if n is not None]
    assert norms[-1] == 0.0 and all(a >= b - 1e-6 for a, b in zip(norms, norms[1:]))  # monotone ease
    assert any(0.0 < n < 0.95 * max(norms) for n in norms)  # passed through intermediate poses
    assert f["lost_norms"][-1] is None  # then driving ended: the sliders rule
    assert f["lost_vs_neutral"] < 1e-6 and f["start_enabled_after_loss"]
    diff = np.abs(_img(out, "lost.png")[VIEW] - _img(out, "neutral.png")[VIEW]).max(axis=-1)
    assert (diff > 24).mean() < 0.001
    assert f["restarted"] and f["restarted_status"] == "tracking"


@needs_display
def test_closing_stops_the_drive_threads(session):
    f, _ = session
    assert f["threads_after_close"] == []


# -- pure helpers (no display) ------------------------------------------------------------------------

def test_draw_preview_letterboxes_and_marks_landmarks():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, 100:] = 255  # right half white
    out = np.zeros((60, 80, 4), np.float32)
    landmarks = np.zeros((478, 2))
    landmarks[:] = (50.0, 50.0)        # all points: frame pixel (50, 50) -> preview (20, 30)
    landmarks[468:] = (150.0, 25.0)    # irises: frame (150, 25) -> preview (60, 20)
    draw_preview(frame, landmarks, out)
    # 200x100 into 80x60: scale 0.4, 80x40 image, bars of 10 rows above and below
    assert np.allclose(out[:10, :, :3], 0.08, atol=0.02) and np.allclose(out[50:, :, :3], 0.08, atol=0.02)
    assert np.allclose(out[30, 5, :3], 0.0) and np.allclose(out[40, 75, :3], 1.0)
    assert np.allclose(out[30, 20, :3], (0.35, 1.0, 0.45))
    assert np.allclose(out[20, 60, :3], (0.3, 0.85, 1.0))
    assert np.allclose(out[..., 3], 1.0)
    ids = np.array([0, 468])
    draw_preview(frame, landmarks, out, ids)  # only the chosen ids are drawn
    assert np.allclose(out[30, 20, :3], (0.35, 1.0, 0.45)) and np.allclose(out[20, 60, :3], (0.3, 0.85, 1.0))


def test_format_stats():
    assert format_stats(None).startswith("camera - fps")
    text = format_stats(LiveStats(29.96, 11.4, 87.2, 120.6, 300, 12))
    assert text == "camera 30.0 fps | tracking 11 ms\nlatency 87 ms (p90 121) | 12 skipped"


class _State:
    """The two members of StudioState a DriveSession uses."""

    def __init__(self):
        self.driven, self.version = None, 0

    def set_driven(self, params):
        self.driven = params
        self.version += 1


def test_replay_follows_the_take_in_time_then_hands_back():
    names = ["a", "b"]
    layout = ParamLayout(len(names))
    params = np.zeros((3, layout.size), np.float32)
    params[:, 0] = [0.0, 1.0, 0.0]       # expression "a" rises and falls
    params[:, layout["jaw_rot"].start] = [0.0, 0.2, 0.4]
    head = types.SimpleNamespace(num_expression=2, expression_names=names, kind="builtin")
    drive = DriveSession(head)
    drive.take = Take(np.array([0.0, 1.0, 2.0]), params, names)
    state = _State()
    drive.replay(state, now=10.0)
    drive.poll(state, now=10.5)
    assert torch.allclose(state.driven.expression, torch.tensor([[0.5, 0.0]]))
    assert torch.allclose(state.driven.jaw_rot, torch.tensor([[0.1, 0.0, 0.0]]))
    drive.poll(state, now=11.75)
    assert torch.allclose(state.driven.expression, torch.tensor([[0.25, 0.0]]))
    assert drive.replaying
    drive.poll(state, now=12.1)  # past the end: control goes back to the sliders
    assert state.driven is None and not drive.replaying


@needs_display
def test_drive_flag_with_a_missing_video_is_a_one_line_error(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-m", "app.main", "--drive", str(tmp_path / "nope.mp4"), "--screenshot",
                           str(tmp_path / "x.png"), "--backend", "cpu"], capture_output=True, text=True, env=env,
                          timeout=120, cwd=os.path.dirname(HERE))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"perse-studio: error: video not found: {tmp_path / 'nope.mp4'}"
    assert not (tmp_path / "x.png").exists()
