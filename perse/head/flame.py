"""Load official FLAME head models (2020, 2023, 2023 Open) into a `HeadModel`, without chumpy.

The official files are Python-2 era pickles. Their arrays are often wrapped in `chumpy.ch.Ch` objects and
`J_regressor` is a scipy sparse matrix. chumpy does not install on current Python/numpy, so we unpickle
with a restricted `pickle.Unpickler` that

* maps every chumpy class to a stand-in that only keeps the pickled state (a plain `Ch` keeps its numpy
  array under the state key ``"x"``; see chumpy's `Ch.__getstate__`, which pickles a copy of
  ``__dict__`` without its weak-reference caches),
* maps scipy's sparse matrix classes (old ``scipy.sparse.csc`` and current ``scipy.sparse._csc`` names
  alike) to a stand-in that rebuilds the dense matrix from ``data``/``indices``/``indptr`` itself, so the
  loader depends neither on scipy's private module layout nor on scipy at all,
* allows numpy's array reconstruction and a few builtins, and refuses every other global: a model file
  from the internet cannot run code while it is being read.

FLAME's layout maps one to one onto `HeadData` (metres, +y up, face looking toward +z):

    v_template (5023, 3)     f (9976, 3) uint32            shapedirs (5023, 3, 400): 300 shape + 100 expr
    posedirs (5023, 3, 36)   J_regressor (5, 5023) sparse  kintree_table (2, 5), root parent = 2**32 - 1
    weights (5023, 5)

The MediaPipe landmark embedding (``mediapipe_landmark_embedding.npz``) is a separate file; without it
the model renders but cannot be fitted to landmarks (see `require_landmarks`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perse.errors import PerseError
from perse.head.model import JOINT_NAMES, HeadData, HeadModel
from perse.landmarks import NUM_LANDMARKS

FLAME_NUM_VERTICES = 5023
FLAME_NUM_FACES = 9976
FLAME_NUM_SHAPE = 300
FLAME_NUM_EXPRESSION = 100
FLAME_NUM_JOINTS = len(JOINT_NAMES)  # 5
FLAME_NUM_POSE_CORRECTIVES = 9 * (FLAME_NUM_JOINTS - 1)  # 36

# Keys every FLAME release stores; "J", "bs_style", "bs_type" are optional and unused.
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")
EMBEDDING_KEYS = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")

_FLAME_FILES_HINT = "pass a FLAME head model (generic_model.pkl, flame2023.pkl or flame2023_Open.pkl)"


# ---------------------------------------------------------------------------------------------------
# Hashing
# ---------------------------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks; FLAME files are 50-100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Unpickling without chumpy
# ---------------------------------------------------------------------------------------------------
class _PickledObject:
    """Base of the stand-ins: keeps whatever state the pickle gives, never runs foreign code."""

    source = "?"  # "module.name" of the class the pickle referenced

    def __init__(self, *args: Any, **kwargs: Any):
        # Only reached through copyreg._reconstructor / REDUCE on old pickles; arguments are irrelevant.
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyObject(_PickledObject):
    """Stand-in for `chumpy.ch.Ch` and its subclasses."""


class _SparseMatrix(_PickledObject):
    """Stand-in for a scipy sparse matrix/array; `fmt` is "csc", "csr" or "coo"."""

    fmt = "csc"


_STAND_INS: dict[tuple[str, str], type] = {}


def _stand_in(base: type, module: str, name: str, **attrs: Any) -> type:
    """One stand-in class per referenced global, so error messages can name what the file contained."""
    key = (module, name)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(f"Pickled_{name}", (base,), {"source": f"{module}.{name}", **attrs})
    return _STAND_INS[key]


_SPARSE_NAME = re.compile(r"^(csc|csr|coo)_(matrix|array)$")

# Globals a FLAME pickle legitimately references (Python 2 names as they appear in the file; the base
# Unpickler maps them to Python 3 names). Anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("__builtin__", "set"),
    ("builtins", "set"),
    ("__builtin__", "frozenset"),
    ("builtins", "frozenset"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # Python 3 pickles bytes this way under protocol 2
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list (not something a FLAME file contains)."""


class _FlameUnpickler(pickle.Unpickler):
    """Restricted unpickler: numpy arrays, builtins, chumpy and scipy-sparse stand-ins, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _stand_in(_ChumpyObject, module, name)
        if module.startswith("scipy.sparse"):
            match = _SPARSE_NAME.match(name)
            if match:
                return _stand_in(_SparseMatrix, module, name, fmt=match.group(1))
        if module.startswith("numpy._core"):  # written by numpy 2; numpy 1.x calls it numpy.core
            module = "numpy.core" + module[len("numpy._core"):]
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise _ForbiddenGlobal(f"unexpected Python object {module}.{name}")


def _unpickle(path: Path) -> Any:
    with open(path, "rb") as f:
        # latin1 turns Python 2 `str` (numpy's raw array bytes included) into str without loss.
        return _FlameUnpickler(f, encoding="latin1").load()


def _sparse_to_dense(obj: _SparseMatrix) -> np.ndarray:
    """Dense float64 matrix from a pickled scipy csc/csr/coo matrix's attributes."""
    state = obj.state if isinstance(obj.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    if shape is None or len(shape) != 2:
        raise ValueError(f"sparse matrix ({obj.source}) without a 2-D shape")
    rows, cols = int(shape[0]), int(shape[1])
    data = np.asarray(state["data"], dtype=np.float64)
    dense = np.zeros((rows, cols), dtype=np.float64)
    if obj.fmt == "coo":
        if "coords" in state:  # scipy >= 1.13
            r, c = (np.asarray(a, dtype=np.int64) for a in state["coords"])
        else:
            r, c = np.asarray(state["row"], dtype=np.int64), np.asarray(state["col"], dtype=np.int64)
        np.add.at(dense, (r, c), data)
        return dense
    indices = np.asarray(state["indices"], dtype=np.int64)
    indptr = np.asarray(state["indptr"], dtype=np.int64)
    major = cols if obj.fmt == "csc" else rows  # csc compresses columns, csr rows
    if indptr.shape != (major + 1,) or indptr[-1] != len(indices) or len(indices) != len(data):
        raise ValueError(f"inconsistent {obj.fmt} sparse matrix ({obj.source})")
    owner = np.repeat(np.arange(major), np.diff(indptr))  # major index of every stored entry
    if obj.fmt == "csc":
        np.add.at(dense, (indices, owner), data)
    else:
        np.add.at(dense, (owner, indices), data)
    return dense


def _as_array(value: Any, key: str, path: Path) -> np.ndarray:
    """Plain numpy array from whatever the pickle stored under `key` (array, chumpy Ch, sparse matrix)."""
    if isinstance(value, _ChumpyObject):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise PerseError(f"{path}: '{key}' is a chumpy expression ({value.source}) that cannot be "
                             "evaluated without chumpy; re-export the model with plain numpy arrays")
        return _as_array(state["x"], key, path)
    if isinstance(value, _SparseMatrix):
        try:
            return _sparse_to_dense(value)
        except (KeyError, ValueError, IndexError) as err:
            raise PerseError(f"{path}: '{key}' is a malformed sparse matrix ({err}); the file is damaged")
    if isinstance(value, _PickledObject):
        raise PerseError(f"{path}: '{key}' holds an unsupported object {value.source}")
    try:
        return np.asarray(value)
    except Exception as err:  # noqa: BLE001 -- any conversion failure means the entry is not an array
        raise PerseError(f"{path}: '{key}' is not an array ({type(value).__name__}: {err})")


# ---------------------------------------------------------------------------------------------------
# Validation and conversion
# ---------------------------------------------------------------------------------------------------
def _read_flame_dict(path: Path) -> dict:
    """Unpickle `path` and check it is a dict that looks like a FLAME model (one-line errors if not)."""
    try:
        raw = _unpickle(path)
    except _ForbiddenGlobal as err:
        raise PerseError(f"{path} is not a FLAME model file (it contains an {err}); {_FLAME_FILES_HINT}")
    except Exception as err:  # noqa: BLE001 -- arbitrary bytes fail in arbitrary ways; all mean "not a pickle"
        raise PerseError(f"{path} is not a readable pickle ({type(err).__name__}: {err}); {_FLAME_FILES_HINT}")
    if not isinstance(raw, dict):
        raise PerseError(f"{path} holds a {type(raw).__name__}, not a FLAME model dict; {_FLAME_FILES_HINT}")

    keys = set(raw)
    if "hands_components" in keys or "hands_mean" in keys:
        raise PerseError(f"{path} is a MANO hand model, not FLAME; {_FLAME_FILES_HINT}")
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise PerseError(f"{path} is not a FLAME model: missing key(s) {', '.join(missing)}; {_FLAME_FILES_HINT}")
    return raw


def _check_shape(path: Path, key: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise PerseError(f"{path}: '{key}' has shape {tuple(array.shape)}, FLAME has {expected}; "
                         f"{_FLAME_FILES_HINT}")


def _parents_from_kintree(path: Path, kintree: np.ndarray) -> np.ndarray:
    """(J,) int64 parents from FLAME's (2, J) kintree_table (row 0 parents, row 1 joint ids)."""
    kintree = kintree.astype(np.int64)
    if not np.array_equal(kintree[1], np.arange(FLAME_NUM_JOINTS)):
        raise PerseError(f"{path}: kintree_table joint ids are {kintree[1].tolist()}, expected 0..4")
    parents = kintree[0].copy()
    parents[0] = -1  # the root's parent is stored as 2**32 - 1 (uint32 -1)
    if any(not 0 <= parents[j] < j for j in range(1, FLAME_NUM_JOINTS)):
        raise PerseError(f"{path}: kintree_table parents {parents.tolist()} are not a valid joint tree")
    return parents


def _infer_name(path: Path, raw: dict) -> str:
    """Human name of the FLAME release, from the file name (the files carry no version field)."""
    stem = path.stem.lower()
    if "2023" in stem:
        if "open" in stem:
            return "FLAME 2023 Open"
        if "no_jaw" in stem or "nojaw" in stem:
            return "FLAME 2023 (no jaw)"
        return "FLAME 2023"
    for sex in ("female", "male"):  # test "female" first: it contains "male"
        if stem.startswith(sex):
            return f"FLAME 2020 ({sex})"
    if "generic_model" in stem or "2020" in stem:
        return "FLAME 2020"
    version = re.search(r"(20\d\d)", stem)
    return f"FLAME {version.group(1)}" if version else "FLAME"


def _flame_arrays(path: Path, raw: dict) -> dict[str, np.ndarray]:
    """Validated numpy arrays in HeadData's layout (float64 here; converted to float32 later)."""
    arr = {k: _as_array(raw[k], k, path) for k in REQUIRED_KEYS}
    V = arr["v_template"].shape[0] if arr["v_template"].ndim == 2 else -1
    if V == 6890:
        raise PerseError(f"{path} is an SMPL body model (6890 vertices), not FLAME; {_FLAME_FILES_HINT}")
    if V == 10475:
        raise PerseError(f"{path} is an SMPL-X body model (10475 vertices), not FLAME; {_FLAME_FILES_HINT}")
    if V == 778:
        raise PerseError(f"{path} is a MANO hand model (778 vertices), not FLAME; {_FLAME_FILES_HINT}")
    nV, nJ = FLAME_NUM_VERTICES, FLAME_NUM_JOINTS
    _check_shape(path, "v_template", arr["v_template"], (nV, 3))
    _check_shape(path, "f", arr["f"], (FLAME_NUM_FACES, 3))
    _check_shape(path, "shapedirs", arr["shapedirs"], (nV, 3, FLAME_NUM_SHAPE + FLAME_NUM_EXPRESSION))
    _check_shape(path, "posedirs", arr["posedirs"], (nV, 3, FLAME_NUM_POSE_CORRECTIVES))
    _check_shape(path, "J_regressor", arr["J_regressor"], (nJ, nV))
    _check_shape(path, "kintree_table", arr["kintree_table"], (2, nJ))
    _check_shape(path, "weights", arr["weights"], (nV, nJ))

    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.issubdtype(arr[key].dtype, np.floating) or not np.isfinite(arr[key]).all():
            raise PerseError(f"{path}: '{key}' must hold finite floats (got {arr[key].dtype}); the file is damaged")
    faces = arr["f"]
    if not np.issubdtype(faces.dtype, np.integer) or faces.min() < 0 or faces.max() >= nV:
        raise PerseError(f"{path}: 'f' must index vertices 0..{nV - 1}; the file is damaged")

    file_posedirs = arr["posedirs"]  # (V, 3, P)
    return {
        "v_template": arr["v_template"],
        "faces": faces.astype(np.int64),
        "shapedirs": arr["shapedirs"][..., :FLAME_NUM_SHAPE],
        "exprdirs": arr["shapedirs"][..., FLAME_NUM_SHAPE:],
        # lbs computes pose_feature (B, P) @ posedirs (P, V*3) with vertices flattened row-major, so
        # posedirs[p, v*3 + c] = file_posedirs[v, c, p].
        "posedirs": file_posedirs.reshape(nV * 3, FLAME_NUM_POSE_CORRECTIVES).T,
        "j_regressor": arr["J_regressor"],
        "parents": _parents_from_kintree(path, arr["kintree_table"]),
        "lbs_weights": arr["weights"],
    }


def load_landmark_embedding(path: str | os.PathLike, num_faces: int = FLAME_NUM_FACES) -> dict[str, np.ndarray]:
    """Read a MediaPipe landmark embedding (``mediapipe_landmark_embedding.npz``).

    Returns lmk_face_idx (L,) int64, lmk_bary (L, 3) float64, landmark_indices (L,) int64 (MediaPipe
    ids, 0..477). Raises PerseError naming the file if it is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise PerseError(f"landmark embedding not found: {path}; choose the mediapipe_landmark_embedding.npz file",
                         setting="flame_embedding")
    from perse.npz import NpzError, member_names, read_arrays

    try:
        missing = [k for k in EMBEDDING_KEYS if k not in member_names(path)]
        if missing:
            raise PerseError(f"{path} is not a MediaPipe landmark embedding: missing {', '.join(missing)} "
                             "(expected mediapipe_landmark_embedding.npz)")
        face_idx, bary, ids = read_arrays(path, EMBEDDING_KEYS).values()
    except NpzError as err:
        raise PerseError(f"{path} is not a readable .npz landmark embedding ({err})") from None

    face_idx = face_idx.reshape(-1)
    ids = ids.reshape(-1)
    L = face_idx.shape[0]
    if bary.shape != (L, 3) or ids.shape != (L,):
        raise PerseError(f"{path}: lmk_face_idx {face_idx.shape}, lmk_b_coords {bary.shape} and "
                         f"landmark_indices {ids.shape} do not agree (expected (L,), (L, 3), (L,))")
    if not (np.issubdtype(face_idx.dtype, np.integer) and np.issubdtype(ids.dtype, np.integer)):
        raise PerseError(f"{path}: lmk_face_idx and landmark_indices must be integers")
    if not np.issubdtype(bary.dtype, np.number):
        raise PerseError(f"{path}: lmk_b_coords must hold numbers (got {bary.dtype})")
    if L and (face_idx.min() < 0 or face_idx.max() >= num_faces):
        raise PerseError(f"{path}: lmk_face_idx must index faces 0..{num_faces - 1}; this embedding is "
                         "for another mesh")
    if L and (ids.min() < 0 or ids.max() >= NUM_LANDMARKS):
        raise PerseError(f"{path}: landmark_indices must be MediaPipe ids 0..{NUM_LANDMARKS - 1}")
    bary = bary.astype(np.float64)
    if not np.isfinite(bary).all() or (L and np.abs(bary.sum(axis=1) - 1.0).max() > 1e-3):
        raise PerseError(f"{path}: lmk_b_coords rows must be barycentric coordinates summing to 1")
    return {"lmk_face_idx": face_idx.astype(np.int64), "lmk_bary": bary, "landmark_indices": ids.astype(np.int64)}


def load_flame_data(path: str | os.PathLike, embedding_path: str | os.PathLike | None = None) -> HeadData:
    """Read an official FLAME pickle (and optionally its landmark embedding) into `HeadData`.

    Args:
        path: FLAME 2020 ``generic_model.pkl``, FLAME 2023 ``flame2023.pkl`` / ``flame2023_no_jaw.pkl``
            or FLAME 2023 Open ``flame2023_Open.pkl``.
        embedding_path: ``mediapipe_landmark_embedding.npz``; None gives a model with L = 0 landmarks.
    Returns:
        HeadData with S = 300 shape and E = 100 expression directions, float32 arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise PerseError(f"FLAME file not found: {path}; set PERSE_FLAME or choose the FLAME file", setting="flame")
    raw = _read_flame_dict(path)
    arrays = _flame_arrays(path, raw)

    meta: dict[str, Any] = {
        "kind": "flame",
        "name": _infer_name(path, raw),
        "file": path.name,
        "sha256": sha256_file(path),
        "expression_names": [f"expr{i:02d}" for i in range(FLAME_NUM_EXPRESSION)],
        "regions": [],
        "embedding_file": None,
        "embedding_sha256": None,
    }
    for key in ("bs_style", "bs_type"):  # informative strings in the official files
        if isinstance(raw.get(key), str):
            meta[key] = raw[key]

    if embedding_path is not None:
        emb = load_landmark_embedding(embedding_path, num_faces=arrays["faces"].shape[0])
        meta["embedding_file"] = Path(embedding_path).name
        meta["embedding_sha256"] = sha256_file(embedding_path)
    else:
        emb = {"lmk_face_idx": np.zeros(0, np.int64), "lmk_bary": np.zeros((0, 3)),
               "landmark_indices": np.zeros(0, np.int64)}
    meta["num_landmarks"] = int(emb["lmk_face_idx"].shape[0])

    def f32(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def i64(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))

    data = HeadData(
        v_template=f32(arrays["v_template"]),
        faces=i64(arrays["faces"]),
        shapedirs=f32(arrays["shapedirs"]),
        exprdirs=f32(arrays["exprdirs"]),
        posedirs=f32(arrays["posedirs"]),
        j_regressor=f32(arrays["j_regressor"]),
        parents=i64(arrays["parents"]),
        lbs_weights=f32(arrays["lbs_weights"]),
        lmk_face_idx=i64(emb["lmk_face_idx"]),
        lmk_bary=f32(emb["lmk_bary"]),
        landmark_indices=i64(emb["landmark_indices"]),
        meta=meta,
    )
    try:
        return data.validate(str(path))
    except ValueError as err:  # the checks above cover FLAME's layout; this is the generic last word
        raise PerseError(f"{err}; the file is damaged") from None


def load_flame(path: str | os.PathLike, embedding_path: str | os.PathLike | None = None) -> HeadModel:
    """`HeadModel` from an official FLAME file; see `load_flame_data`."""
    return HeadModel(load_flame_data(path, embedding_path))


def has_landmarks(model: HeadModel) -> bool:
    """Whether `model` carries a landmark embedding (L > 0)."""
    return model.lmk_face_idx.numel() > 0


def require_landmarks(model: HeadModel) -> None:
    """Raise PerseError unless `model` has a landmark embedding (needed by landmark fitting)."""
    if not has_landmarks(model):
        name = model.meta.get("name", "this head model")
        raise PerseError(f"landmark fitting with {name} needs mediapipe_landmark_embedding.npz: "
                         "choose the landmark embedding file", setting="flame_embedding")
