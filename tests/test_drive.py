"""perse.drive: filters, hand-off, sources, retargeting on exact landmarks, takes, the live threads
and the ``perse drive`` command (on the bundled avatar and a driving video made from a real photo)."""

import threading
import time

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from perse.cli import main
from perse.drive import (CameraLost, Driver, DriveSettings, FrameSource, ImageFolderSource, LatestValue, LiveDriver,
                         OneEuroFilter, Retargeter, VideoFileSource, WebcamSource, gaze_from_irises, list_cameras)
from perse.bench.accuracy import moving_photo_frames, place_on_canvas
from perse.drive.driver import ease_weight, select_face
from perse.errors import PerseError
from perse.head.model import HeadParams
from perse.render.camera import Camera
from perse.geometry.rotations import euler_to_axis_angle
from perse.motion import ParamLayout, Take, TakeRecorder
from perse.track.landmarks import FaceLandmarks

DEADLINE = 120.0  # seconds a threaded test waits for a condition: generous, so a loaded machine only waits longer


def wait_for(condition, deadline: float = DEADLINE) -> bool:
    """Poll `condition()` until it holds (True) or `deadline` seconds pass (False)."""
    end = time.perf_counter() + deadline
    while not condition():
        if time.perf_counter() > end:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(scope="module")
def driving_video(tmp_path_factory, astronaut_face):
    """A 24-frame 640x480 MP4 of the astronaut photo drifting (real face, MediaPipe finds it)."""
    path = tmp_path_factory.mktemp("video") / "drive.mp4"
    imageio.mimwrite(path, moving_photo_frames(astronaut_face, 24), fps=24, codec="libx264", quality=8,
                     macro_block_size=1, ffmpeg_log_level="error")
    return path


# --------------------------------------------------------------------------------------------------
# small parts
# --------------------------------------------------------------------------------------------------
def test_one_euro_passes_constants_and_tracks_steps():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    for i in range(10):
        out = f(np.array([2.0, -1.0]), i / 30)
    np.testing.assert_allclose(out, [2.0, -1.0])
    f.reset()
    f(np.zeros(1), 0.0)
    values = [f(np.ones(1), i / 30)[0] for i in range(1, 120)]
    assert 0 < values[0] < 0.3  # smoothed, not jumped
    assert values[-1] > 0.99  # and converged
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_one_euro_kills_jitter_and_beta_cuts_lag():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (300, 1))
    f = OneEuroFilter(min_cutoff=0.3, beta=0.0)
    out = np.array([f(x, i / 30) for i, x in enumerate(noise)])
    assert np.abs(np.diff(out[30:], axis=0)).mean() < 0.1 * np.abs(np.diff(noise[30:], axis=0)).mean()
    ramp = np.arange(60)[:, None] * 0.05  # 1.5 units / s
    lag = {}
    for beta in (0.0, 5.0):
        f = OneEuroFilter(min_cutoff=0.3, beta=beta)
        lag[beta] = ramp[-1, 0] - [f(x, i / 30) for i, x in enumerate(ramp)][-1][0]
    assert lag[5.0] < 0.3 * lag[0.0]


def test_latest_value_hands_over_only_the_newest():
    slot = LatestValue()
    for i in range(5):
        slot.put(i)
    value, version = slot.wait_newer(0, timeout=0.1)
    assert (value, version) == (4, 5)
    assert slot.wait_newer(version, timeout=0.01) == (None, version)  # nothing newer: times out
    threading.Timer(0.05, lambda: slot.put("late")).start()
    assert slot.wait_newer(version, timeout=60.0)[0] == "late"  # returns on the put, not the timeout


def test_ease_weight_holds_then_eases():
    assert ease_weight(0.2, 0.5, 1.0) == 1.0
    assert 0.0 < ease_weight(1.0, 0.5, 1.0) < 1.0
    assert ease_weight(1.6, 0.5, 1.0) == 0.0
    assert ease_weight(0.7, 0.5, 1.0) > ease_weight(1.2, 0.5, 1.0)


def _face(cx, cy, half):
    pts = np.random.default_rng(0).uniform(-half, half, (478, 2)) + [cx, cy]
    return FaceLandmarks(pts, np.zeros(478))


def test_select_face_follows_the_tracked_one_else_the_largest():
    big, small = _face(100, 100, 60), _face(400, 300, 30)
    assert select_face([big, small], None) is big
    assert select_face([big, small], np.array([405.0, 295.0])) is small  # the one followed before
    assert select_face([big, small], np.array([1000.0, 1000.0])) is big  # lost: the largest
    assert select_face([], None) is None


def test_gaze_from_irises_signs():
    pts = np.zeros((478, 2))
    for outer, inner, iris, x0 in ((33, 133, 468, 100.0), (263, 362, 473, 200.0)):
        pts[outer], pts[inner] = (x0 - 15, 100), (x0 + 15, 100)
        pts[iris] = (x0, 100)
    assert np.allclose(gaze_from_irises(pts), 0.0)
    pts[[468, 473], 0] += 4  # irises to the image right: a turn toward +x (about +y)
    assert gaze_from_irises(pts)[1] > 0.2
    pts[[468, 473], 0] -= 4
    pts[[468, 473], 1] -= 4  # up in the image: a negative turn about +x
    assert gaze_from_irises(pts)[0] < -0.2


# --------------------------------------------------------------------------------------------------
# retargeting on exact landmarks (no detector): the solver and the retarget arithmetic
# --------------------------------------------------------------------------------------------------
def _landmarks(head, camera, params):
    with torch.no_grad():
        lmk = head(params).landmarks[0]
    pts = np.zeros((478, 2))
    pts[head.landmark_indices.numpy()] = camera.project(lmk).numpy()
    return pts


@pytest.fixture(scope="module")
def webcam_camera(builtin_head):
    from perse.render.framing import orbit_view

    with torch.no_grad():
        rest = builtin_head(builtin_head.zero_params()).vertices[0]
    cam = orbit_view(rest, 0.0, 0.0, 480)
    K = cam.K.clone()
    K[0, 2] = (640 - 1) / 2  # a 640x480 frame with the same focal length
    return Camera(K, cam.world_to_cam, 640, 480)


def _fov(camera):
    return float(np.degrees(2 * np.arctan(0.5 * 640 / float(camera.K[0, 0]))))


def test_retargeter_recovers_known_parameters_and_calibrates(builtin_head, webcam_camera):
    from perse.drive.retarget import RetargetSettings

    r = Retargeter(builtin_head, RetargetSettings(fov_deg=_fov(webcam_camera)))
    L = r.layout
    rest_pose = HeadParams(global_rot=torch.tensor(euler_to_axis_angle(0.15, 0.05, 0.0)[None], dtype=torch.float32),
                           expression=builtin_head.expression_vector({"mouthSmileLeft": 0.3})[None])
    neutral = _landmarks(builtin_head, webcam_camera, rest_pose)
    r.calibrate([neutral] * 3, (640, 480))
    out = r.retarget(r.track(neutral, (640, 480))[0])
    assert np.abs(out).max() < 0.02  # the user's resting face drives a neutral avatar
    turn = euler_to_axis_angle(0.15 + 0.25, 0.05, 0.0)
    moved = HeadParams(global_rot=torch.tensor(turn[None], dtype=torch.float32), jaw_rot=torch.tensor([[0.2, 0.0, 0.0]]),
                       expression=builtin_head.expression_vector({"mouthSmileLeft": 0.3, "browInnerUp": 0.6})[None])
    for _ in range(3):
        raw, fit = r.track(_landmarks(builtin_head, webcam_camera, moved), (640, 480))
    out = r.retarget(raw)
    assert fit.mean_error_iod < 0.005
    assert abs(out[L["jaw_rot"]][0] - 0.2) < 0.02
    assert abs(out[L["expression"]][builtin_head.expression_names.index("browInnerUp")] - 0.6) < 0.1
    np.testing.assert_allclose(out[L["global_rot"]], euler_to_axis_angle(0.25, 0.0, 0.0), atol=0.03)
    r.settings.gain = 2.0
    assert abs(r.retarget(raw)[L["jaw_rot"]][0] - 0.4) < 0.04  # gain, within the jaw's bound
    r.settings.head_pose = False
    assert np.all(r.retarget(raw)[L["global_rot"]] == 0) and np.all(r.retarget(raw)[L["translation"]] == 0)


def test_clamp_keeps_parameters_plausible(builtin_head):
    r = Retargeter(builtin_head)
    L = r.layout
    wild = np.full(L.size, 10.0)
    out = r.clamp(wild)
    assert out[L["expression"]].max() == 1.0  # ARKit range
    assert out[L["jaw_rot"]][0] == r.config.jaw_bounds[0][1]
    assert np.abs(out[L["global_rot"]]).max() <= max(r.config.rotation_bounds)
    assert np.abs(out[L["translation"]]).max() <= 0.2


def test_param_layout_round_trip(builtin_head):
    L = ParamLayout(builtin_head.num_expression)
    v = np.arange(L.size, dtype=np.float64) / 100
    np.testing.assert_allclose(L.from_head_params(L.to_head_params(v)), v, atol=1e-6)
    assert L.to_head_params(v).identity is None  # the avatar keeps its identity


# --------------------------------------------------------------------------------------------------
# takes
# --------------------------------------------------------------------------------------------------
def test_take_save_load_resample(builtin_head, tmp_path):
    rec = TakeRecorder(list(builtin_head.expression_names), builtin_head.kind)
    L = ParamLayout(builtin_head.num_expression)
    for i in range(11):
        v = L.zeros()
        v[L["jaw_rot"]][0] = i / 10
        rec.add(100.0 + i * 0.1, v)
    rec.add(100.0 + 1.0, L.zeros())  # a repeated timestamp is ignored
    take = rec.take()
    assert take.num_frames == 11 and abs(take.duration - 1.0) < 1e-9
    path = take.save(tmp_path / "t.npz")
    back = Take.load(path)
    np.testing.assert_allclose(back.params, take.params)
    frames = back.resample(30)
    assert len(frames) == 31
    assert abs(frames[15][L["jaw_rot"]][0] - 0.5) < 1e-6
    assert abs(back.vector_at(0.25)[L["jaw_rot"]][0] - 0.25) < 1e-6
    back.check_head(builtin_head)


def test_take_recorder_leaves_out_samples_captured_before_its_start(builtin_head):
    L = ParamLayout(builtin_head.num_expression)
    rec = TakeRecorder(list(builtin_head.expression_names), builtin_head.kind, start=100.05)
    for t in (100.0, 100.1, 100.2):
        rec.add(t, L.zeros())
    take = rec.take()
    assert take.num_frames == 2 and abs(take.duration - 0.1) < 1e-9


def test_take_bad_files(builtin_head, tmp_path):
    with pytest.raises(PerseError, match="take not found"):
        Take.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PerseError, match="cannot read take"):
        Take.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(PerseError, match="not a PERSE take"):
        Take.load(other)
    empty = TakeRecorder(list(builtin_head.expression_names)).take()
    with pytest.raises(PerseError, match="empty"):
        empty.save(tmp_path / "e.npz")
    assert not (tmp_path / "e.npz").exists()
    foreign = Take([0.0], np.zeros((1, 2 + 15)), ["a", "b"], "flame")
    with pytest.raises(PerseError, match="recorded for a head with 2 expressions"):
        foreign.check_head(builtin_head)


# --------------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------------
def test_video_source_reads_and_rewinds(driving_video):
    with VideoFileSource(driving_video) as src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
        assert len(frames) == 24 and frames[0].shape == (480, 640, 3) and frames[0].dtype == np.uint8
        assert abs(src.fps - 24) < 0.5
        src.rewind()
        assert np.array_equal(src.read(), frames[0])


def test_bad_sources_give_one_line_errors(tmp_path):
    with pytest.raises(PerseError, match="video not found"):
        VideoFileSource(tmp_path / "none.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    with pytest.raises(PerseError, match="cannot read video|has no frames"):
        VideoFileSource(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(PerseError, match="cannot read video|has no frames"):
        VideoFileSource(empty)
    folder = tmp_path / "imgs"
    folder.mkdir()
    with pytest.raises(PerseError, match="no images"):
        ImageFolderSource(folder)
    imageio.imwrite(folder / "a.png", np.zeros((48, 48, 3), np.uint8))
    imageio.imwrite(folder / "b.png", np.zeros((48, 64, 3), np.uint8))
    src = ImageFolderSource(folder)
    src.read()
    with pytest.raises(PerseError, match="use images of one size"):
        src.read()


def test_missing_camera_is_a_clear_error():
    index = max(list_cameras(), default=-1) + 7
    with pytest.raises(PerseError, match=f"cannot open camera {index}"):
        WebcamSource(index)
    with pytest.raises(PerseError, match="negative"):
        WebcamSource(-1)


# --------------------------------------------------------------------------------------------------
# the driver on real frames, and the live threads
# --------------------------------------------------------------------------------------------------
class FramesSource(FrameSource):
    """Frames from a list at a fixed rate, like a camera; raises CameraLost at `lose_at` (if given)."""

    live = True

    def __init__(self, frames, fps=30.0, lose_at=None):
        self.frames, self.fps, self.lose_at, self.name, self.i = frames, fps, lose_at, "test camera", 0

    def read(self):
        if self.lose_at is not None and self.i >= self.lose_at:
            raise CameraLost("test camera stopped delivering frames (unplugged?)")
        time.sleep(1.0 / self.fps)
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return frame


def test_driver_holds_then_eases_without_a_face(builtin_head, astronaut_face):
    face = place_on_canvas(astronaut_face)
    blank = np.full_like(face, 90)
    with Driver(builtin_head, DriveSettings(smoothing=0.0, hold_seconds=0.5, ease_seconds=1.0)) as d:
        s = d.process(face, 0.0)
        assert s.face_found and s.status == "tracking" and s.landmarks.shape == (478, 2)
        shown = s.vector.copy()
        assert np.abs(shown).max() > 0.01
        held = d.process(blank, 0.3)
        assert not held.face_found and held.status == "no face: holding"
        np.testing.assert_allclose(held.vector, shown)
        easing = d.process(blank, 1.0)
        assert easing.status == "no face: easing to neutral"
        assert 0 < np.abs(easing.vector).max() < np.abs(shown).max()
        gone = d.process(blank, 2.0)
        assert gone.status == "no face" and np.all(gone.vector == 0)
        back = d.process(face, 2.1)
        assert back.face_found


def test_driver_filters_slow_frames_without_restarting(builtin_head, astronaut_face):
    """Frames with a face that arrive further apart than the hold (a loaded machine) are filtered as
    usual: a long time step lets the filter follow the new pose, it does not glide from the old one."""
    frames = [place_on_canvas(astronaut_face), place_on_canvas(astronaut_face, shift=(30, 10), scale=1.1)]
    with Driver(builtin_head, DriveSettings(smoothing=0.0)) as raw, Driver(builtin_head, DriveSettings()) as smooth:
        targets = [raw.process(f, t).vector for f, t in zip(frames, (0.0, 2.0))]
        shown = [smooth.process(f, t).vector for f, t in zip(frames, (0.0, 2.0))]
    moved = np.linalg.norm(targets[1] - targets[0])
    assert moved > 0.05  # the head moved and turned
    np.testing.assert_allclose(shown[0], targets[0])  # the first sample passes through
    # after 2 s the filter is near the new pose (10% off here); restarted, it was 55% off
    assert np.linalg.norm(shown[1] - targets[1]) < 0.25 * moved


def test_driver_mirror_flips_the_frame(builtin_head, astronaut_face):
    face = place_on_canvas(astronaut_face, shift=(60, 0))
    with Driver(builtin_head, DriveSettings(mirror=True)) as d:
        s = d.process(face, 0.0)
    assert s.landmarks[:, 0].mean() < 320  # the face moved to the left half
    assert np.array_equal(s.frame, face[:, ::-1])


def test_live_driver_latest_value_lost_camera_and_restart(builtin_head, astronaut_face):
    frames = [place_on_canvas(astronaut_face)] * 2
    sources = [FramesSource(frames, fps=60.0, lose_at=40), FramesSource(frames, fps=60.0)]
    live = LiveDriver(builtin_head, lambda: sources.pop(0), DriveSettings(hold_seconds=0.1, ease_seconds=0.3))
    live.start()
    try:
        deadline = time.perf_counter() + DEADLINE
        while time.perf_counter() < deadline and "unplugged" not in live.status:
            sample, _ = live.latest()
            if sample is not None and sample.face_found:
                live.mark_displayed(sample)
            time.sleep(0.01)
        assert "unplugged" in live.status and "eases to neutral" in live.status
        stats = live.stats()
        assert stats.frames_tracked > 5 and stats.tracking_ms > 0 and stats.latency_ms > 0
        wait_for(lambda: not live.running)  # hold + ease, then the tracking thread ends
        sample, _ = live.latest()
        assert not sample.face_found and np.all(sample.vector == 0)
        assert not live.running  # eased to neutral: the tracking thread has stopped
        live.start()  # the camera is back
        assert wait_for(lambda: (live.latest()[0] or sample).face_found)
    finally:
        live.close()


def test_live_driver_skips_stale_frames_and_records(builtin_head, astronaut_face):
    frames = [place_on_canvas(astronaut_face)]
    live = LiveDriver(builtin_head, lambda: FramesSource(frames, fps=400.0), DriveSettings())
    live.start()
    try:
        started = time.perf_counter()
        live.start_recording()
        assert wait_for(lambda: live.stats().frames_tracked >= 4)
        take = live.stop_recording()
        stopped = time.perf_counter()
    finally:
        live.close()
    stats = live.stats()
    assert stats.frames_skipped > stats.frames_tracked  # the camera outran tracking: stale frames were dropped
    assert take.num_frames >= 3 and np.all(np.diff(take.timestamps) > 0)
    assert take.duration <= stopped - started  # frames captured before the start stay out of the take


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------
def test_cli_drive_video_side_by_side_record_and_replay(driving_video, tmp_path):
    out, take_path = tmp_path / "out.mp4", tmp_path / "take.npz"
    assert main(["drive", "default", "--video", str(driving_video), "--out", str(out), "--side-by-side",
                 "--record", str(take_path), "--size", "96", "--calibrate", "3"]) == 0
    frames = imageio.mimread(out)
    assert len(frames) == 24
    assert frames[0].shape == (96, 128 + 96, 3)  # 640x480 scaled to 96 high, then the avatar
    take = Take.load(take_path)
    assert take.num_frames == 24 and abs(take.duration - 23 / 24) < 1e-6
    replay = tmp_path / "replay.mp4"
    assert main(["drive", "default", "--params", str(take_path), "--out", str(replay), "--size", "64",
                 "--attr", "hair=blonde", "--fps", "24"]) == 0
    assert len(imageio.mimread(replay)) == 24
    exported = tmp_path / "exported.mp4"
    assert main(["export", "default", "--preset", "take", "--take", str(take_path), "--out", str(exported),
                 "--size", "64", "--fps", "12"]) == 0
    assert len(imageio.mimread(exported)) == 12


def test_cli_drive_errors(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    index = max(list_cameras(), default=-1) + 7
    assert main(["drive", "default", "--webcam", str(index), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"perse: error: cannot open camera {index}") and "\n" not in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["drive", "default", "--video", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot read video" in err or "has no frames" in err
    blank = tmp_path / "blank.mp4"
    imageio.mimwrite(blank, [np.full((64, 64, 3), 90, np.uint8)] * 4, fps=10, macro_block_size=1,
                     ffmpeg_log_level="error")
    assert main(["drive", "default", "--video", str(blank), "--out", str(out)]) == 2
    assert "no face found in any of the 4 frames" in capsys.readouterr().err
    assert main(["drive", "default", "--params", str(tmp_path / "none.npz"), "--out", str(out)]) == 2
    assert "take not found" in capsys.readouterr().err
    assert main(["drive", "default", "--params", str(tmp_path / "none.npz"), "--out", str(out),
                 "--side-by-side"]) == 2
    assert "--side-by-side needs --video" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*o.mp4*"))


def test_driving_a_flame_head(tmp_path, astronaut_face):
    """FLAME (synthetic, official format) with a 105-point embedding without irises: the jaw comes back
    from exact landmarks, real frames drive it, and gaze comes from the iris landmarks directly."""
    from flame_fixtures import write_synthetic_embedding, write_synthetic_flame

    from perse.head.flame import load_flame
    from perse.render.framing import orbit_view

    write_synthetic_flame(tmp_path / "generic_model.pkl")
    write_synthetic_embedding(tmp_path / "emb.npz")
    flame = load_flame(tmp_path / "generic_model.pkl", tmp_path / "emb.npz")
    r = Retargeter(flame)
    assert not r.fitter.has_eyes
    with torch.no_grad():
        rest = flame(flame.zero_params()).vertices[0]
    camera = orbit_view(rest, 0.0, 0.0, 480)
    camera = Camera(camera.K, camera.world_to_cam, 480, 480)
    r.settings.fov_deg = float(np.degrees(2 * np.arctan(240 / float(camera.K[0, 0]))))
    r.calibrate([_landmarks(flame, camera, flame.zero_params())], (480, 480))
    opened = HeadParams(jaw_rot=torch.tensor([[0.15, 0.0, 0.0]]))
    for _ in range(3):
        raw, fit = r.track(_landmarks(flame, camera, opened), (480, 480))
    assert abs(r.retarget(raw)[r.layout["jaw_rot"]][0] - 0.15) < 0.03
    with Driver(flame, DriveSettings(smoothing=0.0)) as d:
        s = d.process(place_on_canvas(astronaut_face), 0.0)
    assert s.face_found and s.vector.shape == (flame.num_expression + 15,)
    np.testing.assert_allclose(s.vector[d.layout["eye_left_rot"]], s.vector[d.layout["eye_right_rot"]])


def test_paced_live_driver_tracks_in_turn_with_a_slow_consumer(builtin_head, astronaut_face):
    """Paced: the tracker waits for the consumer to display a sample before tracking the next frame, so
    a slow consumer gets fresh samples and frames nobody shows are not tracked."""
    frames = [place_on_canvas(astronaut_face)]
    source = FramesSource(frames, fps=60.0)
    live = LiveDriver(builtin_head, lambda: source, DriveSettings(), paced=True)
    live.pacer.timeout_s = DEADLINE  # a loaded machine's slow render must not look like "no consumer"
    live.start()
    shown = []  # (frame index of the displayed sample, frames the camera had delivered when it was displayed)
    try:
        seen = 0
        deadline = time.perf_counter() + DEADLINE
        while len(shown) < 8 and time.perf_counter() < deadline:
            sample, version = live.latest()
            if sample is None or version == seen:
                time.sleep(0.002)
                continue
            seen = version
            time.sleep(0.15)  # a slow render
            shown.append((sample.frame_index, source.i))
            live.mark_displayed(sample)
    finally:
        live.close()
    stats = live.stats()
    assert len(shown) == 8
    assert stats.frames_tracked <= len(shown) + 2  # one sample per displayed frame, not one per camera frame
    # Fresh samples: each displayed sample was tracked from a frame at most two frames older than the
    # camera's newest when the sample before it was displayed (the newest may still be in hand-off).
    assert all(index >= delivered - 2 for (index, _), (_, delivered) in zip(shown[1:], shown))
    assert stats.latency_ms > 0


def test_no_signal_holds_from_when_the_face_was_last_tracked(builtin_head, astronaut_face):
    """Camera lost: the hold counts from when the last face was tracked, however old its frame was."""
    with Driver(builtin_head, DriveSettings(smoothing=0.0, hold_seconds=0.5, ease_seconds=1.0)) as d:
        stale_capture = time.perf_counter() - 2.0  # a frame that waited 2 s before tracking
        assert d.process(place_on_canvas(astronaut_face), stale_capture).face_found
        lost = d.no_signal("camera lost")
        assert lost.status == "camera lost: holding" and np.abs(lost.vector).max() > 0
        later = d.no_signal("camera lost", now=time.perf_counter() + 3.0)
        assert later.status == "camera lost" and np.all(later.vector == 0)
