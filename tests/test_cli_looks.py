"""Look files on the command line (read by `perse.looks`, as in the studio), and engine errors phrased
with the command's flags."""

import argparse
import json

import pytest
import torch

from perse.avatar import Avatar, save_avatar
from perse.avatar.latent import Look
from perse.cli import main
from perse.cli.common import phrase_error
from perse.errors import PerseError
from perse.looks import write_named_looks
from tiny_models import tiny_categories, tiny_head


@pytest.fixture(scope="module")
def avatar(tmp_path_factory):
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300, seed=3)
    path = tmp_path_factory.mktemp("av") / "tiny.perse"
    save_avatar(a, path)
    return a, path


def _export_morph(path, look_b, out) -> int:
    return main(["export", str(path), "--preset", "morph", "--look-b", str(look_b), "--out", str(out),
                 "--frames", "3", "--size", "32", "--backend", "cpu"])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("perse: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_a_named_looks_file_saved_by_the_studio_works_as_look_b(avatar, tmp_path, capsys):
    a, path = avatar
    ref = a.latent.reference_look()
    red = a.latent.blend(ref, "hat", "red", 1.0)
    studio = tmp_path / "looks.json"
    write_named_looks({"red hat": red}, studio)  # what the studio's "Save looks" writes
    assert _export_morph(path, studio, tmp_path / "one") == 0
    assert len(list((tmp_path / "one").iterdir())) == 3
    capsys.readouterr()  # the progress bar

    write_named_looks({"red hat": red, "plain": ref}, studio)
    assert _export_morph(path, studio, tmp_path / "two") == 2
    err = _one_line_error(capsys)
    assert "holds 2 looks" in err and f"{studio}:NAME" in err
    assert not (tmp_path / "two").exists()
    assert _export_morph(path, f"{studio}:red hat", tmp_path / "picked") == 0
    capsys.readouterr()
    assert _export_morph(path, f"{studio}:nobody", tmp_path / "x") == 2
    assert "no look named 'nobody'" in _one_line_error(capsys)


@pytest.mark.parametrize("content,message", [
    ({"hair": [0.0, 1.0]}, "category this avatar lacks"),
    ({"hat": [0.0]}, "made for another avatar"),
    ([1, 2, 3], "is not a look"),
    ({"a": {"hat": "red"}}, "hat code"),
])
def test_bad_look_b_files_are_one_line_errors(avatar, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content))
    assert _export_morph(avatar[1], bad, tmp_path / "out") == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_engine_errors_get_the_flags_of_this_command(avatar, tmp_path, capsys):
    assert main(["export", str(avatar[1]), "--preset", "morph", "--out", str(tmp_path / "m.mp4")]) == 2
    err = _one_line_error(capsys)
    assert "the morph preset needs a category or a second look (--category, --look-b)" in err
    assert main(["render", str(avatar[1]), "--out", str(tmp_path / "r.png"), "--attr", "hat"]) == 2
    err = _one_line_error(capsys)
    assert "attribute 'hat' must look like CATEGORY=VARIANT[:WEIGHT]" in err and err.endswith("(--attr)")


def test_phrase_error_names_only_flags_the_command_has():
    exc = PerseError("the gsplat backend needs a CUDA GPU", setting="backend")
    assert phrase_error(exc, argparse.Namespace(backend="auto")) == "the gsplat backend needs a CUDA GPU (--backend)"
    assert phrase_error(exc, argparse.Namespace(out="x")) == str(exc)
    two = PerseError("needs a category or a second look", setting=("category", "look_b"))
    assert phrase_error(two, argparse.Namespace(category=None, look_b=None)).endswith("(--category, --look-b)")
    assert phrase_error(PerseError("plain"), argparse.Namespace(backend="cpu")) == "plain"
    assert phrase_error(exc, None) == str(exc)


def test_engine_messages_outside_the_cli_name_no_flags():
    """Engine modules phrase errors with settings; only perse/cli (and developer scripts' own argument
    parsers) spell flags. Checks the string literals passed to PerseError."""
    import ast
    import re
    from pathlib import Path

    import perse

    root = Path(perse.__file__).parent
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "PerseError":
                for text in (n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)):
                    if flag.search(text):
                        found.append(f"{path.relative_to(root)}:{node.lineno}: {text}")
    assert not found, "engine errors naming CLI flags:\n" + "\n".join(found)


def test_look_b_of_another_avatar_is_refused_before_export(avatar, tmp_path, capsys):
    other = tmp_path / "other.json"
    write_named_looks({"x": Look({"hat": torch.zeros(3)})}, other)  # the hat code is 16 long here
    assert _export_morph(avatar[1], other, tmp_path / "o") == 2
    assert "another avatar" in _one_line_error(capsys)
