"""`.perse` files: round trip, atomic writes, clear errors for bad files."""

import json

import pytest
import torch
from safetensors.torch import save_file

from perse.avatar import Avatar, AvatarState, load_avatar, read_avatar_meta, save_avatar
from perse.avatar import io as avatar_io
from perse.errors import PerseError
from tiny_models import tiny_categories, tiny_head


@pytest.fixture
def avatar():
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=600, seed=2)
    for b in a.field.branches.values():
        torch.nn.init.normal_(b.out.weight, std=0.2)
    a.meta["reference_view"] = {"camera": None, "params": {"jaw_rot": [[0.1, 0.0, 0.0]]}}
    return a.eval()


def test_round_trip_reproduces_the_avatar(avatar, tmp_path):
    path = tmp_path / "a.perse"
    save_avatar(avatar, path, training={"steps": 7})
    back = load_avatar(path)
    look = avatar.latent.look_from_spec({"hat": ("blue", 0.7)})
    with torch.no_grad():
        g0 = avatar.gaussians(AvatarState(look=look))
        g1 = back.gaussians(AvatarState(look=back.latent.look_from_spec({"hat": ("blue", 0.7)})))
    for name in ("means", "quats", "scales", "opacities", "colors"):
        assert torch.allclose(getattr(g0, name), getattr(g1, name), atol=1e-6), name
    meta = read_avatar_meta(path)
    assert meta["training"] == {"steps": 7}
    assert meta["head"]["embedded"] and meta["head"]["kind"] == "builtin"
    assert [c["name"] for c in meta["categories"]] == ["hat", "beard"]
    assert torch.allclose(back.reference_state().head.jaw_rot, torch.tensor([[0.1, 0.0, 0.0]]))
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_failed_save_keeps_the_previous_file(avatar, tmp_path, monkeypatch):
    path = tmp_path / "a.perse"
    save_avatar(avatar, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(OSError):
        save_avatar(avatar, path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_bad_files_give_one_line_errors(tmp_path, avatar):
    with pytest.raises(PerseError, match="not found"):
        load_avatar(tmp_path / "missing.perse")
    junk = tmp_path / "junk.perse"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(PerseError, match="not a readable .perse file"):
        load_avatar(junk)
    plain = tmp_path / "plain.perse"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(PerseError, match="not a .perse avatar"):
        load_avatar(plain)
    good = tmp_path / "good.perse"
    save_avatar(avatar, good)
    truncated = tmp_path / "truncated.perse"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PerseError):
        load_avatar(truncated)
    with pytest.raises(PerseError, match="is a folder"):
        load_avatar(tmp_path)


def test_newer_format_version_is_refused(avatar, tmp_path, monkeypatch):
    path = tmp_path / "future.perse"
    tensors, meta = avatar_io.pack_avatar(avatar)
    meta["format_version"] = 99
    save_file(tensors, str(path), metadata={"perse": json.dumps(meta)})
    with pytest.raises(PerseError, match="newer than this"):
        load_avatar(path)


def test_missing_tensor_is_reported(avatar, tmp_path):
    path = tmp_path / "partial.perse"
    tensors, meta = avatar_io.pack_avatar(avatar)
    del tensors["gaussians/quat"]
    save_file(tensors, str(path), metadata={"perse": json.dumps(meta)})
    with pytest.raises(PerseError, match="incomplete"):
        load_avatar(path)


def test_flame_avatar_stores_only_the_sha_and_needs_the_same_file(tmp_path, monkeypatch):
    from flame_fixtures import write_synthetic_flame

    from perse.head.flame import load_flame

    monkeypatch.delenv("PERSE_FLAME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    flame_a, flame_b = tmp_path / "generic_model.pkl", tmp_path / "other.pkl"
    write_synthetic_flame(flame_a, seed=0)
    write_synthetic_flame(flame_b, seed=1)
    head = load_flame(flame_a)
    av = Avatar.initialize(head, tiny_categories()[:1], num_gaussians=300)
    path = tmp_path / "flame.perse"
    save_avatar(av, path)
    meta = read_avatar_meta(path)
    assert not meta["head"]["embedded"] and meta["head"]["sha256"] == head.meta["sha256"]
    assert path.stat().st_size < 1_000_000  # the 50 MB FLAME model is not inside
    with pytest.raises(PerseError, match="pass --flame FILE or set PERSE_FLAME"):
        load_avatar(path)
    with pytest.raises(PerseError, match="is not the FLAME file"):
        load_avatar(path, flame=str(flame_b))
    monkeypatch.setenv("PERSE_FLAME", str(flame_a))
    back = load_avatar(path)
    assert back.num_gaussians == 300 and back.head.kind == "flame"
