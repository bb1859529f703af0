"""`.perse` files: round trip, atomic writes, clear errors for bad files."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from perse.avatar import Avatar, AvatarState, load_avatar, read_avatar_meta, save_avatar
from perse.avatar import io as avatar_io
from perse.errors import PerseError
from perse.head.model import HeadParams
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
    with pytest.raises(PerseError, match="tensor gaussians/quat is missing"):
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
    with pytest.raises(PerseError, match="choose that FLAME file or set PERSE_FLAME"):
        load_avatar(path)
    with pytest.raises(PerseError, match="is not the FLAME file"):
        load_avatar(path, flame=str(flame_b))
    monkeypatch.setenv("PERSE_FLAME", str(flame_a))
    back = load_avatar(path)
    assert back.num_gaussians == 300 and back.head.kind == "flame"


# -- integrity: checksum, header types, shapes, indices, finite values ----------------------------------

def _write(path, tensors, meta):
    save_file(tensors, str(path), metadata={"perse": json.dumps(meta)})
    return path


def test_saved_files_carry_a_checksum_that_is_verified(avatar, tmp_path):
    path = save_avatar(avatar, tmp_path / "a.perse")
    meta = read_avatar_meta(path)
    assert meta["checksum"].startswith("xxh3-64:") and len(meta["checksum"]) == len("xxh3-64:") + 16
    assert avatar_io.checksum_status(meta).endswith("(verified when the file is opened)")
    load_avatar(path)
    # one flipped bit in the last tensor's data: the tensors still parse, the checksum does not match
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    damaged = tmp_path / "damaged.perse"
    damaged.write_bytes(bytes(data))
    with pytest.raises(PerseError, match=r"damaged\.perse .*checksum mismatch") as info:
        load_avatar(damaged)
    assert "\n" not in str(info.value)


def test_files_with_the_first_crc32_checksum_still_verify(avatar, tmp_path):
    """The first checksummed files carry CRC-32: they open, and damage to them is still caught."""
    from perse.avatar.integrity import payload_checksum

    tensors, meta = avatar_io.pack_avatar(avatar)
    meta["checksum"] = payload_checksum(tensors, "crc32")
    assert len(meta["checksum"]) == len("crc32:") + 8
    assert load_avatar(_write(tmp_path / "crc.perse", tensors, meta)).num_gaussians == avatar.num_gaussians
    meta["checksum"] = "crc32:00000000" if meta["checksum"] != "crc32:00000000" else "crc32:00000001"
    with pytest.raises(PerseError, match=r"crc\.perse .*checksum mismatch"):
        load_avatar(_write(tmp_path / "crc.perse", tensors, meta))
    meta["checksum"] = "md5:abc"
    with pytest.raises(PerseError, match="checksum is 'md5:abc'"):
        load_avatar(_write(tmp_path / "crc.perse", tensors, meta))


def test_finite_scan_catches_every_kind_of_bad_value():
    from perse.checks import all_finite

    ok = np.full(11, 1e308)                   # finite, but its float64 sum overflows
    assert all_finite(ok) and all_finite(np.zeros((3, 4), np.float32)) and all_finite(np.arange(5))
    for bad in (np.nan, np.inf, -np.inf):
        a = np.ones(1000, np.float32)
        a[617] = bad
        assert not all_finite(a) and not all_finite(torch.from_numpy(a))
    assert not all_finite(np.array([np.inf, -np.inf]))  # cancels to NaN, still refused


def test_files_without_a_checksum_still_open(avatar, tmp_path):
    tensors, meta = avatar_io.pack_avatar(avatar)
    assert "checksum" not in meta  # what files written before checksums look like
    path = _write(tmp_path / "old.perse", tensors, meta)
    assert load_avatar(path).num_gaussians == avatar.num_gaussians
    assert avatar_io.checksum_status(read_avatar_meta(path)).startswith("no checksum")


def test_files_naming_the_identity_shape_still_open(avatar, tmp_path):
    """Files written before `HeadParams.shape` was renamed `identity` keep reading; new files use the new name."""
    tensors, meta = avatar_io.pack_avatar(avatar)
    assert "identity" not in meta["reference_view"]["params"]
    meta["reference_view"]["params"]["shape"] = [[0.5, -0.25]]
    back = load_avatar(_write(tmp_path / "old.perse", tensors, meta))
    assert back.reference_state().head.identity.tolist() == [[0.5, -0.25]]
    assert HeadParams.from_dict({"shape": [[1.0]]}).to_dict() == {"identity": [[1.0]]}
    with pytest.raises(ValueError, match="both"):
        HeadParams.from_dict({"shape": [[1.0]], "identity": [[1.0]]})


@pytest.mark.parametrize("field, value, message", [
    ("format_version", "abc", "format_version is 'abc'"),
    ("num_gaussians", -5, "num_gaussians is -5"),
    ("num_gaussians", 5, r"tensor gaussians/\w+ has shape \(600, ?\d*\), the header implies \(5"),
    ("num_gaussians", True, "num_gaussians is True"),
    ("reference_view", {"camera": {"K": [[1, 0], [0, 1]]}}, r"reference_view\.camera\.K has shape"),
    ("reference_view", {"camera": None, "params": {"jaw_rot": "open"}}, r"reference_view\.params\.jaw_rot is str"),
    ("reference_view", {"camera": None, "params": {"wings": [[1.0]]}}, "unknown field 'wings'"),
    ("reference_view", [1, 2], "reference_view is list"),
    ("categories", {"hat": 1}, "categories is missing or not a list"),
    ("field_config", {"code_dim": "16"}, "field_config.code_dim is '16'"),
    ("checksum", 7, "checksum is 7"),
])
def test_header_fields_of_the_wrong_type_are_refused(avatar, tmp_path, field, value, message):
    tensors, meta = avatar_io.pack_avatar(avatar)
    meta[field] = value
    path = _write(tmp_path / "lying.perse", tensors, meta)
    with pytest.raises(PerseError, match=message) as info:
        load_avatar(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name, index, value, message", [
    ("parent", 3, 10 ** 6, r"tensor parent .* holds indices \d+\.\.1000000, outside 0\.\.\d+"),
    ("parent", 0, -1, r"tensor parent .* holds indices -1\.\."),
    ("head/faces", (0, 1), 10 ** 6, r"head array faces holds indices"),
    ("head/lmk_face_idx", 2, 10 ** 6, r"head array lmk_face_idx holds indices"),
    ("head/parents", 2, 3, r"head joint parents \[-1, 0, 3, 1, 1\] are not a tree"),
    ("gaussians/opacity_logit", 7, float("nan"), "tensor gaussians/opacity_logit holds NaN or infinite"),
    ("gaussians/position", (4, 1), float("inf"), "tensor gaussians/position holds NaN or infinite"),
    ("latent/hat", (0, 0), float("-inf"), "tensor latent/hat holds NaN or infinite"),
    ("head/shapedirs", (0, 0, 0), float("nan"), "tensor head/shapedirs holds NaN or infinite"),
])
def test_bad_values_and_indices_are_refused(avatar, tmp_path, name, index, value, message):
    tensors, meta = avatar_io.pack_avatar(avatar)
    tensors[name] = tensors[name].clone()
    tensors[name][index] = value
    path = _write(tmp_path / "bad.perse", tensors, meta)
    with pytest.raises(PerseError, match=message) as info:
        load_avatar(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_tensor_of_the_wrong_shape_is_refused(avatar, tmp_path):
    tensors, meta = avatar_io.pack_avatar(avatar)
    tensors["latent/hat"] = tensors["latent/hat"][:1]  # would broadcast into the code table
    with pytest.raises(PerseError, match=r"tensor latent/hat has shape \(1, 16\), the header implies \(3, 16\)"):
        load_avatar(_write(tmp_path / "a.perse", tensors, meta))
    tensors, meta = avatar_io.pack_avatar(avatar)
    key = next(k for k in tensors if k.startswith("field/"))
    tensors[key] = torch.zeros(1)
    with pytest.raises(PerseError, match=f"tensor {key} has shape"):
        load_avatar(_write(tmp_path / "b.perse", tensors, meta))


def test_cli_refuses_a_damaged_avatar_with_exit_2_and_no_output(avatar, tmp_path, capsys):
    from perse.cli import main

    tensors, meta = avatar_io.pack_avatar(avatar)
    tensors["gaussians/color_logit"][0, 0] = float("nan")
    path = _write(tmp_path / "nan.perse", tensors, meta)
    out = tmp_path / "face.png"
    assert main(["render", str(path), "--out", str(out), "--size", "32", "--backend", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"perse: error: {path}") and "NaN" in err and len(err.splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["nan.perse"]
    assert main(["info", str(path)]) == 0  # the header alone is fine: info reads only that
    assert "no checksum" in capsys.readouterr().out
