"""perse-studio in a real window under Xvfb: screenshots checked by pixels, export, errors."""

import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from perse.paths import DEFAULT_AVATAR

pytestmark = pytest.mark.gui
needs_display = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (CI starts Xvfb)")
VIEW = (slice(40, 740), slice(10, 880))  # the viewport image in the default 1280x800 layout


def _studio(args, tmp_path, env=None):
    env = dict(os.environ if env is None else env)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # never the user's real config
    return subprocess.run([sys.executable, "-m", "app.main", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _shot(tmp_path, name, *flags):
    out = tmp_path / f"{name}.png"
    proc = _studio([str(DEFAULT_AVATAR), "--screenshot", str(out), "--frames", "4", "--backend", "cpu", *flags],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    return imageio.imread(out)[..., :3].astype(int)


@pytest.fixture(scope="module")
def reference_shot(tmp_path_factory):
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs an X display")
    return _shot(tmp_path_factory.mktemp("ref"), "ref")


def _changed(a, b, threshold=24):
    return np.abs(a[VIEW] - b[VIEW]).max(axis=-1) > threshold


@needs_display
def test_viewport_shows_the_avatar(reference_shot, tmp_path):
    view = reference_shot[VIEW]
    background = np.array([41, 43, 48])  # (0.16, 0.17, 0.19) * 255
    head = np.abs(view - background).max(axis=-1) > 30
    assert 0.15 < head.mean() < 0.7  # a head, not an empty or a flat viewport
    ys, xs = np.nonzero(head)
    assert abs(xs.mean() - view.shape[1] / 2) < 80  # centred


@needs_display
def test_attribute_change_stays_in_its_region(reference_shot, tmp_path):
    blonde = _shot(tmp_path, "blonde", "--attr", "hair=blonde")
    changed = _changed(reference_shot, blonde)
    rows = np.nonzero(changed)[0]
    assert changed.mean() > 0.02  # the hair visibly changed
    # ...and (almost) nothing of the face below the eyes changed (the hair layer reaches down beside
    # the ears, so this is a box around the lower face, not a row)
    assert changed[330:600, 300:540].mean() < 0.01


@needs_display
def test_expression_change_moves_the_mouth(reference_shot, tmp_path):
    open_mouth = _shot(tmp_path, "jaw", "--expr", "jawOpen=1.0")
    changed = _changed(reference_shot, open_mouth)
    rows, cols = np.nonzero(changed)
    assert changed.mean() > 0.005
    assert (rows < 300).mean() < 0.02  # hair and forehead untouched
    assert 380 < np.median(rows) < 700  # the change is at the mouth/chin


@needs_display
def test_export_panel_writes_a_playable_mp4(tmp_path):
    out = tmp_path / "take.mp4"
    proc = _studio([str(DEFAULT_AVATAR), "--export", str(out), "--export-seconds", "0.3", "--backend", "cpu"],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = imageio.mimread(out)
    assert len(frames) == 9 and frames[0].shape[2] == 3
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp" or ".tmp." in p.name] == []
    config = json.loads((tmp_path / "config" / "perse" / "studio.json").read_text())
    assert config["recent"] and config["recent"][0].endswith("default.perse")


@needs_display
def test_unreadable_avatar_is_a_one_line_error(tmp_path):
    junk = tmp_path / "junk.perse"
    junk.write_bytes(b"junk")
    proc = _studio([str(junk), "--screenshot", str(tmp_path / "x.png")], tmp_path)
    assert proc.returncode == 2
    assert "not a readable .perse file" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_no_display_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = _studio(["--screenshot", str(tmp_path / "never.png")], tmp_path, env=env)
    assert proc.returncode == 2
    assert "no display" in proc.stderr and "perse render" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@needs_display
def test_tiny_window_bad_avatar_and_failing_callback_do_not_crash(tmp_path):
    junk = tmp_path / "junk.perse"
    junk.write_bytes(b"junk")
    shot = tmp_path / "after.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "studio_script.py"), str(junk),
                           str(shot)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout.strip().splitlines()[-1])
    assert min(findings["texture_after_tiny"]) >= 16
    assert "not a readable .perse file" in findings["open_junk"]
    assert findings["kept_avatar"] and findings["error_dialog"]
    assert findings["status_after_bad_callback"].startswith("error: store a look as A")
    img = imageio.imread(shot)[..., :3].astype(int)
    assert np.abs(img[VIEW] - np.array([41, 43, 48])).max(axis=-1).__gt__(30).mean() > 0.1  # still rendering


@needs_display
def test_new_from_portrait_previews_the_fit(tmp_path):
    import skimage.data

    portrait = tmp_path / "astronaut.png"
    imageio.imwrite(portrait, skimage.data.astronaut())
    shot = tmp_path / "create.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "studio_create_script.py"),
                           str(portrait), str(shot)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout.strip().splitlines()[-1])
    assert findings["fit_text"].startswith("fit error") and "% of the eye distance" in findings["fit_text"]
    assert not findings["status"].startswith("error")
    assert shot.stat().st_size > 0


@needs_display
def test_panels_play_animate_and_post_actions(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "studio_actions_script.py"),
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    f = json.loads(proc.stdout.strip().splitlines()[-1])
    assert f["play_without_looks"].startswith("error: store a look as A") and not f["play_box_without_looks"]
    assert f["playing"] and f["play_ended"]  # without Loop, Play stops at B by itself
    assert f["alpha_after_play"] == 1.0 and f["alpha_slider_after_play"] == 1.0 and not f["play_box_after_play"]
    assert f["animated_expression"] > 0 and not f["animating_after_stop"]
    assert f["shown_is_named"]
    assert f["save_status"] == f"saved 1 looks to {tmp_path / 'looks.json'}"
    assert f["load_status"] == f"loaded looks from {tmp_path / 'looks.json'}"
    assert f["loaded_looks"] == ["bearded"] and f["listed_looks"] == ["bearded"]
    assert f["bad_looks_status"].startswith("error: ") and "is not a looks file" in f["bad_looks_status"]
    assert "\n" not in f["bad_looks_status"]
    assert f["export_preset_shown"] == "morph" and f["export_status"].startswith("exporting morph to")
    assert f["export_cancel_enabled"] and f["export_done"] and f["export_final_status"].startswith("exported")
    frames = imageio.mimread(tmp_path / "morph.mp4")
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
