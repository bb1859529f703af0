"""perse-studio (first version): opens the avatar in a real window under Xvfb and screenshots it."""

import os
import shutil
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from perse.avatar import Avatar, save_avatar
from tiny_models import tiny_categories, tiny_head

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def avatar_file(tmp_path_factory):
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=1500, seed=3)
    a.gaussians_params["color_logit"].data[:] = torch.tensor([3.0, -3.0, -3.0])  # a red sphere
    path = tmp_path_factory.mktemp("studio") / "tiny.perse"
    save_avatar(a, path)
    return path


def _studio(args, env=None):
    return subprocess.run([sys.executable, "-m", "app.main", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=300)


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (CI starts Xvfb)")
def test_screenshot_shows_the_avatar(avatar_file, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _studio([str(avatar_file), "--screenshot", str(shot), "--frames", "3", "--backend", "cpu"])
    assert proc.returncode == 0, proc.stderr
    img = imageio.imread(shot)[..., :3].astype(int)
    # the viewport (top-left 512x512) holds a red disc on a dark grey background
    view = img[8:520, 8:520]
    red = (view[..., 0] > 120) & (view[..., 1] < 100)
    assert 0.1 < red.mean() < 0.9


def test_no_display_is_a_one_line_error():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = _studio(["--screenshot", "/tmp/never.png"], env=env)
    assert proc.returncode == 2
    assert "no display" in proc.stderr and "perse render" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
