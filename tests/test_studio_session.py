"""Studio autosave: edit in the real studio, kill -9 it, start it again, and find the work restored."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(__file__)
DEADLINE = 180.0  # generous: a loaded machine waits longer, it does not fail

pytestmark = [pytest.mark.gui, pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display")]


def _run(mode, env, **kw):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "studio_session_script.py"), mode], env=env, cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(condition) -> bool:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _saved(path, expected):
    """Whether the session file on disk holds the expected edits (a partial write never parses)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return data.get("named_looks", {}).keys() == expected["named_looks"].keys() and \
        data.get("expression") == expected["expression"] and data.get("recent_takes")


def test_kill_9_loses_nothing_that_was_autosaved(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    session = tmp_path / "config" / "perse" / "session.json"
    editor = _run("edit", env)
    try:
        line = editor.stdout.readline()
        assert line, editor.stderr.read()[-3000:]
        expected = json.loads(line)
        assert _wait_for(lambda: _saved(session, expected)), "the edits were never autosaved"
    finally:
        editor.send_signal(signal.SIGKILL)
        editor.wait(60)
    assert editor.returncode == -signal.SIGKILL
    assert not [p.name for p in session.parent.iterdir() if ".tmp" in p.name]  # atomic writes only

    proc = _run("report", env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    restored = report["snapshot"]
    for key in ("avatar", "attributes", "expression", "pose", "interpolation", "named_looks"):
        assert restored[key] == expected[key], key
    assert restored["attributes"]["hair"] == {"variant": "blonde", "weight": 0.8, "sampled": None}
    assert restored["interpolation"]["alpha"] == 0.4 and restored["interpolation"]["active"]
    assert "restored the last session" in report["status"]
    assert report["take"] is not None and [row[0] for row in report["take"]] == [0.0, 0.5, 1.0]
    assert report["take_path"] is None  # the recorded take is still unsaved, and offered for saving


def test_a_corrupt_session_or_config_never_stops_the_studio(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    folder = tmp_path / "config" / "perse"
    folder.mkdir(parents=True)
    (folder / "studio.json").write_text('{"window": [1280, "tall"]')
    (folder / "session.json").write_text('{"format": "perse-studio-session-1", "avatar": 5')
    proc = _run("report", env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    status = json.loads(out.strip().splitlines()[-1])["status"]
    assert "studio.json was corrupt" in status and "session.json was corrupt" in status
    assert (folder / "studio.json.bad").exists() and (folder / "session.json.bad").exists()
