"""Studio logic without a window: StudioState, looks files, config, the background export job."""


import json
import pytest
import torch

from app.config import StudioConfig
from app.export_job import ExportJob
from perse.avatar.latent import Look
from perse.looks import read_named_looks, write_named_looks
from app.panels.view import color_to_unit
from app.state import ATTR_RANGE, StudioState
from perse.avatar import Avatar
from perse.errors import PerseError
from perse.export.render_sequence import ExportSettings
from tiny_models import tiny_categories, tiny_head


@pytest.fixture
def state(tmp_path):
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300, seed=1).eval()
    for b in a.field.branches.values():
        torch.nn.init.normal_(b.out.weight, std=0.3)
    return StudioState(a, tmp_path / "tiny.perse")


def test_attribute_rows_build_the_look_and_bump_the_version(state):
    v0 = state.version
    state.apply_attr_spec("hat=blue:0.5")
    assert state.version > v0
    expected = state.avatar.latent.look_from_spec({"hat": ("blue", 0.5)})
    assert torch.allclose(state.look().codes["hat"], expected.codes["hat"])
    state.set_attribute("hat", weight=9.0)
    assert state.attributes["hat"].weight == ATTR_RANGE[1]  # clamped to the slider range
    state.random_attribute("beard", torch.Generator().manual_seed(0))
    assert state.attributes["beard"].sampled is not None
    state.reset_all_attributes()
    assert state.look().key() == state.avatar.latent.reference_look().key()
    with pytest.raises(PerseError, match="unknown category"):
        state.apply_attr_spec("hair=red")


def test_interpolation_needs_both_looks_and_blends_codes(state):
    with pytest.raises(PerseError, match="store a look as A"):
        state.set_alpha(0.5)
    state.store_look("A")
    state.apply_attr_spec("hat=red")
    state.store_look("B")
    state.set_alpha(0.25)
    a, b = state.interp.look_a.codes["hat"], state.interp.look_b.codes["hat"]
    assert torch.allclose(state.look().codes["hat"], 0.75 * a + 0.25 * b)
    state.set_attribute("hat", weight=0.0)  # touching a row leaves interpolation mode
    assert not state.interp.active


def test_expression_and_pose_controls(state):
    state.apply_expr_spec("e1=0.7")
    state.set_pose(jaw=0.2, gaze=(0.1, -0.05))
    p = state.head_params()
    assert p.expression[0, 1] == pytest.approx(0.7) and p.jaw_rot[0, 0] == pytest.approx(0.2)
    assert torch.allclose(p.eye_left_rot, torch.tensor([[-0.05, 0.1, 0.0]]))
    with pytest.raises(PerseError, match="unknown expression"):
        state.apply_expr_spec("smile=1")
    state.reset_expression()
    assert state.head_params().expression.abs().sum() == 0


def test_view_controls_are_bounded(state):
    state.orbit(400.0, 500.0)
    assert -180 <= state.view.yaw <= 180 and state.view.pitch == 80.0
    state.zoom_by(1000.0)
    assert state.view.zoom == 8.0
    cam = state.camera(300, 200)
    assert (cam.width, cam.height) == (300, 200)
    state.reset_view()
    assert state.view.zoom == 1.0


def test_looks_file_round_trip_and_errors(state, tmp_path):
    state.apply_attr_spec("hat=red")
    state.store_look("red hat")
    path = tmp_path / "looks.json"
    write_named_looks(state.named_looks, path)
    reference = state.avatar.latent.reference_look()
    back = read_named_looks(path, reference)
    assert torch.allclose(back["red hat"].codes["hat"], state.named_looks["red hat"].codes["hat"])
    with pytest.raises(PerseError, match="category this avatar lacks: hat .*another avatar"):
        read_named_looks(path, Look({"hair": torch.zeros(16)}))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PerseError, match="cannot read looks file"):
        read_named_looks(tmp_path / "bad.json", reference)


def test_config_round_trip_and_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cfg = StudioConfig.load()
    assert cfg.window == (1280, 800)
    cfg.window = (900, 700)
    for i in range(12):
        cfg.add_recent(tmp_path / f"a{i}.perse")
    cfg.save()
    back = StudioConfig.load()
    assert back.window == (900, 700) and len(back.recent) == 8 and back.recent[0].endswith("a11.perse")
    for corrupt in ("[1, 2", '{"window": "big"}', '{"recent": [1, 2]}', "[]", "\xff\xfe"):
        StudioConfig.path().write_text(corrupt)
        cfg = StudioConfig.load()  # corrupt: defaults, no crash, the file set aside and said so
        assert cfg.window == (1280, 800) and cfg.recent == []
        assert "studio.json was corrupt" in cfg.notice and "moved to studio.json.bad" in cfg.notice
        assert not StudioConfig.path().exists() and (tmp_path / "perse" / "studio.json.bad").read_text() == corrupt
    cfg.save()  # the defaults; the notice is not saved
    assert "notice" not in StudioConfig.path().read_text() and StudioConfig.load().notice is None


def test_color_to_unit_accepts_both_ranges():
    assert color_to_unit([255, 0, 127.5, 255]) == pytest.approx((1.0, 0.0, 0.5))
    assert color_to_unit([0.5, 0.25, 1.0]) == pytest.approx((0.5, 0.25, 1.0))


def test_export_job_finishes_and_cancel_leaves_no_file(state, tmp_path):
    done = ExportJob(state.avatar, ExportSettings("turntable", tmp_path / "a.mp4", frames=4, size=32,
                                                  backend="cpu")).start()
    done.wait(120)
    assert done.done and done.error is None and done.result == tmp_path / "a.mp4" and done.progress == 1.0
    job = ExportJob(state.avatar, ExportSettings("turntable", tmp_path / "b.mp4", frames=400, size=32,
                                                 backend="cpu"))
    job.cancel()  # cancelled before the first frame
    job.start().wait(120)
    assert job.cancelled and not (tmp_path / "b.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
    bad = ExportJob(state.avatar, ExportSettings("morph", tmp_path / "c.mp4", frames=4, size=32, backend="cpu"))
    bad.start().wait(60)
    assert "needs a category" in bad.error


def test_autosave_is_debounced_and_atomic(state, tmp_path, monkeypatch):
    from app.session import Autosaver, session_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    now = [0.0]
    saver = Autosaver(lambda: state, clock=lambda: now[0])
    saver.mark_saved()

    def tick(at):
        now[0] = at
        return saver.tick()

    assert not tick(0.0) and not session_path().exists()  # nothing changed: nothing written
    state.set_expression("e1", 0.5)
    assert not tick(1.0)  # changed: wait until it has been quiet for a moment
    assert tick(1.6) and json.loads(session_path().read_text())["expression"] == {"e1": 0.5}
    writes = []
    for k in range(7):  # a slider dragged continuously for 2 s: written within 1.5 s anyway
        state.set_expression("e1", 0.05 + 0.1 * k)
        writes.append(tick(2.0 + 0.3 * k))
    assert writes.count(True) == 1 and writes.index(True) == 5  # 1.5 s after the first unsaved change
    assert not tick(4.0) and tick(4.3)  # the drag ended at 3.8: written once it was quiet for 0.5 s
    assert json.loads(session_path().read_text())["expression"] == {"e1": pytest.approx(0.65)}
    assert not [p for p in session_path().parent.iterdir() if ".tmp" in p.name]


def test_playback_ping_pongs_or_stops_at_b(state):
    with pytest.raises(PerseError, match="store a look as A"):
        state.set_playing(True, now=0.0)
    assert not state.playback.playing
    state.store_look("A")
    state.apply_attr_spec("hat=red")
    state.store_look("B")
    state.playback.speed = 0.5
    state.set_playing(True, now=10.0)
    state.advance(now=11.0)
    assert state.interp.alpha == pytest.approx(0.5) and state.interp.active
    state.advance(now=12.5)  # past B: clamped, and the direction turns
    assert state.interp.alpha == 1.0 and state.playback.direction == -1.0 and state.playback.playing
    state.advance(now=13.5)
    assert state.interp.alpha == pytest.approx(0.5)
    state.playback.loop = False
    state.advance(now=15.0)  # past A without looping: stops there
    assert state.interp.alpha == 0.0 and not state.playback.playing


def test_animate_plays_the_expression_loop(state):
    state.set_animating(True, now=0.0)
    v0 = state.version
    state.advance(now=1.0)
    first = state.pose.expression.clone()
    state.advance(now=2.0)
    assert state.version > v0 and not torch.equal(first, state.pose.expression)
    state.set_animating(False)
    frozen = state.pose.expression.clone()
    state.advance(now=3.0)
    assert torch.equal(frozen, state.pose.expression)


def test_export_request_builds_the_settings(state, tmp_path):
    from perse.motion import ParamLayout, Take

    state.set_export(preset="turntable", fps=20, seconds=1.5, size=64, out=str(tmp_path / "a.mp4"))
    s = state.export_settings("cpu")
    assert (s.preset, s.frames, s.fps, s.size, s.out) == ("turntable", 30, 20, 64, tmp_path / "a.mp4")
    state.set_export(preset="morph")
    assert state.export_settings("cpu").category == state.avatar.categories[0].name
    a, b = state.look(), state.avatar.latent.reference_look()
    morph = state.export_settings("cpu", (a, b))
    assert morph.category is None and morph.look is a and morph.look_b is b
    state.set_export(preset="take")
    with pytest.raises(PerseError, match="no take to export"):
        state.export_settings("cpu")
    with pytest.raises(ValueError, match="unknown export setting take"):
        state.set_export(take=None)
    names = state.avatar.head.expression_names
    take = Take(torch.tensor([0.0, 1.0]).numpy(), torch.zeros(2, ParamLayout(len(names)).size).numpy(), names)
    state.hand_take_to_export(take, "smile")
    s = state.export_settings("cpu")
    assert s.take is take and s.fps == 30 and s.frames == take.frame_count(30) and s.out == tmp_path / "smile.mp4"


def test_drive_sources_keep_videos_and_the_selection(state, tmp_path):
    ui = state.drive_ui
    ui.set_cameras([], "camera 0 (none found)")
    assert ui.sources == {"camera 0 (none found)": ("camera", 0)} and ui.selected == "camera 0 (none found)"
    label = ui.add_video(tmp_path / "clip.mp4")
    ui.set_cameras([0, 2], "none")
    assert list(ui.sources) == ["camera 0", "camera 2", label] and ui.selected == label
    with pytest.raises(PerseError, match="unknown source 'camera 5'"):
        ui.select("camera 5")
    with pytest.raises(PerseError, match="video not found"):
        state.start_drive()  # the clip does not exist: said in the panel until the next start
    assert "video not found" in ui.error and not state.drive.running
    state.close()


def test_dispatcher_runs_typed_actions_in_order():
    from app.actions import Dispatcher

    d, ran, errors = Dispatcher(), [], []
    d.register("say", str, ran.append)
    d.register("twice", str, lambda text: (d.post("say", text), d.post("say", text)))
    d.register("fail", type(None), lambda _: (_ for _ in ()).throw(PerseError("refused")))
    with pytest.raises(KeyError, match="unknown action"):
        d.post("shout", "x")
    with pytest.raises(TypeError, match="action say takes"):
        d.post("say", 3)
    with pytest.raises(ValueError, match="registered twice"):
        d.register("say", str, print)
    d.post("say", "a")
    d.post("twice", "b")  # what a handler posts runs in the same pass, after what was queued before
    d.post("fail")
    d.post("say", "c")
    assert d.pending == 4 and ran == []
    assert d.process(errors.append) == 6
    assert ran == ["a", "c", "b", "b"] and [str(e) for e in errors] == ["refused"] and d.pending == 0
    d.post("fail")
    d.post("say", "d")
    with pytest.raises(PerseError, match="refused"):  # no report: the error propagates
        d.process()
    assert d.pending == 1
