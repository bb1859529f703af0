"""The `perse` command line on a tiny avatar: outputs, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from perse.avatar import Avatar, save_avatar
from perse.cli import main
from tiny_models import tiny_categories, tiny_head


@pytest.fixture(scope="module")
def avatar_file(tmp_path_factory):
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=800, seed=3)
    g = torch.Generator().manual_seed(0)
    a.gaussians_params["color_logit"].data = torch.randn(a.num_gaussians, 3, generator=g)
    for b in a.field.branches.values():
        b.out.weight.data = 0.5 * torch.randn(b.out.weight.shape, generator=g)
    path = tmp_path_factory.mktemp("av") / "tiny.perse"
    save_avatar(a, path)
    return path


def test_info_json(avatar_file, capsys):
    assert main(["info", str(avatar_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_gaussians"] == 800
    assert [c["name"] for c in info["categories"]] == ["hat", "beard"]


def test_render_writes_png_and_attr_changes_it(avatar_file, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["render", str(avatar_file), "--out", str(a), "--size", "64", "--backend", "cpu"]) == 0
    assert main(["render", str(avatar_file), "--out", str(b), "--size", "64", "--backend", "cpu",
                 "--attr", "hat=red"]) == 0
    ia, ib = imageio.imread(a), imageio.imread(b)
    assert ia.shape == (64, 64, 3)
    assert np.abs(ia.astype(int) - ib.astype(int)).mean() > 0.5


def test_export_mp4_and_png_folder(avatar_file, tmp_path):
    mp4 = tmp_path / "t.mp4"
    assert main(["export", str(avatar_file), "--preset", "turntable", "--out", str(mp4), "--frames", "6",
                 "--size", "48", "--backend", "cpu"]) == 0
    frames = imageio.mimread(mp4)
    assert len(frames) == 6 and frames[0].shape == (48, 48, 3)
    # frames differ: the head turns
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 0.5
    folder = tmp_path / "frames"
    assert main(["export", str(avatar_file), "--preset", "morph", "--category", "hat", "--out", str(folder),
                 "--frames", "4", "--size", "32", "--backend", "cpu"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:05d}.png" for i in range(4)]


@pytest.mark.parametrize("args,message", [
    (["render", "{missing}", "--out", "{out}"], "avatar file not found"),
    (["render", "{avatar}", "--out", "{out}", "--attr", "hair=red"], "unknown category 'hair'"),
    (["render", "{avatar}", "--out", "{out}", "--attr", "hat=green"], "unknown variant 'green'"),
    (["render", "{avatar}", "--out", "{out}", "--expr", "smile=1"], "unknown expression 'smile'"),
    (["render", "{avatar}", "--out", "{out}", "--attr", "hat"], "CATEGORY=VARIANT"),
    (["render", "{avatar}", "--out", "/nonexistent/dir/x.png"], "does not exist"),
    (["render", "{avatar}", "--out", "{out}", "--backend", "vulkan"], "unknown render backend"),
    (["render", "{avatar}", "--out", "{out}", "--view", "reference"], "no reference view"),
    (["export", "{avatar}", "--preset", "morph", "--out", "{tmp}/m.mp4"], "needs a category"),
    (["export", "{avatar}", "--preset", "turntable", "--out", "{tmp}/m.avi"], ".mp4"),
    (["info", "{junk}"], "not a readable .perse file"),
])
def test_bad_input_gives_one_line_error_and_no_output(avatar_file, tmp_path, capsys, args, message):
    junk = tmp_path / "junk.perse"
    junk.write_bytes(b"nonsense")
    fill = {"missing": str(tmp_path / "nope.perse"), "out": str(tmp_path / "o.png"), "avatar": str(avatar_file),
            "junk": str(junk), "tmp": str(tmp_path)}
    before = set(tmp_path.iterdir())
    assert main([a.format(**fill) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and err.startswith("perse: error:")
    assert set(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gsplat_without_cuda_is_a_clear_error(avatar_file, tmp_path, capsys):
    assert main(["render", str(avatar_file), "--out", str(tmp_path / "g.png"), "--backend", "gsplat"]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "perse.cli", "info", str(tmp_path / "x.perse")],
                          capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "avatar file not found" in proc.stderr
