"""FLAME loading without chumpy, the head-model registry, against synthetic files in FLAME's format."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flame_fixtures import (  # noqa: E402
    NUM_FACES,
    make_synthetic_flame,
    write_pickle_py2,
    write_synthetic_embedding,
    write_synthetic_flame,
)

from perse.errors import PerseError  # noqa: E402
from perse.head import HeadData, HeadModel, HeadParams, load_flame, load_head_model, require_landmarks  # noqa: E402
from perse.head.flame import sha256_file  # noqa: E402
from perse.head.registry import (  # noqa: E402
    find_flame_for_sha,
    identify_head,
    resolve_embedding_path,
    resolve_flame_path,
)

FILE_NAMES = {"2020": "generic_model.pkl", "2023": "flame2023.pkl", "open": "flame2023_Open.pkl"}
EXPECTED_NAMES = {"2020": "FLAME 2020", "2023": "FLAME 2023", "open": "FLAME 2023 Open"}


@pytest.fixture(scope="module")
def flame_dir(tmp_path_factory) -> Path:
    """One synthetic file per FLAME version (chumpy style), a re-saved plain one and an embedding."""
    root = tmp_path_factory.mktemp("flame")
    for version, name in FILE_NAMES.items():
        write_synthetic_flame(root / name, version=version)
    write_synthetic_flame(root / "generic_model_plain.pkl", version="2020", chumpy_style=False)
    write_synthetic_embedding(root / "mediapipe_landmark_embedding.npz")
    return root


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """No test sees the developer's own FLAME configuration."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PERSE_FLAME", raising=False)
    monkeypatch.delenv("PERSE_FLAME_EMBEDDING", raising=False)


# ---------------------------------------------------------------------------------------------------
# An independent FLAME implementation in numpy (float64), from the official arrays
# ---------------------------------------------------------------------------------------------------
def numpy_flame(arrays: dict, betas: np.ndarray, pose: np.ndarray, trans: np.ndarray,
                use_posedirs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """betas (B, 400), pose (B, 5, 3) axis-angle, trans (B, 3) -> vertices (B, V, 3), joints (B, 5, 3)."""
    B = betas.shape[0]
    v_shaped = arrays["v_template"][None] + np.einsum("vck,bk->bvc", arrays["shapedirs"], betas)
    J = np.einsum("jv,bvc->bjc", arrays["J_regressor"], v_shaped)
    R = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(B, 5, 3, 3)
    v_posed = v_shaped
    if use_posedirs:
        pose_feature = (R[:, 1:] - np.eye(3)).reshape(B, 36)
        v_posed = v_shaped + np.einsum("vcp,bp->bvc", arrays["posedirs"], pose_feature)
    parents = [-1] + [int(p) for p in arrays["kintree_table"][0, 1:]]
    G = np.zeros((B, 5, 4, 4))
    for j in range(5):
        local = np.zeros((B, 4, 4))
        local[:, :3, :3] = R[:, j]
        local[:, :3, 3] = J[:, j] - (J[:, parents[j]] if j else 0.0)
        local[:, 3, 3] = 1.0
        G[:, j] = local if j == 0 else G[:, parents[j]] @ local
    A = G.copy()
    A[:, :, :3, 3] -= np.einsum("bjmn,bjn->bjm", G[:, :, :3, :3], J)
    T = np.einsum("vj,bjmn->bvmn", arrays["weights"], A)
    verts = np.einsum("bvmn,bvn->bvm", T[..., :3, :3], v_posed) + T[..., :3, 3]
    return verts + trans[:, None], G[:, :, :3, 3] + trans[:, None]


def random_params(seed: int, B: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    betas = np.concatenate([rng.normal(size=(B, 300)), 2.0 * rng.normal(size=(B, 100))], axis=1)
    pose = rng.uniform(-0.35, 0.35, size=(B, 5, 3))
    trans = rng.normal(scale=0.05, size=(B, 3))
    return betas, pose, trans


def to_head_params(betas, pose, trans) -> HeadParams:
    t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return HeadParams(identity=t(betas[:, :300]), expression=t(betas[:, 300:]), global_rot=t(pose[:, 0]),
                      neck_rot=t(pose[:, 1]), jaw_rot=t(pose[:, 2]), eye_left_rot=t(pose[:, 3]),
                      eye_right_rot=t(pose[:, 4]), translation=t(trans))


# ---------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------
def test_chumpy_is_not_installed_and_not_left_behind(flame_dir):
    assert importlib.util.find_spec("chumpy") is None
    load_flame(flame_dir / "generic_model.pkl")
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    # The fixture's fake scipy.sparse.csc must not replace the real one after writing.
    if "scipy.sparse.csc" in sys.modules:
        assert hasattr(sys.modules["scipy.sparse.csc"], "__file__")


def test_fixture_pickle_references_chumpy_like_official_files(flame_dir):
    data = (flame_dir / "generic_model.pkl").read_bytes()
    assert data[:2] == b"\x80\x02"  # protocol 2
    assert b"cchumpy.ch\nCh\n" in data  # GLOBAL chumpy.ch Ch
    assert b"cscipy.sparse.csc\ncsc_matrix\n" in data
    with pytest.raises(ModuleNotFoundError, match="chumpy"):
        pickle.loads(data, encoding="latin1")  # a plain unpickler needs chumpy: that is the point


@pytest.mark.parametrize("version", list(FILE_NAMES))
def test_load_each_version(flame_dir, version):
    path = flame_dir / FILE_NAMES[version]
    ref = make_synthetic_flame(version)
    model = load_flame(path)
    assert isinstance(model, HeadModel)
    assert model.num_vertices == 5023 and model.faces.shape == (9976, 3) and model.faces.dtype == torch.int64
    assert model.num_shape == 300 and model.num_expression == 100
    assert model.posedirs.shape == (36, 5023 * 3) and model.j_regressor.shape == (5, 5023)
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert model.uvs is None and model.uv_faces is None
    assert model.lmk_face_idx.shape == (0,) and model.lmk_bary.shape == (0, 3)

    np.testing.assert_array_equal(model.faces.numpy(), ref["f"].astype(np.int64))
    np.testing.assert_allclose(model.v_template.numpy(), ref["v_template"], atol=1e-7)
    np.testing.assert_allclose(model.shapedirs.numpy(), ref["shapedirs"][..., :300], atol=1e-8)
    np.testing.assert_allclose(model.exprdirs.numpy(), ref["shapedirs"][..., 300:], atol=1e-8)
    np.testing.assert_allclose(model.j_regressor.numpy(), ref["J_regressor"], atol=1e-7)
    np.testing.assert_allclose(model.lbs_weights.numpy(), ref["weights"], atol=1e-7)
    # posedirs[p, v*3 + c] == file_posedirs[v, c, p]
    for p, v, c in [(0, 0, 0), (5, 17, 2), (35, 5022, 1), (20, 2500, 0)]:
        assert model.posedirs[p, v * 3 + c].item() == pytest.approx(ref["posedirs"][v, c, p], abs=1e-8)

    meta = model.meta
    assert meta["kind"] == "flame" and meta["name"] == EXPECTED_NAMES[version]
    assert meta["file"] == path.name
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert meta["expression_names"][:2] == ["expr00", "expr01"] and meta["expression_names"][-1] == "expr99"
    assert model.expression_names == meta["expression_names"] and meta["regions"] == []
    assert meta["embedding_sha256"] is None
    json.dumps(meta)  # serialisable


def test_plain_numpy_resave_loads_identically(flame_dir):
    chumpy_model = load_flame(flame_dir / "generic_model.pkl")
    plain_model = load_flame(flame_dir / "generic_model_plain.pkl")
    for name, buf in chumpy_model.named_buffers():
        assert torch.equal(buf, getattr(plain_model, name)), name
    assert plain_model.meta["sha256"] != chumpy_model.meta["sha256"]


def test_numpy2_module_names_are_accepted(flame_dir, tmp_path):
    # numpy 2 writes numpy._core.multiarray; numpy 1.x must still read such a file.
    data = (flame_dir / "generic_model_plain.pkl").read_bytes()
    assert b"numpy.core.multiarray" in data
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(data.replace(b"cnumpy.core.multiarray\n", b"cnumpy._core.multiarray\n"))
    model = load_flame(path)
    assert torch.equal(model.v_template, load_flame(flame_dir / "generic_model_plain.pkl").v_template)


@pytest.mark.parametrize("version", ["2020", "open"])
def test_forward_matches_independent_numpy_lbs(flame_dir, version):
    ref = make_synthetic_flame(version)
    model = load_flame(flame_dir / FILE_NAMES[version])
    betas, pose, trans = random_params(seed=7)
    out = model(to_head_params(betas, pose, trans))
    verts, joints = numpy_flame(ref, betas, pose, trans)
    np.testing.assert_allclose(out.vertices.numpy(), verts, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.joints.numpy(), joints, atol=1e-5, rtol=0)

    # The pose correctives matter for these poses, so a loader that dropped or scrambled them would fail.
    verts_no_pc, _ = numpy_flame(ref, betas, pose, trans, use_posedirs=False)
    assert np.abs(verts - verts_no_pc).max() > 1e-3
    # And the neutral model is the template.
    neutral = model(HeadParams(identity=torch.zeros(1, 300))).vertices[0].numpy()
    np.testing.assert_allclose(neutral, ref["v_template"], atol=1e-6)


def test_landmarks_from_embedding(flame_dir):
    emb_path = flame_dir / "mediapipe_landmark_embedding.npz"
    emb = dict(np.load(emb_path))
    model = load_flame(flame_dir / "flame2023.pkl", embedding_path=emb_path)
    require_landmarks(model)  # does not raise
    assert model.meta["num_landmarks"] == 105
    assert model.meta["embedding_sha256"] == hashlib.sha256(emb_path.read_bytes()).hexdigest()
    assert model.landmark_indices.tolist() == emb["landmark_indices"].tolist()

    betas, pose, trans = random_params(seed=3, B=2)
    out = model(to_head_params(betas, pose, trans))
    verts = out.vertices.double().numpy()
    faces = model.faces.numpy()
    manual = np.einsum("blkc,lk->blc", verts[:, faces[emb["lmk_face_idx"]]], emb["lmk_b_coords"])
    assert out.landmarks.shape == (2, 105, 3)
    np.testing.assert_allclose(out.landmarks.numpy(), manual, atol=1e-6)


def test_missing_embedding_refuses_landmark_fitting(flame_dir):
    model = load_flame(flame_dir / "generic_model.pkl")
    out = model(HeadParams(jaw_rot=torch.tensor([[0.2, 0.0, 0.0]])))
    assert out.landmarks.shape == (1, 0, 3)  # renders fine without landmarks
    with pytest.raises(PerseError, match=r"needs mediapipe_landmark_embedding\.npz: choose the landmark embedding file"):
        require_landmarks(model)


def test_head_data_roundtrip_without_landmarks(flame_dir, tmp_path):
    model = load_flame(flame_dir / "generic_model.pkl")
    model.data().save(tmp_path / "head.safetensors")
    again = HeadModel(HeadData.load(tmp_path / "head.safetensors"))
    assert again.meta == model.meta
    assert torch.equal(again.posedirs, model.posedirs) and again.lmk_face_idx.shape == (0,)


# ---------------------------------------------------------------------------------------------------
# Files that are not FLAME
# ---------------------------------------------------------------------------------------------------
def _assert_one_line_error_naming(path: Path, call, match: str) -> None:
    with pytest.raises(PerseError, match=match) as info:
        call()
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_text("this is not a model\n")
    _assert_one_line_error_naming(path, lambda: load_flame(path), "not a readable pickle")


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_one_line_error_naming(path, lambda: load_flame(path), "not a")


def test_pickle_with_missing_keys_is_refused(tmp_path):
    arrays = make_synthetic_flame()
    del arrays["posedirs"], arrays["weights"]
    path = tmp_path / "generic_model.pkl"
    write_pickle_py2(path, arrays)
    _assert_one_line_error_naming(path, lambda: load_flame(path), r"missing key\(s\) posedirs, weights")


def test_wrong_vertex_count_is_refused(tmp_path):
    arrays = make_synthetic_flame()
    arrays["v_template"] = arrays["v_template"][:5000]
    path = tmp_path / "generic_model.pkl"
    write_pickle_py2(path, arrays)
    _assert_one_line_error_naming(path, lambda: load_flame(path), r"'v_template' has shape \(5000, 3\)")


def test_wrong_direction_count_is_refused(tmp_path):
    arrays = make_synthetic_flame()
    arrays["shapedirs"] = arrays["shapedirs"][..., :150]  # e.g. a trimmed 100+50 file
    path = tmp_path / "generic_model.pkl"
    write_pickle_py2(path, arrays)
    _assert_one_line_error_naming(path, lambda: load_flame(path), r"'shapedirs' has shape \(5023, 3, 150\)")


def test_smpl_body_model_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    smpl = {"v_template": rng.normal(size=(6890, 3)), "f": np.zeros((13776, 3), np.uint32),
            "shapedirs": rng.normal(size=(6890, 3, 10)), "posedirs": rng.normal(size=(6890, 3, 207)),
            "J_regressor": np.zeros((24, 6890)), "kintree_table": np.zeros((2, 24), np.int64),
            "weights": np.full((6890, 24), 1 / 24), "bs_style": "lbs"}
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    write_pickle_py2(path, smpl)
    _assert_one_line_error_naming(path, lambda: load_flame(path), "SMPL body model")


def test_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    _assert_one_line_error_naming(path, lambda: load_flame(path), "unexpected Python object io.open")
    assert not marker.exists()


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "generic_model.pkl"
    with pytest.raises(PerseError, match=r"FLAME file not found: .*generic_model\.pkl; set PERSE_FLAME"):
        load_flame(path)


def test_bad_embedding_files(flame_dir, tmp_path):
    flame = flame_dir / "generic_model.pkl"
    missing_key = tmp_path / "a.npz"
    np.savez(missing_key, lmk_face_idx=np.zeros(3, np.int64), lmk_b_coords=np.full((3, 3), 1 / 3))
    _assert_one_line_error_naming(missing_key, lambda: load_flame(flame, missing_key), "missing landmark_indices")
    other_mesh = tmp_path / "b.npz"
    write_synthetic_embedding(other_mesh, num_faces=20000)
    emb = dict(np.load(other_mesh))
    if emb["lmk_face_idx"].max() < NUM_FACES:  # make sure at least one index is out of range
        emb["lmk_face_idx"][0] = 15000
        np.savez(other_mesh, **emb)
    _assert_one_line_error_naming(other_mesh, lambda: load_flame(flame, other_mesh), "another mesh")
    not_npz = tmp_path / "c.npz"
    not_npz.write_text("hello")
    _assert_one_line_error_naming(not_npz, lambda: load_flame(flame, not_npz), "not a readable")


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------
def _write_config(tmp_path: Path, data) -> Path:
    cfg = tmp_path / "xdg" / "perse" / "config.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(data if isinstance(data, str) else json.dumps(data))
    return cfg


def test_resolution_precedence(tmp_path, monkeypatch):
    assert resolve_flame_path(None) is None and resolve_embedding_path(None) is None
    cfg = _write_config(tmp_path, {"flame": "models/generic_model.pkl", "flame_embedding": "/abs/emb.npz"})
    # Config: relative paths are relative to the config folder.
    assert resolve_flame_path(None) == cfg.parent / "models" / "generic_model.pkl"
    assert resolve_embedding_path(None) == Path("/abs/emb.npz")
    # Environment beats config.
    monkeypatch.setenv("PERSE_FLAME", "/env/flame2023.pkl")
    monkeypatch.setenv("PERSE_FLAME_EMBEDDING", "/env/emb.npz")
    assert resolve_flame_path(None) == Path("/env/flame2023.pkl")
    assert resolve_embedding_path(None) == Path("/env/emb.npz")
    # CLI beats environment.
    assert resolve_flame_path("/cli/flame2023_Open.pkl") == Path("/cli/flame2023_Open.pkl")
    assert resolve_embedding_path("/cli/emb.npz") == Path("/cli/emb.npz")


def test_broken_config_is_a_one_line_error(tmp_path):
    cfg = _write_config(tmp_path, "{not json")
    _assert_one_line_error_naming(cfg, lambda: resolve_flame_path(None), "not valid JSON")
    _write_config(tmp_path, {"flame": 42})
    with pytest.raises(PerseError, match="must be a file path string"):
        resolve_flame_path(None)


def test_load_head_model_flame(flame_dir, tmp_path, monkeypatch):
    emb = flame_dir / "mediapipe_landmark_embedding.npz"
    model = load_head_model(str(flame_dir / "flame2023_Open.pkl"), embedding=str(emb))
    assert model.meta["name"] == "FLAME 2023 Open" and model.meta["num_landmarks"] == 105
    # "flame" means the configured file; the configured embedding comes along.
    _write_config(tmp_path, {"flame": str(flame_dir / "generic_model.pkl"), "flame_embedding": str(emb)})
    model = load_head_model("flame")
    assert model.meta["name"] == "FLAME 2020" and model.meta["embedding_file"] == emb.name
    missing = tmp_path / "gone.pkl"
    with pytest.raises(PerseError, match=r"FLAME file not found: .*gone\.pkl; set PERSE_FLAME or choose the FLAME file"):
        load_head_model(str(missing))
    monkeypatch.setenv("PERSE_FLAME", str(missing))
    with pytest.raises(PerseError, match="FLAME file not found"):
        load_head_model("flame")


def test_builtin_spec_routes_to_builtin_module(monkeypatch):
    sentinel = HeadModel(HeadData(
        v_template=torch.zeros(3, 3), faces=torch.tensor([[0, 1, 2]]), shapedirs=torch.zeros(3, 3, 1),
        exprdirs=torch.zeros(3, 3, 1), posedirs=torch.zeros(36, 9), j_regressor=torch.full((5, 3), 1 / 3),
        parents=torch.tensor([-1, 0, 1, 1, 1]), lbs_weights=torch.full((3, 5), 0.2),
        lmk_face_idx=torch.zeros(0, dtype=torch.long), lmk_bary=torch.zeros(0, 3),
        landmark_indices=torch.zeros(0, dtype=torch.long), meta={"kind": "builtin", "name": "fake"}))
    fake = types.ModuleType("perse.head.builtin_asset")
    fake.load_builtin_head = lambda: sentinel
    monkeypatch.setitem(sys.modules, "perse.head.builtin_asset", fake)
    import perse.head

    assert load_head_model(None) is sentinel
    assert load_head_model("builtin") is sentinel
    assert perse.head.load_builtin_head() is sentinel
    ident = identify_head(sentinel)
    assert ident["kind"] == "builtin" and ident["name"] == "fake" and len(ident["sha256"]) == 64
    assert identify_head(sentinel) == ident  # content hash is deterministic


def test_identify_and_find_by_sha(flame_dir, tmp_path):
    path = flame_dir / "flame2023.pkl"
    ident = identify_head(load_flame(path))
    assert ident == {"kind": "flame", "name": "FLAME 2023", "sha256": sha256_file(path)}
    others = [None, tmp_path / "missing.pkl", flame_dir / "generic_model.pkl"]
    assert find_flame_for_sha(ident["sha256"], others) is None
    assert find_flame_for_sha(ident["sha256"], others + [path]) == path
    # Default candidates: the configured FLAME file.
    assert find_flame_for_sha(ident["sha256"]) is None
    _write_config(tmp_path, {"flame": str(path)})
    assert find_flame_for_sha(ident["sha256"].upper()) == path
