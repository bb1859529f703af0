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
from perse.openmp import WAIT_POLICIES, WAIT_VARIABLES, wait_environment
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


def _openmp_env_after(code: str, given: dict) -> list[str]:
    """The OpenMP wait variables a fresh interpreter holds after running `code` with `given` set."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    code += "\nimport os; print(*(os.environ.get(k) for k in %r))" % (WAIT_VARIABLES,)
    out = subprocess.run([sys.executable, "-c", code], env={**env, **given}, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[-1].split()


@pytest.mark.parametrize("given, want", [({}, ["PASSIVE", "None"]),
                                         ({"GOMP_SPINCOUNT": "50"}, ["None", "50"])])
def test_importing_perse_makes_openmp_wait_passively_unless_the_user_chose(given, want):
    """libgomp reads its wait settings once, when torch loads it: perse, imported first by every entry
    point, sets passive waiting (`perse.openmp`), and a user's setting wins."""
    assert _openmp_env_after("import perse", given) == want


@pytest.mark.parametrize("command, given, want", [
    (["train", "missing_dataset", "--out", "x.perse"], {}, ["None", "1000"]),
    (["create", "missing.png", "--out", "x.perse"], {}, ["None", "1000"]),
    (["create", "missing.png", "--out", "x.perse"], {"OMP_WAIT_POLICY": "PASSIVE"}, ["PASSIVE", "None"]),
    (["info", "missing.perse"], {}, ["PASSIVE", "None"]),
])
def test_training_commands_switch_openmp_to_a_short_spin_before_torch_loads(tmp_path, command, given, want):
    """`perse create` and `perse train` only train: a short spin (`perse.openmp.WAIT_POLICIES`), set
    before the command imports torch; every other command keeps passive waiting."""
    code = (f"import os, sys; os.chdir({str(tmp_path)!r}); from perse.cli import main\n"
            "assert 'torch' not in sys.modules, 'perse.cli imports torch: the wait policy would come too late'\n"
            f"assert main({command!r}) == 2")
    assert _openmp_env_after(code, given) == want


def test_wait_environment_replaces_the_other_policy_and_respects_the_user():
    env = {"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/bin"}
    assert wait_environment("batch", env, user_set=False)
    assert env == {"GOMP_SPINCOUNT": WAIT_POLICIES["batch"]["GOMP_SPINCOUNT"], "PATH": "/bin"}
    assert not wait_environment("batch", env, user_set=False)   # already in force
    assert wait_environment("interactive", env, user_set=False) and env == {"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/bin"}
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not wait_environment("batch", mine, user_set=True) and mine == {"OMP_WAIT_POLICY": "ACTIVE"}
